import pysubs2
import pytest

from app.language.pinyin import pinyin_of_words
from app.language.subtitles import FORMATS, CueRules, Word, build_cues, check_events, write_subtitles
from app.language.text import split_words


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
    assert len(cues) >= 2
    assert "".join(c.hanzi for c in cues) == LONG  # nothing lost, nothing added
    assert all("".join(c.hanzi_lines) == c.hanzi for c in cues)
    boundaries = {sum(len(w.text) for w in words[:i]) for i in range(len(words) + 1)}
    pos = 0
    for cue in cues:
        assert 1 <= len(cue.hanzi_lines) <= 2
        for line in cue.hanzi_lines:
            assert len(line.rstrip("，。")) <= 16  # punctuation included, a dropped line end excepted
            assert line[0] not in "，。？"  # punctuation never starts a line
            pos += len(line)
            assert pos in boundaries  # every break (cue or line) falls between jieba words


def test_times_never_overlap_or_go_backwards_and_are_readable():
    seg1 = timed("今天天气很好。", 0.0)
    seg2 = timed("我们去公园吧。", 1.6)  # recogniser spans that overlap slightly
    seg2[0].start = 1.5
    cues = build_cues([seg1, seg2, timed("好。", 9.0)])
    for a, b in zip(cues, cues[1:]):
        assert a.start < a.end <= b.start - 2 / 25 < b.end  # 2 frames apart at 25 fps
    assert cues[0].end == pytest.approx(cues[1].start - 2 / 25)  # a gap under half a second closed
    assert all(round(t * 25, 6).is_integer() for c in cues for t in (c.start, c.end))  # whole frames
    assert cues[-1].end - cues[-1].start >= 5 / 6  # a one-word cue still stays up for 5/6 s


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
    if fmt == "txt":  # the transcript: one line per kind, punctuation kept
        assert text.count("\n\n") == len(cues) - 1 and "pīnyīn" in text and "谢谢大家。" in text
        return
    subs = pysubs2.load(str(path), encoding="utf-8")
    assert len(subs) == len(cues)
    # Every cue: each hanzi line followed by its own pinyin line (wrapped with it), the English line last.
    shown_lines = [[line.strip() for line in e.plaintext.split("\n")] for e in subs]
    for cue, lines in zip(cues, shown_lines):
        expected = []
        for words in cue.line_words:
            shown = [w.text for w in (words[:-1] if words[-1].text in "，。" else words)]  # line-end ，。 dropped
            expected += ["".join(shown), pinyin_of_words(shown)]
        if fmt == "ass":  # pinyin above its hanzi line (the ruby layout); cells open with a hard space
            expected = [line for pair in zip(expected[1::2], expected[::2]) for line in pair]
        assert lines == expected + ["English"], cue.hanzi
    assert max(len(lines) for lines in shown_lines) == 5  # a two-line cue is among them
    last = ["xièxie dàjiā", "谢谢大家"] if fmt == "ass" else ["谢谢大家", "xièxie dàjiā"]
    assert shown_lines[-1] == last + ["English"]  # line-end 。 dropped
    assert check_events(subs) == []  # pinyin and English lines are not held to the hanzi limits
    starts = [e.start for e in subs]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(subs, subs[1:]))


def test_line_choice(tmp_path):
    cues = build_cues([timed("谢谢大家。", 0.0)])
    cues[0].pinyin, cues[0].english = "xièxie dàjiā.", "Thank you all."
    subs = pysubs2.load(str(write_subtitles(cues, tmp_path / "a.srt", ["hanzi", "english"])), encoding="utf-8")
    assert subs[0].plaintext == "谢谢大家\nThank you all."
    kept = write_subtitles(cues, tmp_path / "b.srt", ["pinyin", "hanzi"], rules=CueRules(keep_punctuation=True))
    assert pysubs2.load(str(kept), encoding="utf-8")[0].plaintext == "xièxie dàjiā.\n谢谢大家。"


def test_a_sentence_too_long_for_one_line_gets_two_balanced_lines():
    text = "我们明天早上八点在学校门口见面，然后一起去动物园。"  # 24 characters and punctuation
    cues = build_cues([timed(text, 0.0, per_char=0.2)])
    assert len(cues) == 1 and len(cues[0].hanzi_lines) == 2
    top, bottom = cues[0].hanzi_lines
    assert top == "我们明天早上八点在学校门口见面，"  # broken after the comma, where a reader pauses
    assert len(bottom) <= 16


def test_long_sentence_split_into_cues_of_at_most_seven_seconds():
    text = "我们明天早上八点在学校门口见面然后一起坐公共汽车去北京动物园看熊猫"
    cues = build_cues([timed(text, 0.0, per_char=0.3)])  # 33 characters, 9.9 s of speech
    assert len(cues) == 2 and "".join(c.hanzi for c in cues) == text
    assert all(c.end - c.start <= 7.0 for c in cues)


def test_orphan_joins_its_neighbour_but_not_across_a_long_pause():
    # The recogniser cut 这本书是我昨天买的。 before its last word: 的。 goes back to its sentence.
    cues = build_cues([timed("这本书是我昨天买", 0.0), timed("的。", 2.1)])
    assert [c.hanzi for c in cues] == ["这本书是我昨天买的。"]
    cues = build_cues([timed("我们去公园吧。", 0.0), timed("好。", 1.9)])
    assert [c.hanzi for c in cues] == ["我们去公园吧。好。"]
    cues = build_cues([timed("我们去公园吧。", 0.0), timed("好。", 6.0)])
    assert [c.hanzi for c in cues] == ["我们去公园吧。", "好。"]  # shown 4 s early would be worse


def test_fast_speech_stays_up_long_enough_to_read():
    fast = timed("我们明天早上八点见面。", 5.0, per_char=0.08)  # 12.5 characters a second
    cue = build_cues([timed("你好。", 0.0), fast, timed("好的好的。", 7.0)])[1]
    assert cue.end <= 7.0 - 2 / 25 and (cue.end - cue.start) * 9 >= len("我们明天早上八点见面")
    # No silence after it (the next cue follows at once): the silence before is used.
    squeezed = build_cues([timed("你好。", 0.0), timed("我们明天早上八点见面。", 5.0, per_char=0.08),
                           timed("好的好的。", 5.8)])[1]
    assert squeezed.start < 5.0 and (squeezed.end - squeezed.start) * 9 >= 10


def test_sentences_of_the_corpus_become_cues_that_break_no_rule(tmp_path, zh_synth):
    """The HSK sentences of zh-synth at a brisk synthetic pace, some run together in one segment,
    with and without Whisper's punctuation: every written file passes the checker."""
    from tests.conftest import read_split

    rows = read_split("test")[:300]
    segments, t = [], 0.0
    for i, row in enumerate(rows):
        text = row["sentence"].rstrip("。！？，") + ("。", "，", "")[i % 3]  # Whisper's punctuation, or none
        words = timed(text, t, per_char=0.16 + 0.04 * (i % 4))
        t = words[-1].end + (0.0 if i % 4 else 0.3 + 0.5 * (i % 3))
        if segments and i % 4:
            segments[-1] += words  # one recogniser segment holding several sentences
        else:
            segments.append(words)
    for keep, fmt in ((False, "srt"), (False, "vtt"), (False, "ass"), (True, "srt")):
        rules = CueRules(keep_punctuation=keep)
        cues = build_cues(segments, rules)
        assert "".join(c.hanzi for c in cues) == "".join(w.text for s in segments for w in s)
        path = write_subtitles(cues, tmp_path / f"all{keep}.{fmt}", ["hanzi", "pinyin"], rules=rules)
        assert check_events(pysubs2.load(str(path), encoding="utf-8"), rules) == []


def _tags_and_text(line: str) -> list[tuple[str, str]]:
    """An ASS line as (override tags, text after them) pairs; blocks with no text between them are one."""
    import re

    pairs, tags = [], ""
    for block, text in re.findall(r"\{([^}]*)\}([^{]*)", line):
        tags += block
        if text:
            pairs.append((tags, text))
            tags = ""
    return pairs


def _line_width(line: str, size: float) -> float:
    """Where a line ends: each character's advance plus the letter spacing (\\fsp) in force after it."""
    import re

    from app.language.subtitles import text_width

    width, spacing = 0.0, 0.0
    for tags, text in _tags_and_text(line):
        found = re.findall(r"\\fsp(-?[\d.]+)", tags)
        spacing = float(found[-1]) if found else spacing
        text = text.replace("\\h", "\u00a0")  # ASS's hard space
        width += text_width(text, size) + spacing * len(text)
    return width


def test_ass_has_pinyin_over_each_hanzi_tone_colours_and_karaoke(tmp_path):
    from app.language.pinyin import TONE_COLOURS, tone_numbers
    from app.language.subtitles import ASS_SIZES, ass_colour

    text = "我们明天早上八点在学校门口见面，然后一起去动物园。"
    cues = build_cues([timed(text, 1.0, per_char=0.2)])
    for cue in cues:
        cue.english = "We meet at the school gate at eight tomorrow."
    path = write_subtitles(cues, tmp_path / "x.ass", ["hanzi", "pinyin", "english"])
    events = pysubs2.load(str(path), encoding="utf-8")
    assert len(events) == len(cues) == 1 and check_events(events) == []  # still one event per cue
    pinyin_1, hanzi_1, pinyin_2, hanzi_2, english = events[0].text.split("\\N")
    # Karaoke: the \k durations of the hanzi lines add up to the time the words are spoken.
    import re

    ks = [int(k) for line in (hanzi_1, hanzi_2) for k in re.findall(r"\\k(\d+)", line)]
    assert abs(sum(ks) / 100 - (cues[0].words[-1].end - cues[0].start)) < 0.1
    assert re.search(r"\\k(\d+)", english) and re.search(r"\\k(\d+)", english).group(1) == "0"
    # Tone colours: every hanzi carries its written tone's colour (bright once spoken, dim before).
    hanzi = [(tags, t) for line in (hanzi_1, hanzi_2) for tags, t in _tags_and_text(line) if has_cjk_char(t)]
    tones = tone_numbers(text)
    assert len(hanzi) == len(tones)
    for (tags, char), tone in zip(hanzi, tones):
        assert f"\\1c{ass_colour(TONE_COLOURS[tone])}" in tags and f"\\2c{ass_colour(TONE_COLOURS[tone], True)}" in tags
    # Ruby layout: each pinyin line is exactly as wide as its hanzi line (word cells of equal width),
    # so centred, each word's pinyin stands over it.
    for pinyin, hanzi_line in ((pinyin_1, hanzi_1), (pinyin_2, hanzi_2)):
        p_width = _line_width(pinyin, ASS_SIZES["pinyin"])
        h_width = _line_width(hanzi_line, ASS_SIZES["hanzi"])
        assert abs(p_width - h_width) < 2.0, (p_width, h_width)  # measured by pieces: kerning differs a little
    assert "".join(t for _, t in _tags_and_text(pinyin_1)).replace("\\h", "").strip().startswith("wǒmen míngtiān")


def _centres(line: str, size: float) -> list[float]:
    """The centre of each coloured run (a hanzi, or a syllable without its leading space), where the
    line draws it: advances plus the letter spacing in force."""
    import re

    from app.language.subtitles import text_width

    x, spacing, centres, run = 0.0, 0.0, [], None
    for tags, text in _tags_and_text(line):
        found = re.findall(r"\\fsp(-?[\d.]+)", tags)
        spacing = float(found[-1]) if found else spacing
        if "\\1c" in tags:  # a new syllable or hanzi starts
            if run:
                centres.append((run[0] + run[1]) / 2)
            run = None
        for char in text.replace("\\h", "\u00a0"):
            if char not in " \u00a0" and run is None:
                run = [x, x]
            x += text_width(char, size)
            if run is not None:
                run[1] = x
            x += spacing
    if run:
        centres.append((run[0] + run[1]) / 2)
    return centres


def test_ass_centres_each_syllable_over_its_hanzi():
    from app.language.subtitles import ASS_SIZES, to_karaoke_ass

    cues = build_cues([timed("我们明天早上八点在学校门口见面，女儿说谢谢大家。", 0.0, per_char=0.2)])
    for cue in cues:
        lines = to_karaoke_ass([cue], ["hanzi", "pinyin"])[0].text.split("\\N")
        for pinyin, hanzi in zip(lines[::2], lines[1::2]):
            above, below = _centres(pinyin, ASS_SIZES["pinyin"]), _centres(hanzi, ASS_SIZES["hanzi"])
            assert len(above) == len(below) > 5
            assert max(abs(a - b) for a, b in zip(above, below)) < 2.0, list(zip(above, below))


def has_cjk_char(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def test_burned_in_video_keeps_the_duration_and_shows_the_subtitles_only_in_cues(tmp_path):
    """ffmpeg + libass: a frame inside a cue differs from the source's where the subtitles are; a frame
    before any cue is the source's."""
    import subprocess

    import av
    import numpy as np

    from app.study.video import burn_in

    source = tmp_path / "grey.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x336699:s=426x240:r=25:d=6",
                    "-f", "lavfi", "-i", "sine=f=220:d=6", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(source)], check=True, capture_output=True)
    cues = build_cues([timed("我们一起去北京吧。", 2.0, per_char=0.3)])
    out = burn_in(source, cues, ["hanzi", "pinyin"], tmp_path / "burned.mp4", 6.0)

    def frames(path):
        with av.open(str(path)) as c:
            duration = float(c.duration / av.time_base)
            return duration, {round(f.time, 2): f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)}

    (d_src, src), (d_out, burned) = frames(source), frames(out)
    assert abs(d_out - d_src) < 0.1
    inside, before = 3.0, 1.0
    changed = np.abs(burned[inside] - src[inside]).max(axis=2) > 48
    assert changed[120:].mean() > 0.02 and changed[:60].mean() == 0
    assert (np.abs(burned[before] - src[before]).max(axis=2) > 48).mean() == 0


def test_a_cue_is_never_split_inside_a_word_nor_before_a_particle():
    """An unpunctuated run far longer than a cue: every cue and line break falls between two jieba
    words, and none opens with a particle that leans on the word before it."""
    from app.language.subtitles import is_clitic

    head = "我们明天早上八点在学校门口见面然后一起坐公共汽车去北京动物园看熊猫好"
    tail = "嘞那爷爷就来偏爱小丸子吧"
    words = timed(head, 0.0, per_char=0.2)
    words += timed(tail, words[-1].end + 1.2, per_char=0.2)  # Whisper's times: a long "pause" before 嘞
    words += timed(head + tail, words[-1].end, per_char=0.2)
    cues = build_cues([words], CueRules())
    assert len(cues) >= 3 and "".join(c.hanzi for c in cues) == (head + tail) * 2
    boundaries = {sum(len(w.text) for w in words[:i]) for i in range(len(words) + 1)}
    at = 0
    for cue in cues:
        for line_words in cue.line_words:
            assert not is_clitic(line_words[0]), [w.text for w in line_words]
            at += sum(len(w.text) for w in line_words)
            assert at in boundaries


def test_cues_break_at_the_strongest_place():
    """A sentence too long for one cue, no mark in it: the cut goes at the long pause, not at the
    most even place."""
    first = timed("我们明天早上八点在学校门口见面", 0.0)
    second = timed("然后一起坐公共汽车去北京动物园", first[-1].end + 0.5)
    cues = build_cues([first + second + timed("看熊猫", second[-1].end)], CueRules(max_chars=16, max_lines=1))
    assert cues[0].hanzi == "我们明天早上八点在学校门口见面"


def test_inside_a_line_a_comma_or_full_stop_is_written_as_a_space(tmp_path):
    words = timed("我要洗手，她帮我拿东西。", 0.0)
    path = write_subtitles(build_cues([words]), tmp_path / "a.srt", ["hanzi"])
    assert pysubs2.load(str(path))[0].plaintext == "我要洗手 她帮我拿东西"
    kept = write_subtitles(build_cues([words]), tmp_path / "b.srt", ["hanzi"], rules=CueRules(keep_punctuation=True))
    assert pysubs2.load(str(kept))[0].plaintext == "我要洗手，她帮我拿东西。"
