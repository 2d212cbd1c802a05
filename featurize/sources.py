"""Where clips come from: the `--source` syntax, opening each kind, and reading clips back in order.

    KIND:LOCATION[:SPLITS][@WEIGHT]

    cv:DIR[:SPLITS]              a Common Voice release folder on disk: clips/ + train.tsv, dev.tsv,
                                 test.tsv (any TSV beside them, e.g. validated, is a split too);
                                 SPLITS is one name or several joined by '+', default train+dev+test
    hf:DATASET[:CONFIG][:SPLITS] a Hugging Face dataset (Hub id or local folder), e.g.
                                 hf:mozilla-foundation/common_voice_11_0:zh-CN:train; with one
                                 part after DATASET it is the split (default train)
    manifest:FILE[:SPLIT]        a .tsv or .csv with an audio path column and a sentence column;
                                 relative paths are relative to FILE's folder; default split train
    @WEIGHT                      how many times each clip is used (default 1): 0.5 keeps a seeded
                                 half, 2 writes each clip twice (with augmentation, two different
                                 versions); decided per clip, so it survives resume and sharding

Every clip's split (train, dev, ...) decides the output file it lands in, so one run can write
train, dev and test at once, and two sources with the same split are mixed into it.

A table (cv or manifest) is not trusted: a row with more or fewer fields than its header, a path
that leads out of the dataset folder (absolute or ../, unless --allow-outside-paths), and a path
that is not a regular file of at most --max-file-mb (/dev/zero, a FIFO, a folder) are refused
with a reason of REFUSALS, counted and named like any other dropped clip, never read.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from app.base.corpus import read_table
from app.base.errors import UserError, first_line

KINDS = ("cv", "hf", "manifest")
CV_DEFAULT_SPLITS = ("train", "dev", "test")
DEFAULT_COLUMNS = {  # (audio, text) column names per kind; CV's TSVs and Hub release agree on "sentence"
    "cv": ("path", "sentence"),
    "hf": ("audio", "sentence"),
    "manifest": ("path", "sentence"),
}
# Why a row or file is refused before any decoding (drop reasons, as counted in the manifest).
REFUSALS = ("extra_fields", "missing_fields", "outside_dataset", "missing_file", "not_a_file", "file_too_large")
DEFAULT_MAX_FILE_MB = 64.0  # a 30 s clip is under 6 MB even as 48 kHz stereo 16-bit WAV


class Refused(Exception):
    """A clip that is not read: `reason` is one of REFUSALS, the message says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(reason, detail)  # both in args: it survives pickling
        self.reason, self.detail = reason, detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    location: str  # absolute folder/file for cv and manifest, dataset id or folder for hf
    config: str | None
    splits: tuple[str, ...]
    weight: float
    written: str  # as typed, without the weight: the label used in logs, summaries and the `source` column

    def describe(self) -> dict:
        return {"written": self.written, "kind": self.kind, "location": self.location, "config": self.config,
                "splits": list(self.splits), "weight": self.weight}


def parse_source(text: str) -> SourceSpec:
    """Parse one --source value; every mistake is a UserError naming the value."""
    spec, weight = text, 1.0
    if "@" in text:
        head, tail = text.rsplit("@", 1)
        try:
            weight = float(tail)
        except ValueError:
            raise UserError(f"--source {text}: weight '{tail}' after @ is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise UserError(f"--source {text}: weight must be a number >= 0")
        spec = head
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        raise UserError(f"--source {text}: unknown source kind '{kind}' (use one of: {', '.join(KINDS)}; "
                        "e.g. cv:DIR:train, hf:DATASET:CONFIG:SPLIT, manifest:FILE.tsv)")
    if not rest:
        raise UserError(f"--source {text}: nothing after '{kind}:'")
    if kind == "hf":
        parts = rest.split(":")
        if len(parts) > 3 or not all(parts):
            raise UserError(f"--source {text}: expected hf:DATASET[:CONFIG][:SPLITS]")
        location = parts[0]
        config = parts[1] if len(parts) == 3 else None
        splits = tuple(parts[-1].split("+")) if len(parts) >= 2 else ("train",)
        if Path(location).expanduser().is_dir():
            location = str(Path(location).expanduser().resolve())
        return SourceSpec(kind, location, config, splits, weight, spec)
    location, splits = rest, None
    # The split is the part after the last ':' only when that leaves an existing path.
    if ":" in rest:
        head, tail = rest.rsplit(":", 1)
        if head and Path(head).expanduser().exists() and not Path(rest).expanduser().exists():
            location, splits = head, tuple(tail.split("+"))
    path = Path(location).expanduser().resolve()
    if kind == "cv":
        if not path.is_dir():
            raise UserError(f"--source {text}: {location} is not a folder "
                            "(a Common Voice release: clips/ + train.tsv ...)")
        splits = splits or CV_DEFAULT_SPLITS
        missing = [s for s in splits if not (path / f"{s}.tsv").is_file()]
        if missing:
            raise UserError(f"--source {text}: no {', '.join(s + '.tsv' for s in missing)} in {location}")
    else:
        if not path.is_file():
            raise UserError(f"--source {text}: manifest {location} not found")
        if path.suffix.lower() not in (".tsv", ".csv"):
            raise UserError(f"--source {text}: manifest must be a .tsv or .csv file")
        splits = splits or ("train",)
        if len(splits) != 1:
            raise UserError(f"--source {text}: a manifest is one split")
    if not all(splits):
        raise UserError(f"--source {text}: empty split name")
    return SourceSpec(kind, str(path), None, splits, weight, spec)


@dataclass
class Clip:
    """One utterance as a source gives it: audio (a file or bytes) and its sentence."""

    key: str  # unique within (source, split); seeds augmentation and weighting
    sentence: str
    name: str  # what logs show: the file path, or dataset:split[row]
    path: str | None = None
    data: bytes | None = None
    refused: Refused | None = None  # decided when the table was read (fields, path outside the folder)
    timing: str = ""  # "START-END:CHARS ..." per sentence, when the table says (featurize.labels.parse_timing)

    def check(self, max_bytes: int) -> None:
        """Raise Refused unless the clip may be read; cheap (a stat), so it runs before @WEIGHT
        and a refused row is counted whether or not its copies were sampled out."""
        if self.refused is not None:
            raise self.refused
        if self.data is not None:
            if len(self.data) > max_bytes:
                raise Refused("file_too_large", f"{len(self.data) / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit")
            return
        if self.path:
            try:
                _check_stat(os.stat(self.path), max_bytes)
            except (FileNotFoundError, NotADirectoryError):
                raise Refused("missing_file", "no such file") from None
            except ValueError:  # a NUL byte in the path
                raise Refused("not_a_file", "not a valid path") from None

    def read_audio(self, max_bytes: int) -> bytes:
        if self.data is not None:
            return self.data
        if not self.path:
            raise OSError(0, "the row has no audio bytes or path")
        return read_regular_file(self.path, max_bytes)


def _check_stat(st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not_a_file", "not a regular file")
    if st.st_size > max_bytes:
        raise Refused("file_too_large", f"{st.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit")


def read_regular_file(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`. The type and size are checked on the
    open descriptor (a path swapped after Clip.check is caught too), O_NONBLOCK keeps a FIFO from
    blocking the open, and at most max_bytes + 1 bytes are read (a file that grows is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise Refused("missing_file", "no such file") from None
    try:
        _check_stat(os.fstat(fd), max_bytes)
    except Refused:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Refused("file_too_large", f"grew past the {max_bytes / 1e6:g} MB limit while read")
    return data


class Row(NamedTuple):
    """One row of a cv/manifest table, as planned (a tuple: a million of them stay small)."""

    key: str
    path: str  # the audio file; for a refused row, what the table said
    sentence: str
    name: str  # what logs show
    refusal: str = ""  # one of REFUSALS when the row is refused, else ""
    detail: str = ""
    timing: str = ""  # the table's optional `timing` column: where each sentence is (featurize.labels)


@dataclass
class Unit:
    """The clips of one output shard: a slice of one source split (picklable, sent to workers)."""

    source: SourceSpec
    split: str
    columns: tuple[str, str]
    rows: list[Row] | None = None  # local sources
    start: int = 0  # hf: row range
    stop: int = 0
    stream_shard: int | None = None  # hf streaming: which of the stream's files
    stream_shards: int = 0
    streaming: bool = False

    @property
    def size(self) -> int | None:
        if self.rows is not None:
            return len(self.rows)
        return None if self.streaming else self.stop - self.start

    def clips(self) -> Iterator[Clip]:
        if self.rows is not None:
            for row in self.rows:
                refused = Refused(row.refusal, row.detail) if row.refusal else None
                yield Clip(key=row.key, sentence=row.sentence, name=row.name, path=row.path, refused=refused,
                           timing=row.timing)
            return
        yield from _hf_clips(self)


def copies(weight: float, seed: int, source: SourceSpec, split: str, key: str) -> int:
    """How many times a clip is used: floor(weight), plus one more with probability frac(weight).

    Decided by a hash of (seed, source, split, key), not by position, so any shard order,
    resume or cluster split gives the same answer.
    """
    whole = int(weight)
    frac = weight - whole
    if frac == 0:
        return whole
    digest = hashlib.sha256(f"{seed}|{source.written}|{split}|{key}".encode()).digest()
    return whole + (int.from_bytes(digest[:8], "big") / 2**64 < frac)


# --- local sources: cv release folders and manifests -------------------------------------------


def _local_rows(spec: SourceSpec, split: str, columns: tuple[str, str], allow_outside: bool = False) -> list[Row]:
    audio_column, text_column = columns
    if spec.kind == "cv":
        table = Path(spec.location) / f"{split}.tsv"
        audio_root = Path(spec.location) / "clips"
        dataset = Path(spec.location)
    else:
        table = Path(spec.location)
        audio_root = dataset = table.parent
    names, rows = read_table(table)
    missing = [c for c in (audio_column, text_column) if c not in names]
    if missing:
        raise UserError(
            f"{table}: no column {' or '.join(repr(c) for c in missing)} (columns: {', '.join(names) or 'none'}); "
            "set --audio-column-name / --text-column-name"
        )
    out, seen = [], set()
    for line, row in enumerate(rows, start=2):
        rel = (row.get(audio_column) or "").strip()
        key = rel if rel not in seen else f"{rel}@line{line}"
        seen.add(key)
        path = os.path.normpath(os.path.join(audio_root, rel))  # an absolute `rel` replaces the root
        refusal, detail = _row_refusal(row, len(names), rel, path, dataset, allow_outside)
        name = f"{table.name} line {line}" + (f" ({rel[:200]})" if rel else "") if refusal else path
        out.append(Row(key or f"line{line}", path, row.get(text_column) or "", name, refusal, detail,
                       row.get("timing") or ""))
    return out


def _fields(n: int) -> str:
    return f"{n} field" + ("s" if n != 1 else "")


def _row_refusal(row: dict, fields: int, rel: str, path: str, dataset: Path,
                 allow_outside: bool) -> tuple[str, str]:
    """("", "") for a row that may be read, else (reason, why). csv.DictReader files the surplus of
    a long row under the key None and fills a short one with None: a sentence with a tab in it
    would otherwise lose its tail without a word."""
    if None in row:
        return "extra_fields", f"{_fields(fields + len(row[None]))}, the header has {fields}"
    if any(value is None for value in row.values()):
        given = sum(value is not None for value in row.values())
        return "missing_fields", f"{_fields(given)}, the header has {fields}"
    if not rel:
        return "missing_fields", "no audio path"
    # Lexical: "../" and absolute paths are refused; a symlink inside the folder is followed (the
    # Hugging Face cache and our tests link clips), and Clip.check refuses what it points at if
    # that is not a regular file within the size limit.
    if not allow_outside and os.path.commonpath([path, str(dataset)]) != str(dataset):
        return "outside_dataset", f"outside {dataset} (--allow-outside-paths reads it)"
    return "", ""


# --- Hugging Face datasets ----------------------------------------------------------------------


def _hub_error(spec: SourceSpec, split: str, exc: Exception) -> UserError:
    first = first_line(exc)
    where = spec.location + (f" ({spec.config})" if spec.config else "") + f" split {split}"
    return UserError(f"could not open Hugging Face dataset {where}: {type(exc).__name__}: {first} "
                     "(offline, gated or misspelt? a local copy works as hf:/path/to/folder:SPLIT)")


_open_datasets: dict = {}


def open_hf(spec: SourceSpec, split: str, streaming: bool, audio_column: str):
    """load_dataset with the audio column left undecoded ({bytes, path}): we decode ourselves."""
    cache_key = (spec.location, spec.config, split, streaming, audio_column)
    if cache_key in _open_datasets:
        return _open_datasets[cache_key]
    try:
        import datasets

        datasets.logging.set_verbosity_error()
        dataset = datasets.load_dataset(spec.location, spec.config, split=split, streaming=streaming)
    except Exception as exc:
        raise _hub_error(spec, split, exc) from exc
    if audio_column in (dataset.column_names or []):
        try:
            dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
        except Exception:
            pass  # a plain bytes/path column: read as it is
    _open_datasets[cache_key] = dataset
    return dataset


def _hf_clips(unit: Unit) -> Iterator[Clip]:
    audio_column, text_column = unit.columns
    dataset = open_hf(unit.source, unit.split, unit.streaming, audio_column)
    label = f"{unit.source.location}:{unit.split}"
    if unit.streaming:
        rows = dataset.shard(num_shards=unit.stream_shards, index=unit.stream_shard)
        keys = (f"{unit.stream_shard}/{i}" for i in range(sys.maxsize))
    else:
        rows = dataset.select(range(unit.start, unit.stop))
        keys = (str(i) for i in range(unit.start, unit.stop))
    for key, row in zip(keys, rows):
        audio = row[audio_column]
        data, path = None, None
        if isinstance(audio, dict):
            data, path = audio.get("bytes"), audio.get("path")
        elif isinstance(audio, (bytes, bytearray)):
            data = bytes(audio)
        elif isinstance(audio, str):
            path = audio
        yield Clip(key=key, sentence=row.get(text_column) or "", name=f"{label}[{key}]" + (f" {path}" if path else ""),
                   path=path, data=data)


# --- planning: sources -> units ------------------------------------------------------------------


def columns_for(kind: str, audio_column: str | None, text_column: str | None) -> tuple[str, str]:
    """--audio-column-name / --text-column-name when given, else the kind's usual names."""
    audio, text = DEFAULT_COLUMNS[kind]
    return audio_column or audio, text_column or text


def units_of(spec: SourceSpec, split: str, columns: tuple[str, str], clips_per_shard: int,
             streaming: bool, allow_outside: bool = False) -> list[Unit]:
    """Cut one source split into shards: fixed-size row ranges (a stream: one unit per stream file)."""
    if spec.kind in ("cv", "manifest"):
        rows = _local_rows(spec, split, columns, allow_outside)
        return [Unit(spec, split, columns, rows=rows[i : i + clips_per_shard])
                for i in range(0, len(rows), clips_per_shard)]
    dataset = open_hf(spec, split, streaming, columns[0])
    names = dataset.column_names
    if names is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise UserError(f"{spec.written}: no column {' or '.join(repr(c) for c in missing)} "
                            f"(columns: {', '.join(names)}); set --audio-column-name / --text-column-name")
    if streaming:
        n = dataset.num_shards
        return [Unit(spec, split, columns, stream_shard=i, stream_shards=n, streaming=True) for i in range(n)]
    total = len(dataset)
    return [Unit(spec, split, columns, start=i, stop=min(i + clips_per_shard, total))
            for i in range(0, total, clips_per_shard)]
