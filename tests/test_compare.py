"""training.compare: the paired bootstrap that says whether a CER difference on a small real-speech half is noise."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from training.compare import compare, read_clips
from tests.conftest import ROOT


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["clip", "reference", "hypothesis", "char_errors", "ref_chars"])
        writer.writeheader()
        writer.writerows({"clip": c, "reference": "", "hypothesis": "", "char_errors": e, "ref_chars": n}
                         for c, e, n in rows)


def test_a_difference_every_clip_shows_is_read_as_real_and_one_from_a_single_clip_is_not():
    clips = [f"c{i}" for i in range(12)]
    base = {c: (4, 20) for c in clips}
    everywhere = {c: (2, 20) for c in clips}  # two fewer errors on every clip
    one_clip = {**base, "c0": (0, 20)}  # the same total gain's third, all on one clip
    sure = compare(base, everywhere, resamples=2000)
    assert sure.cer_a == pytest.approx(0.2) and sure.cer_b == pytest.approx(0.1)
    assert sure.high < 0 and sure.b_better_share == 1.0
    unsure = compare(base, one_clip, resamples=2000)
    assert unsure.low < 0 <= unsure.high  # the interval holds 0: inside the noise
    assert 0.4 < unsure.b_better_share < 0.9


def test_files_of_other_clips_are_refused_with_one_error_line(tmp_path):
    write(tmp_path / "a.csv", [("x", 1, 10), ("y", 0, 5)])
    write(tmp_path / "b.csv", [("x", 1, 10), ("z", 0, 5)])
    assert read_clips(tmp_path / "a.csv") == {"x": (1, 10), "y": (0, 5)}
    result = subprocess.run([sys.executable, "-m", "training.compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1
