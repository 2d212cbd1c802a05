import pysubs2
import pytest

from app.subtitles import FORMATS, CueRules, Word, build_cues, write_subtitles
from app.text import split_words


def timed(text: str, start: float, per_char: float = 0.25) -> list[Word]:
    words, t = [], start
    for w in split_words(text):
        dur = 0.0 if all(not c.isalnum() for c in w) else per_char * len(w)
        words.append(Word(w, t, t + dur))
        t += dur
    return words


LONG = "我们明天早上八点在学校门口见面然后一起坐公共汽车去北京动物园看熊猫，你觉得怎么样？"


def test_lines_break_between_words_within_the_limit():
    words = timed(LONG, 0.0)
    cues = build_cues([words], CueRules(max_chars=16))
    assert len(cues) >= 3
    assert "".join(c.hanzi for c in cues) == LONG  # nothing lost, nothing added
    boundaries = {sum(len(w.text) for w in words[:i]) for i in range(len(words) + 1)}
    pos = 0
    for cue in cues:
        assert sum(len(w.text) for w in cue.words if not w.is_punct) <= 16
        pos += len(cue.hanzi)
        assert pos in boundaries  # every break falls between jieba words
    assert not cues[1].hanzi[0] in "，。？"  # punctuation never starts a line


def test_times_never_overlap_or_go_backwards_and_are_readable():
    seg1 = timed("今天天气很好。", 0.0)
    seg2 = timed("我们去公园吧。", 1.6)  # recogniser spans that overlap slightly
    seg2[0].start = 1.5
    cues = build_cues([seg1, seg2, timed("好。", 9.0)])
    for a, b in zip(cues, cues[1:]):
        assert a.start < a.end <= b.start < b.end
    assert cues[-1].end - cues[-1].start >= 1.0  # a one-word cue still stays up for a second


def test_pause_starts_a_new_cue():
    words = timed("我们走吧", 0.0) + timed("好的", 5.0)
    cues = build_cues([words])
    assert [c.hanzi for c in cues] == ["我们走吧", "好的"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_written_files_parse_back(tmp_path, fmt):
    cues = build_cues([timed(LONG, 0.0), timed("谢谢大家。", 30.0)])
    for cue in cues:
        cue.pinyin, cue.english = "pīnyīn", "English"
    path = write_subtitles(cues, tmp_path / f"x.{fmt}", ["hanzi", "pinyin", "english"])
    text = path.read_text(encoding="utf-8")
    if fmt == "txt":
        assert text.count("\n\n") == len(cues) - 1 and "pīnyīn" in text
        return
    subs = pysubs2.load(str(path), encoding="utf-8")
    assert len(subs) == len(cues)
    assert [e.plaintext.split("\n") for e in subs][0] == [cues[0].hanzi, "pīnyīn", "English"]
    starts = [e.start for e in subs]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:]))


def test_line_choice(tmp_path):
    cues = build_cues([timed("谢谢大家。", 0.0)])
    cues[0].pinyin, cues[0].english = "xièxie dàjiā.", "Thank you all."
    subs = pysubs2.load(str(write_subtitles(cues, tmp_path / "a.srt", ["hanzi", "english"])), encoding="utf-8")
    assert subs[0].plaintext == "谢谢大家。\nThank you all."
