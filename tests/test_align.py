"""Syllable timing by alignment to a reference reading (app.practice.align): the warping path is the
least-cost one, boundaries land where the sounds are after stretching, pausing and padding, and on two
real synthesised voices they land within tens of milliseconds of the model's own durations."""

from __future__ import annotations

import numpy as np
import pytest

from app.practice.align import HOP, align_to_reference, dtw_path, frame_costs

RATE = 16000
# Each "syllable": a harmonic voice whose spectral peak sits at its own frequency, so neighbours differ.
PEAKS = [500, 1800, 900, 2600, 700, 1400, 3200, 1100]


def syllable(seconds: float, peak: float, f0: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.exp(-((h * f0 - peak) / 350.0) ** 2) * np.sin(2 * np.pi * h * f0 * t) for h in range(1, 40))
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10-ms fades: no click at each edge
    return (0.3 * wave * ramp + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def utterance(durations, pauses, lead: float, tail: float, f0: float, seed: int):
    """Audio and each syllable's true (start, end): syllables back to back except for `pauses` (seconds of
    silence after syllable k)."""
    rng = np.random.default_rng(seed)
    parts, spans, now = [0.002 * rng.standard_normal(int(lead * RATE)).astype(np.float32)], [], lead
    for k, (seconds, peak) in enumerate(zip(durations, PEAKS)):
        parts.append(syllable(seconds, peak, f0, rng))
        spans.append((now, now + seconds))
        now += seconds
        gap = pauses.get(k, 0.0)
        parts.append(0.002 * rng.standard_normal(int(gap * RATE)).astype(np.float32))
        now += gap
    parts.append(0.002 * rng.standard_normal(int(tail * RATE)).astype(np.float32))
    return np.concatenate(parts), spans


def boundary_errors(found, truth) -> np.ndarray:
    return np.array([abs(g - t) for f, s in zip(found, truth) for g, t in zip(f, s)])


def test_stretched_padded_paused_attempt_maps_within_tolerance():
    """The attempt: every syllable stretched by its own factor (0.7-1.5), a 0.6-s lead and 0.9-s tail of
    silence, a pause of 0.4 s where the reference pauses 0.1 s (a comma), and another voice pitch."""
    durations = [0.22, 0.18, 0.30, 0.20, 0.25, 0.16, 0.28, 0.24]
    stretch = [1.5, 0.7, 1.2, 1.4, 0.8, 1.3, 0.9, 1.1]
    reference, ref_spans = utterance(durations, {3: 0.1}, lead=0.05, tail=0.1, f0=220.0, seed=1)
    attempt, true_spans = utterance([d * s for d, s in zip(durations, stretch)], {3: 0.4}, lead=0.6, tail=0.9,
                                    f0=130.0, seed=2)
    found = align_to_reference(attempt, reference, ref_spans)
    errors = boundary_errors(found, true_spans)
    assert errors.max() < 0.03, errors
    # The pause lies between syllables 3 and 4: the one ends before it, the other starts after it.
    assert found[3][1] < true_spans[3][1] + 0.03 and found[4][0] > true_spans[4][0] - 0.03
    # The test has teeth: a linear stretch of the reference onto the attempt (no warping) is far off.
    scale = (true_spans[-1][1] - true_spans[0][0]) / (ref_spans[-1][1] - ref_spans[0][0])
    linear = [tuple(true_spans[0][0] + (t - ref_spans[0][0]) * scale for t in s) for s in ref_spans]
    assert boundary_errors(linear, true_spans).max() > 0.1


def test_none_spans_and_silence():
    durations = [0.2, 0.25, 0.2]
    reference, spans = utterance(durations, {}, 0.1, 0.1, 200.0, seed=3)
    attempt, truth = utterance(durations, {}, 0.3, 0.1, 200.0, seed=4)
    found = align_to_reference(attempt, reference, [spans[0], None, spans[2]])
    assert found[1] is None and found[0] is not None and found[2] is not None
    assert boundary_errors([found[0], found[2]], [truth[0], truth[2]]).max() < 0.03
    silent = np.zeros(RATE, dtype=np.float32)
    assert align_to_reference(silent, reference, spans) == [None, None, None]
    assert align_to_reference(attempt, silent, spans) == [None, None, None]
    assert align_to_reference(np.zeros(0, dtype=np.float32), reference, spans) == [None, None, None]
    assert all(s[1] - s[0] >= HOP for s in found if s is not None)


def brute_force_cost(cost: np.ndarray) -> float:
    n, m = cost.shape
    total = np.full((n, m), np.inf)
    for i in range(n):
        for j in range(m):
            if i == j == 0:
                total[0, 0] = cost[0, 0]
                continue
            options = [total[i - 1, j] + cost[i, j] if i else np.inf, total[i, j - 1] + cost[i, j] if j else np.inf,
                       total[i - 1, j - 1] + 2 * cost[i, j] if i and j else np.inf]
            total[i, j] = min(options)
    return float(total[-1, -1])


@pytest.mark.parametrize("shape", [(7, 19), (23, 11), (30, 30), (1, 6)])
def test_dtw_path_is_the_least_cost_monotone_path(shape):
    rng = np.random.default_rng(sum(shape))
    a, b = rng.standard_normal((shape[0], 5)), rng.standard_normal((shape[1], 5))
    cost = frame_costs(a, b)
    i, j = dtw_path(cost)
    assert (i[0], j[0], i[-1], j[-1]) == (0, 0, shape[0] - 1, shape[1] - 1)
    steps = np.stack([np.diff(i), np.diff(j)], axis=1)
    assert {tuple(s) for s in steps} <= {(1, 0), (0, 1), (1, 1)}
    assert cost == pytest.approx(np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)), abs=1e-5)
    weights = np.where((steps == 1).all(axis=1), 2.0, 1.0)
    path_cost = cost[0, 0] + float((weights * cost[i[1:], j[1:]]).sum())
    assert path_cost == pytest.approx(brute_force_cost(cost), rel=1e-6)


def test_two_real_voices(voices):
    """A woman's reading at speed 1.0 as reference, a man's at 0.85 after 0.5 s of silence as the attempt:
    the model's own syllable durations are the truth."""
    from app.speech.audio import resample

    text = "明天放假，不用上学。"
    ref = voices.speak_timed(text, "zf_xiaoxiao", 1.0)
    said = voices.speak_timed(text, "zm_yunxi", 0.85)
    lead = np.zeros(RATE // 2, dtype=np.float32)
    attempt = np.concatenate([lead, resample(said.audio, voices.SAMPLE_RATE)])
    truth = [(s + 0.5, e + 0.5) for s, e in said.spans]
    found = align_to_reference(attempt, resample(ref.audio, voices.SAMPLE_RATE), ref.spans)
    errors = boundary_errors(found, truth)
    assert np.median(errors) < 0.03 and np.percentile(errors, 90) < 0.08, errors
    inside = [t[0] <= (f[0] + f[1]) / 2 <= t[1] for f, t in zip(found, truth)]
    assert sum(inside) >= len(inside) - 1, (found, truth)
