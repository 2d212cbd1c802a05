"""Speech corpora on disk: the one reader of Common Voice's layout (clips/ + SPLIT.tsv) and of
manifest tables, and the one per-clip CSV writer of the evaluators.

Common Voice's TSVs are unquoted (a sentence may hold '"'), so they are read with QUOTE_NONE; CSV
manifests follow the usual quoting. A BOM is dropped.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from app.base.errors import UserError


def read_table(path: str | Path) -> tuple[list[str], list[dict]]:
    """(column names, rows) of a .tsv (unquoted, Common Voice) or .csv file."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    csv.field_size_limit(sys.maxsize)  # a corpus's sentence may be longer than csv's 128 KB default
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter, quoting=quoting)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"could not read {path}: {exc}") from exc


def read_split(folder: str | Path, split: str) -> list[dict]:
    """The rows of a Common Voice layout split (each with at least 'path' and 'sentence')."""
    path = Path(folder) / f"{split}.tsv"
    if not path.is_file():
        raise UserError(f"{path} not found: expected a Common Voice layout (clips/ and {split}.tsv)")
    names, rows = read_table(path)
    if rows and not {"path", "sentence"} <= set(names):
        raise UserError(f"{path} lacks the 'path' and 'sentence' columns")
    return rows


def clip_path(folder: str | Path, row: dict) -> Path:
    return Path(folder) / "clips" / row["path"]


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """One CSV row per clip, the columns of the first row (the per-clip file every evaluator writes)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
