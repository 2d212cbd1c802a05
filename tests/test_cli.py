"""`python -m app transcribe` as a learner runs it: a real subprocess, real files, the embedded model."""

from __future__ import annotations

import subprocess
import sys

import pysubs2
import pytest

from app.text import cer, has_cjk, traditional_only_chars
from tests.conftest import ROOT, clip_path, read_split
from tests.served_media import closed_port_url

FORMATS = ("srt", "vtt", "ass", "txt")


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "transcribe", *args, "--english", "none"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def good_row(zh_synth) -> dict:
    return next(r for r in read_split("test") if len(r["sentence"]) >= 8)


@pytest.mark.slow
def test_good_clip_writes_every_format(good_row, tmp_path):
    clip = clip_path(good_row)
    result = run_cli(str(clip), "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and error_lines(result.stderr) == []
    files = {fmt: tmp_path / f"{clip.stem}.{fmt}" for fmt in FORMATS}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.values())
    assert str(files["srt"]) in result.stdout

    subs = pysubs2.load(str(files["srt"]), encoding="utf-8")
    assert len(subs) >= 1
    hanzi = "".join(line for e in subs for line in e.plaintext.splitlines() if has_cjk(line))  # 1-2 per cue
    assert has_cjk(hanzi) and traditional_only_chars(hanzi) == []
    assert cer([good_row["sentence"]], [hanzi]) < 0.5, (good_row["sentence"], hanzi)
    assert files["vtt"].read_text(encoding="utf-8").startswith("WEBVTT")
    assert len(pysubs2.load(str(files["ass"]), encoding="utf-8")) == len(subs)
    assert has_cjk(files["txt"].read_text(encoding="utf-8"))


@pytest.mark.slow
def test_bad_inputs_each_get_one_error_line_and_the_good_one_is_still_written(bad_files, good_row, tmp_path):
    url = closed_port_url()
    clip = clip_path(good_row)
    out = tmp_path / "out"
    inputs = [bad_files["missing"], bad_files["empty"], bad_files["random"], bad_files["silence"], url, clip]
    result = run_cli(*map(str, inputs), "-o", str(out), "--allow-local-urls")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 5, result.stderr
    assert errors[0] == "error: missing.mp3: no such file"
    assert errors[1] == "error: empty.mp3 is empty (0 bytes)"
    assert errors[2] in ("error: could not read random.mp3: not an audio or video file ffmpeg can decode",
                         "error: could not decode random.mp3: not an audio or video file ffmpeg can decode")
    assert errors[3] == f"error: {bad_files['silence'].name}: no speech found in the audio"
    assert errors[4] == f"error: could not reach {url}: check the link and your connection"
    # The good input after the failures: no lost work.
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{clip.stem}.{fmt}" for fmt in FORMATS)
    assert has_cjk((out / f"{clip.stem}.txt").read_text(encoding="utf-8"))
    assert f"{clip}: " in result.stdout


def test_file_longer_than_max_duration(good_row, tmp_path):
    clip = clip_path(good_row)
    result = run_cli(str(clip), "-o", str(tmp_path / "out"), "--max-duration", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {clip.name} is 0:0") and errors[0].endswith("; the limit is 0:01")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
