"""`python -m app transcribe` as a learner runs it: a real subprocess, real files, the embedded model."""

from __future__ import annotations

import subprocess
import sys

import pysubs2
import pytest

from app.language.text import cer, has_cjk, normalize_for_cer, traditional_only_chars
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


def on_a_terminal(*args: str, timeout: float = 300) -> tuple[int, list[str]]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns the exit status and the lines
    a terminal shows (each line as its last carriage return leaves it, colour codes removed)."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a window's size
    process = subprocess.Popen([sys.executable, "-m", "app", "transcribe", *args, "--english", "none"],
                               cwd=ROOT, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the pty is closed once the process exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    status = process.wait(timeout=timeout)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    return status, [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]


@pytest.mark.model
@pytest.mark.parametrize("kind", ["random", "link"])
def test_bad_input_in_a_log_is_one_stage_line_then_the_error(kind, bad_files, tmp_path):
    source = str(bad_files["random"]) if kind == "random" else closed_port_url()
    result = run_cli(source, "-o", str(tmp_path), "--allow-local-urls")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[1].startswith("error: "), result.stderr
    label = "random.mp3" if kind == "random" else source[:30]
    assert lines[0] == f"{label}: " + ("decoding" if kind == "random" else "checking the link"), result.stderr


@pytest.mark.model
def test_bad_input_on_a_terminal_is_at_most_one_bar_then_the_error(bad_files, tmp_path):
    status, lines = on_a_terminal(str(bad_files["random"]), "-o", str(tmp_path))
    assert status == 1 and not any("Traceback" in line for line in lines)
    shown = [line for line in lines if line.strip()]
    errors = [n for n, line in enumerate(shown) if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] <= 1, shown
    assert shown[errors[0]].startswith("error: could not ") and "random.mp3" in shown[errors[0]], shown
    if errors[0] == 1:  # the bar as a terminal shows it: the stage in words, no stray comma
        assert shown[0].startswith("random.mp3: decoding") and "," not in shown[0], shown


@pytest.mark.model
def test_file_longer_than_max_duration(good_row, tmp_path):
    clip = clip_path(good_row)
    result = run_cli(str(clip), "-o", str(tmp_path / "out"), "--max-duration", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {clip.name} is 0:0") and errors[0].endswith("; the limit is 0:01")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.fixture(scope="module")
def lesson(zh_synth, tmp_path_factory):
    """Four sentences 1.5 s apart (several cues), as one WAV."""
    from app.speech.audio import write_audio
    from tests.conftest import joined_audio

    rows = [r for r in read_split("test") if 8 <= len(r["sentence"]) <= 14][:4]
    return write_audio(joined_audio(rows, 1.5), tmp_path_factory.mktemp("lesson") / "lesson.wav")


def read_apkg(path, folder) -> tuple[list[list[str]], dict[str, bytes]]:
    """An Anki package as Anki opens it: the notes' fields from its SQLite collection, its media by name."""
    import json
    import sqlite3
    import zipfile

    with zipfile.ZipFile(path) as z:
        media = {name: z.read(number) for number, name in json.loads(z.read("media")).items()}
        (folder / "collection.anki2").write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(folder / "collection.anki2") as db:
        notes = [row[0].split("\x1f") for row in db.execute("select flds from notes order by id")]
    return notes, media


def sound(fields: list[str]) -> str:
    field = next(f for f in fields if f.startswith("[sound:"))
    return field[len("[sound:"):-1]


@pytest.mark.slow
def test_apkg_is_a_sentence_deck_with_a_clip_per_cue(lesson, tmp_path):
    from app.speech.audio import SAMPLE_RATE, load_audio

    result = run_cli(str(lesson), "-o", str(tmp_path), "--formats", "srt,apkg")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.apkg", "lesson.srt"]
    cues = pysubs2.load(str(tmp_path / "lesson.srt"), encoding="utf-8")
    notes, media = read_apkg(tmp_path / "lesson.apkg", tmp_path)
    assert len(cues) >= 2 and len(notes) == len(cues)  # one note per cue
    assert len(media) == len(notes) and len({sound(n) for n in notes}) == len(notes)
    for fields, cue in zip(notes, cues):
        hanzi = "".join(line for line in cue.plaintext.splitlines() if has_cjk(line))
        # The cue's hanzi: the deck keeps every mark, the SRT drops a line's closing ，。 and shows one
        # inside a line as a space; the characters are the same.
        assert normalize_for_cer(fields[0]) == normalize_for_cer(hanzi), (fields[0], hanzi)
        assert any(ch in fields[1] for ch in "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ")  # its pinyin
        clip = tmp_path / sound(fields)
        clip.write_bytes(media[sound(fields)])
        seconds = load_audio(clip).size / SAMPLE_RATE  # the clip is the cue, 0.2 s before and 0.3 s after
        assert abs(seconds - (cue.end - cue.start) / 1000 - 0.5) < 0.25, (seconds, cue)


@pytest.mark.slow
def test_vocab_level_makes_a_word_deck_of_the_words_at_or_above_it(lesson, tmp_path):
    from app.language.pinyin import words_with_pinyin
    from app.study.player import hsk_level

    result = run_cli(str(lesson), "-o", str(tmp_path), "--formats", "txt", "--vocab-level", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesson.apkg", "lesson.txt"]  # apkg implied
    notes, media = read_apkg(tmp_path / "lesson.apkg", tmp_path)
    transcript = (tmp_path / "lesson.txt").read_text(encoding="utf-8")
    assert notes, transcript
    words = [fields[0] for fields in notes]
    assert len(set(words)) == len(words)  # each word once
    for fields in notes:
        word, sentence = fields[0], fields[4]
        assert (hsk_level(word) or 10) >= 3 and word in sentence and sentence in transcript
        assert sound(fields) in media
    spoken = {w.hanzi for w in words_with_pinyin(transcript) if w.syllables}
    easy = {w for w in spoken if (hsk_level(w) or 10) < 3}
    assert easy and not easy & set(words)  # the words below level 3 stay out


def test_vocab_level_out_of_range_is_refused(good_row, tmp_path):
    result = run_cli(str(clip_path(good_row)), "-o", str(tmp_path / "out"), "--vocab-level", "0")
    assert result.returncode == 2 and "--vocab-level" in result.stderr and "Traceback" not in result.stderr
