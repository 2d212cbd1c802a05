"""Is model B really better than model A on this split? A paired bootstrap over clips.

    python -m training.compare runs/results/base-real-test.csv runs/results/dec-real-test.csv

Both CSVs come from `python -m training.evaluate ... --csv` on the same split. CER is pooled (the sum of
character errors over the sum of reference characters), as `training.evaluate` reports it. The clips are
resampled with replacement, the same clips for both models (they are paired), and the difference
CER(B) − CER(A) is recomputed each time: its 95 % interval says how far a small real-speech half lets a
difference be read. An interval that holds 0 is inside the noise.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESAMPLES = 10_000
SEED = 1234


@dataclass(frozen=True)
class Comparison:
    clips: int
    cer_a: float
    cer_b: float
    low: float  # 95 % interval of CER(B) − CER(A)
    high: float
    b_better_share: float  # share of resamples where B has the lower CER


def read_clips(path: Path) -> dict[str, tuple[int, int]]:
    """clip → (character errors, reference characters) from a `training.evaluate --csv` file."""
    with open(path, encoding="utf-8", newline="") as f:
        return {r["clip"]: (int(r["char_errors"]), int(r["ref_chars"])) for r in csv.DictReader(f)}


def compare(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]],
            resamples: int = RESAMPLES, seed: int = SEED) -> Comparison:
    from scipy.stats import bootstrap

    if a.keys() != b.keys():
        raise ValueError("the two files score different clips: run both on the same split")
    clips = sorted(a)
    errors_a = np.array([a[c][0] for c in clips], float)
    errors_b = np.array([b[c][0] for c in clips], float)
    chars = np.array([a[c][1] for c in clips], float)

    def difference(ea, eb, n, axis=-1):
        return eb.sum(axis) / n.sum(axis) - ea.sum(axis) / n.sum(axis)

    result = bootstrap((errors_a, errors_b, chars), difference, paired=True, vectorized=True,
                       n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed))
    share = float(np.mean(result.bootstrap_distribution < 0))
    return Comparison(len(clips), errors_a.sum() / chars.sum(), errors_b.sum() / chars.sum(),
                      float(result.confidence_interval.low), float(result.confidence_interval.high), share)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="per-clip CSV of the model compared against (e.g. the base)")
    parser.add_argument("b", type=Path, help="per-clip CSV of the other model, same split")
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args(argv)
    try:
        result = compare(read_clips(args.a), read_clips(args.b), args.resamples)
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.clips} clips: A {result.cer_a:.2%}  B {result.cer_b:.2%}  "
          f"B − A {result.cer_b - result.cer_a:+.2%} (95 % interval {result.low:+.2%} to {result.high:+.2%}); "
          f"B lower in {result.b_better_share:.1%} of {args.resamples} resamples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
