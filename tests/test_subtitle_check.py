"""`python -m app check`: every Netflix Simplified Chinese rule caught on a hand-made file, nothing
on a good one, one error line for a file it cannot read; and our own SRT of a long zh-synth file
(real recogniser output) breaks no rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.language.subtitles import RULES, CueRules, check_file
from tests.conftest import ROOT


def srt(*cues: tuple[str, str, str]) -> str:
    """SRT text from (start, end, text) with times as 'SS,mmm' seconds of the first minute."""
    return "".join(f"{n}\n00:00:{a} --> 00:00:{b}\n{text}\n\n" for n, (a, b, text) in enumerate(cues, 1))


# A good file: trilingual cues (long pinyin and English lines are not held to the hanzi limits),
# a two-line cue, a gap closed to 2 frames (80 ms at 25 fps), a pause over half a second.
GOOD = [
    ("01,000", "03,000", "我们明天去北京\nwǒmen míngtiān qù Běijīng\nWe are going to Beijing tomorrow"),
    ("03,080", "06,600", "我们明天早上八点在学校门口见面\nwǒmen míngtiān zǎoshang bā diǎn zài xuéxiào ménkǒu jiànmiàn\n"
                         "然后一起去动物园看熊猫好不好？\nránhòu yìqǐ qù dòngwùyuán kàn xióngmāo hǎo bu hǎo?"),
    ("07,200", "08,500", "你觉得怎么样？"),
]

# Each case breaks exactly one rule: (rule, the cue that breaks it, the whole file's cues).
BAD = {
    "line-length": (2, [GOOD[0], ("03,080", "06,000", "我们明天早上八点在学校门口见面好吗"), GOOD[2]]),
    "lines": (2, [GOOD[0], ("03,080", "06,000", "我们明天\n早上八点\n去北京"), GOOD[2]]),
    "end-punctuation": (1, [("01,000", "03,000", "我们明天去北京，"), *GOOD[1:]]),
    "orphan": (3, [*GOOD[:2], ("07,200", "08,500", "好的！")]),
    "min-duration": (3, [*GOOD[:2], ("07,200", "07,800", "你好吗")]),
    "max-duration": (3, [*GOOD[:2], ("07,200", "14,500", "你觉得怎么样？")]),
    "reading-speed": (3, [*GOOD[:2], ("07,200", "08,700", "我们明天早上八点在学校门口见面")]),
    "frame-gap": (1, [("01,000", "03,040", GOOD[0][2]), *GOOD[1:]]),
    "close-gap": (1, [("01,000", "02,700", GOOD[0][2]), *GOOD[1:]]),
}


def write(tmp_path, name: str, cues) -> str:
    path = tmp_path / name
    path.write_text(srt(*cues), encoding="utf-8")
    return str(path)


def test_a_good_file_breaks_no_rule(tmp_path):
    assert check_file(write(tmp_path, "good.srt", GOOD)) == (3, [])


def test_every_rule_has_a_case():
    assert sorted(BAD) == sorted(RULES)


@pytest.mark.parametrize("rule", sorted(BAD))
def test_each_rule_is_caught(tmp_path, rule):
    cue, cues = BAD[rule]
    _, found = check_file(write(tmp_path, f"{rule}.srt", cues))
    assert [(v.cue, v.rule) for v in found] == [(cue, rule)], found


def test_options_change_what_counts(tmp_path):
    ended = write(tmp_path, "ended.srt", BAD["end-punctuation"][1])
    assert check_file(ended, CueRules(keep_punctuation=True)) == (3, [])
    # 80 ms is 2 frames at 25 fps but less than 2 frames (83.4 ms) at 23.976 fps.
    _, found = check_file(write(tmp_path, "good.srt", GOOD), CueRules(fps=23.976))
    assert [(v.cue, v.rule) for v in found] == [(1, "frame-gap")]


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "check", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_cli_lines_exit_status_and_errors(tmp_path):
    good = write(tmp_path, "good.srt", GOOD)
    result = run_check(good)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.strip().count("\n") == 0 and "3 cues: no violation" in result.stdout

    bad = write(tmp_path, "bad.srt", BAD["reading-speed"][1])
    result = run_check(good, bad)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{bad}: cue 3 00:00:07,200 reading-speed: 10.0 characters a second "
                                          f"(at most 9): 15 in 1.50 s"]

    unreadable = tmp_path / "noise.srt"
    unreadable.write_bytes(b"\xff\xfe\x00garbage")
    for path in (unreadable, tmp_path / "missing.srt"):
        result = run_check(str(path), good)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], result.stderr


@pytest.mark.slow
def test_our_subtitles_of_a_long_file_break_no_rule(model, zh_synth, tmp_path):
    """60 zh-synth test clips joined (about 2.5 minutes), through the app's own job and export."""
    from app.jobs import export, run_job
    from app.speech.transcribe import TranscribeOptions
    from tests.conftest import read_split
    from tests.served_media import join_clips

    media = join_clips(read_split("test")[:60], tmp_path / "long.wav")
    job = run_job(str(media), model, TranscribeOptions(english="none"), max_duration=3600)
    hanzi = export(job.transcript, tmp_path / "hanzi", "long", ["srt"], ["hanzi"])["srt"]
    both = export(job.transcript, tmp_path / "both", "long", ["srt", "ass"], ["hanzi", "pinyin"])
    # Properties of any transcript of this file, not of one machine's (CTranslate2's int8 kernels differ
    # by CPU): most of the 60 sentences' hanzi are there, in many cues, and no cue breaks a rule.
    from app.language.text import normalize_for_cer

    heard = sum(len(normalize_for_cer(c.hanzi)) for c in job.transcript.cues)
    said = sum(len(normalize_for_cer(r["sentence"])) for r in read_split("test")[:60])
    assert heard >= 0.8 * said and len(job.transcript.cues) >= 15, (heard, said, len(job.transcript.cues))
    for path in (hanzi, both["srt"], both["ass"]):
        count, found = check_file(path)
        assert count == len(job.transcript.cues)
        assert found == [], "\n".join(f"cue {v.cue} {v.rule}: {v.detail}" for v in found)
