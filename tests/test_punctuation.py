"""Punctuation where Whisper leaves none (app.language.punctuation): the question rules, where a
break goes and which mark it gets, Whisper's own marks kept, no break inside a word or before a
particle."""

import pytest

from app.language.punctuation import is_question, lean_back, punctuate, sentence_mark
from app.language.subtitles import Word, build_cues
from app.language.text import split_words


def timed(text: str, start: float, per_char: float = 0.25) -> list[Word]:
    words, t = [], start
    for w in split_words(text):
        words.append(Word(w, t, t + per_char * len(w)))
        t += per_char * len(w)
    return words


def text_of(segments: list[list[Word]]) -> str:
    return "".join(w.text for words in segments for w in words)


@pytest.mark.parametrize("sentence, mark", [
    ("你好吗", "？"), ("你是学生么", "？"),  # 吗 / 么 at the end
    ("你去哪儿呢", "？"), ("他为什么不来呢", "？"), ("你想吃什么呢", "？"), ("谁在外面呢", "？"),  # question word + 呢
    ("见了又能怎么样", "？"), ("你叫什么", "？"),  # a question word last
    ("是不是你", "？"), ("我们明天去好不好", "？"), ("你有没有时间", "？"), ("可不可以进来", "？"),  # A-not-A
    ("我在家呢", "。"), ("不做些什么真是浪费", "。"), ("他这么高", "。"), ("多么美丽的地方", "。"),  # no question
    ("我们走吧", "。"), ("太好了啊", "！"), ("好热呀", "！"),
])
def test_question_rules(sentence, mark):
    assert sentence_mark(sentence) == mark
    assert is_question(sentence) == (mark == "？")


def test_a_break_at_every_segment_end_a_sentence_end_after_a_pause_or_a_question():
    segments = [timed("二哥", 0.0), timed("上次看你急的时候还是在上次", 0.6), timed("你见了又能怎么样", 4.1),
                timed("我自己下来吃吧", 6.2), timed("我们明天去学校", 9.0)]
    assert text_of(punctuate(segments)) == ("二哥，上次看你急的时候还是在上次，你见了又能怎么样？"
                                            "我自己下来吃吧。我们明天去学校。")
    # A part still growing: its last segment waits for what follows.
    assert text_of(punctuate(segments[:2], final=False)) == "二哥，上次看你急的时候还是在上次"


def test_whisper_marks_are_kept_and_nothing_added_beside_them():
    segments = [timed("今天天气很好！", 0.0), timed("我们去公园，", 2.0), timed("好吗？", 3.5)]
    assert text_of(punctuate(segments)) == "今天天气很好！我们去公园，好吗？"


def test_a_long_pause_inside_a_segment_is_a_break_but_never_before_a_particle():
    words = timed("我不用你过来帮我", 0.0) + timed("我自己下来", 3.2)
    assert text_of(punctuate([words])) == "我不用你过来帮我。我自己下来。"
    # Whisper's word times put 1.8 s inside 见了 and 好嘞: no mark there.
    jian = [Word("见", 11.6, 11.7), Word("了", 13.5, 13.6), Word("又", 13.6, 13.7), Word("能", 13.7, 13.8)]
    assert text_of(punctuate([jian])) == "见了又能。"


def test_a_particle_opening_a_segment_goes_back_to_the_one_before():
    segments = [timed("好", 0.0), [Word("嘞", 0.3, 0.5)] + timed("那爷爷就来偏爱小丸子吧", 0.6)]
    assert [[w.text for w in s] for s in lean_back(segments)][0] == ["好", "嘞"]
    assert text_of(punctuate(segments)).startswith("好嘞，那爷爷")


def test_latin_script_speech_is_left_as_it_is():
    segments = [[Word("hello", 0.0, 0.5), Word("world", 0.6, 1.0)], [Word("again", 2.5, 3.0)]]
    assert punctuate(segments) == segments


def test_run_on_speech_becomes_cues_that_end_at_sentence_ends():
    """The issue's case: clauses back to back, no mark from Whisper, one cue could hold two of them."""
    segments = [timed("见了又能怎么样", 0.0), timed("他会有多么的伤心呢", 1.9),
                timed("总要维持一个一两天才会被思念赶走吧", 4.3), timed("二哥", 8.6),
                timed("上次看你急的时候还是在上次", 9.2)]
    cues = build_cues(punctuate(segments))
    for cue in cues:
        for line in cue.hanzi_lines:
            # A sentence end inside a line is always marked: no two sentences run together.
            for end in ("怎么样", "伤心呢", "赶走吧"):
                at = line.find(end)
                if at >= 0 and at + len(end) < len(line):
                    assert line[at + len(end)] in "，。？！", line
    assert "".join(c.hanzi for c in cues).startswith("见了又能怎么样？他会有多么的伤心呢。总要维持")
