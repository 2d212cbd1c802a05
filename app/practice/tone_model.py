"""The learnt tone classifier: which tone a syllable's voice carries, with a confidence, from its pitch.

Practice's first judge (`tones.classify`, nearest template on each clip's own range) was near chance on
real voices. This one differs in three ways:

* **the speaker's range, not the clip's**: pitch is measured against a `Calibration` (median and spread of
  the speaker's voiced semitones) taken from the whole recording and, in Practice, the speaker's earlier
  attempts; a one-syllable clip has no range of its own;
* **features a tone shows in** (`syllable_features`): the contour at POINTS steps on that scale, its slope
  and curvature, where it turns, duration, voiced share, loudness, and the neighbouring syllables' pitch
  (declination and carry-over: a syllable after a high one starts high);
* **learnt, not templated**: a small multilayer perceptron (FEATURES → hidden → 5: tones 1-4 and
  neutral) trained on many voices, connected speech and syllables said alone, by `python -m
  training.tone_model` into tone_model.npz (committed: five networks of 128 merged into one of 640,
  155 kB); inference here is numpy only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.practice.tones import PitchTrack

POINTS = 8  # contour samples per syllable
MODEL_FILE = Path(__file__).with_name("tone_model.npz")
TONES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Calibration:
    """A speaker's pitch: median and spread (half the 10th-90th percentile distance, at least 2 st)."""
    centre: float
    spread: float

    @classmethod
    def of(cls, tracks: list[PitchTrack]) -> "Calibration":
        voiced = np.concatenate([t.semitones[~np.isnan(t.semitones)] for t in tracks] or [np.zeros(0)])
        if voiced.size < 5:
            return cls(12.0, 4.0)
        low, centre, high = np.percentile(voiced, [10, 50, 90])
        return cls(float(centre), float(max((high - low) / 2.0, 2.0)))


def speaker_calibrations(pairs) -> dict[str, Calibration]:
    """One Calibration per speaker from (speaker, PitchTrack) pairs: all of a speaker's recordings together."""
    groups: dict[str, list[PitchTrack]] = {}
    for speaker, track in pairs:
        groups.setdefault(speaker, []).append(track)
    return {speaker: Calibration.of(tracks) for speaker, tracks in groups.items()}


def voiced_contour(track: PitchTrack, start: float, end: float) -> tuple[np.ndarray, float] | None:
    """POINTS semitone values over the voiced frames of [start, end] (octave jumps folded back, a 3-frame
    median), and the voiced share of the span; None when fewer than 3 frames are voiced."""
    inside = (track.times >= start) & (track.times <= end)
    voiced = inside & ~np.isnan(track.semitones)
    if voiced.sum() < 3:
        return None
    t, v = track.times[voiced], track.semitones[voiced].copy()
    middle = np.median(v)
    v = np.where(v - middle > 8, v - 12, np.where(middle - v > 8, v + 12, v))  # Praat's octave errors
    if v.size >= 3:
        padded = np.concatenate([v[:1], v, v[-1:]])
        v = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    grid = np.linspace(t[0], t[-1], POINTS)
    return np.interp(grid, t, v), float(voiced.sum() / max(inside.sum(), 1))


def _loudness(audio: np.ndarray | None, rate: int, start: float, end: float, peak: float) -> np.ndarray:
    """Three loudness values (dB re the recording's peak) over the syllable's thirds."""
    if audio is None or peak <= 0:
        return np.zeros(3)
    part = audio[int(start * rate):max(int(end * rate), int(start * rate) + 3)]
    thirds = np.array_split(part, 3)
    return np.array([20 * np.log10(max(np.sqrt(np.mean(x ** 2)) if x.size else 0.0, 1e-5) / peak) for x in thirds]) / 20


FEATURES = POINTS + 9 + 3 + 6  # contour; shape, duration, voicing, position; loudness; neighbours


def syllable_features(track: PitchTrack, spans: list[tuple[float, float] | None], calibration: Calibration,
                      audio: np.ndarray | None = None, rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """(features [n × FEATURES], voiced [n] bool) for each span; rows of unvoiced or missing spans are 0."""
    n = len(spans)
    contours: list[np.ndarray | None] = []
    shares = np.zeros(n)
    for k, span in enumerate(spans):
        found = voiced_contour(track, *span) if span else None
        contours.append(None if found is None else (found[0] - calibration.centre) / calibration.spread)
        shares[k] = 0.0 if found is None else found[1]
    peak = float(np.abs(audio).max()) if audio is not None and audio.size else 0.0
    rows, voiced = np.zeros((n, FEATURES)), np.zeros(n, bool)
    x = np.linspace(-1, 1, POINTS)
    for k, c in enumerate(contours):
        if c is None:
            continue
        voiced[k] = True
        start, end = spans[k]
        slope, curve = np.polyfit(x, c, 2)[[1, 0]]
        shape = [c.mean(), slope, curve, c[-1] - c[0], float(np.argmin(c)) / (POINTS - 1), c.max() - c.min(),
                 min(end - start, 1.0), shares[k], float(k == 0) + 2 * float(k == n - 1)]
        before = contours[k - 1] if k > 0 else None
        after = contours[k + 1] if k + 1 < n else None
        neighbours = [before[-1] if before is not None else 0.0, before.mean() if before is not None else 0.0,
                      float(before is not None),
                      after[0] if after is not None else 0.0, after.mean() if after is not None else 0.0,
                      float(after is not None)]
        rows[k] = np.concatenate([c, shape, _loudness(audio, rate, start, end, peak), neighbours])
    return rows, voiced


@dataclass(frozen=True)
class ToneModel:
    """A trained MLP: standardise, hidden layers with ReLU, softmax over TONES."""
    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    flag_below: float = 0.1  # a syllable is flagged when its expected tone's probability is under this

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        h = (features - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        h = np.exp(h - h.max(axis=1, keepdims=True))
        return h / h.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        arrays = {"mean": self.mean, "scale": self.scale, "flag_below": np.array(self.flag_below)}
        arrays.update({f"w{i}": w for i, w in enumerate(self.weights)})
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> "ToneModel":
        with np.load(path) as data:
            layers = sum(1 for k in data.files if k.startswith("w"))
            return cls(data["mean"], data["scale"], tuple(data[f"w{i}"] for i in range(layers)),
                       tuple(data[f"b{i}"] for i in range(layers)), float(data["flag_below"]))


@functools.lru_cache(maxsize=1)
def default_model() -> ToneModel | None:
    """The committed model, or None before `python -m training.tone_model` has written one."""
    return ToneModel.load() if MODEL_FILE.is_file() else None


@dataclass(frozen=True)
class HeardTone:
    tone: int  # 1-4, 5 = neutral
    confidence: float  # the model's probability of that tone
    probabilities: tuple[float, ...]  # over TONES

    def chance_of(self, tone: int) -> float:
        return self.probabilities[TONES.index(tone)]


def heard_tones(track: PitchTrack, spans: list[tuple[float, float] | None], calibration: Calibration,
                audio: np.ndarray | None = None, model: ToneModel | None = None) -> list[HeardTone | None]:
    """The tone the voice carries in each span (None where unvoiced or no span)."""
    model = model or default_model()
    if model is None or not spans:
        return [None] * len(spans)
    rows, voiced = syllable_features(track, spans, calibration, audio)
    probs = model.probabilities(rows)
    return [HeardTone(TONES[int(np.argmax(p))], float(p.max()), tuple(float(v) for v in p)) if ok else None
            for p, ok in zip(probs, voiced)]
