"""Pinyin against the hand-checked reference list (tests/data/pinyin_reference.tsv).

    python tests/pinyin_accuracy.py              # this checkout's app/language/pinyin.py
    python tests/pinyin_accuracy.py --git b5e832c  # app/language/pinyin.py as it was at a commit, same list

Prints the share of lines whose pinyin equals the reference exactly, the share equal when case,
spaces, apostrophes and hyphens are ignored (syllables and tones only), and every line that differs.
tests/test_pinyin.py asserts the exact share; the README reports both runs.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "pinyin_reference.tsv"


def reference_rows(path: Path = REFERENCE) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def syllables_only(line: str) -> str:
    return re.sub(r"[\s'\-]", "", line.lower())


def score(pinyin_line, rows: list[dict]) -> tuple[float, float, list[tuple[str, str, str]]]:
    """(exact share, syllables-and-tones share, [(text, got, expected) for every differing line])."""
    got = [pinyin_line(row["text"]) for row in rows]
    misses = [(row["text"], g, row["pinyin"]) for row, g in zip(rows, got) if g != row["pinyin"]]
    loose = sum(syllables_only(g) == syllables_only(row["pinyin"]) for row, g in zip(rows, got))
    return 1 - len(misses) / len(rows), loose / len(rows), misses


def _pinyin_line_at(commit: str):
    """pinyin_line of app/language/pinyin.py at `commit`, loaded beside this checkout's other modules."""
    source = subprocess.run(["git", "show", f"{commit}:app/language/pinyin.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "pinyin_at_commit.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("pinyin_at_commit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.pinyin_line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git", metavar="COMMIT", help="score app/language/pinyin.py as it was at this commit")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.git:
        pinyin_line = _pinyin_line_at(args.git)
    else:
        from app.language.pinyin import pinyin_line
    rows = reference_rows()
    exact, loose, misses = score(pinyin_line, rows)
    for text, got, expected in misses:
        print(f"{text}\n  got:      {got}\n  expected: {expected}")
    print(f"{len(rows)} lines: {exact:.1%} exact, {loose:.1%} same syllables and tones "
          f"({len(misses)} differ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
