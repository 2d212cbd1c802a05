"""Tone from the voice itself: F0 (Praat's autocorrelation pitch, via parselmouth) over a
syllable's time span, classified against the four Mandarin tone shapes and the neutral tone.

Each tone is a 5-point template in Chao's five-level scale, placed on the speaker's own range (the
10th to 90th percentile of the utterance's voiced pitch in semitones); the nearest template wins,
comparing mostly shape (level weighted 0.2), since declination moves whole syllables up or down.

The templates are connected-speech shapes, not the textbook citation ones (T2 35, T4 51): they are
the mean contours measured on 83 zh-synth *dev* clips (app/evaluation/tones.py), where T2 dips before
a weak rise and T4 falls about half the range. With textbook templates 4-tone accuracy on those
clips was 39%, with these 46%. Figures on the test split are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.speech.audio import SAMPLE_RATE

POINTS = 5  # samples per syllable contour
# Chao levels at 5 evenly spaced points through the syllable's voiced part.
TEMPLATES: dict[int, tuple[float, ...]] = {
    1: (4.1, 4.1, 4.15, 4.2, 3.9),
    2: (3.0, 2.55, 2.45, 2.7, 2.85),
    3: (3.0, 2.25, 1.7, 1.6, 1.65),
    4: (4.1, 3.8, 3.4, 3.1, 2.6),
    5: (2.7, 2.65, 2.75, 2.95, 3.0),
}
LEVEL_WEIGHT = 0.2


@dataclass
class PitchTrack:
    times: np.ndarray  # seconds
    semitones: np.ndarray  # re 100 Hz, NaN where unvoiced
    low: float  # speaker range: 10th percentile of voiced semitones
    high: float  # 90th percentile

    def chao_to_semitones(self, level: float) -> float:
        return self.low + (level - 1.0) / 4.0 * max(self.high - self.low, 3.0)


def pitch_track(audio: np.ndarray, floor: float = 70.0, ceiling: float = 500.0) -> PitchTrack:
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=SAMPLE_RATE)
    pitch = sound.to_pitch_ac(time_step=0.01, pitch_floor=floor, pitch_ceiling=ceiling)
    hz = pitch.selected_array["frequency"]
    semitones = np.where(hz > 0, 12.0 * np.log2(np.maximum(hz, 1e-6) / 100.0), np.nan)
    voiced = semitones[~np.isnan(semitones)]
    low, high = (np.percentile(voiced, 10), np.percentile(voiced, 90)) if voiced.size else (0.0, 12.0)
    return PitchTrack(np.asarray(pitch.xs()), semitones, float(low), float(high))


def contour(track: PitchTrack, start: float, end: float, points: int = POINTS) -> np.ndarray | None:
    """`points` semitone values across the voiced frames of [start, end], or None if too few voiced."""
    inside = (track.times >= start) & (track.times <= end) & ~np.isnan(track.semitones)
    if inside.sum() < 3:
        return None
    t, v = track.times[inside], track.semitones[inside]
    grid = np.linspace(t[0], t[-1], points)
    return np.interp(grid, t, v)


def voiced_span(track: PitchTrack) -> tuple[float, float] | None:
    """(first, last) voiced frame time: a syllable recorded alone; None when fewer than 3 frames are voiced."""
    voiced = track.times[~np.isnan(track.semitones)]
    return (float(voiced[0]), float(voiced[-1])) if voiced.size >= 3 else None


def classify(track: PitchTrack, start: float, end: float) -> tuple[int | None, np.ndarray | None]:
    """Nearest tone template to the syllable's contour; (None, None) when the syllable is unvoiced."""
    values = contour(track, start, end)
    if values is None:
        return None, None
    best, best_distance = None, np.inf
    for tone, shape in TEMPLATES.items():
        expected = np.array([track.chao_to_semitones(level) for level in shape])
        shape_error = np.mean(((values - values.mean()) - (expected - expected.mean())) ** 2)
        distance = float(shape_error + LEVEL_WEIGHT * (values.mean() - expected.mean()) ** 2)
        if distance < best_distance:
            best, best_distance = tone, distance
    return best, values


def expected_contour(track: PitchTrack, tone: int, start: float, end: float, points: int = POINTS):
    """Times and semitones of `tone`'s template over [start, end], on this speaker's range (for the
    plot): the connected-speech shape `classify` compares with, not the textbook citation contour."""
    shape = TEMPLATES[tone]
    return np.linspace(start, end, points), np.array([track.chao_to_semitones(level) for level in shape])


def refine_spans(track: PitchTrack, spans: list[tuple[float, float]], snap: float = 0.08) -> list[tuple[float, float]]:
    """Move the recogniser's character spans onto the voice.

    Whisper's cross-attention timestamps are coarse and tend to lead the audio, and a leading
    span puts one syllable's pitch under its neighbour. So: (1) stretch all spans linearly onto the
    voiced extent of the recording (first to last voiced frame), then (2) snap each inner boundary
    to the middle of the nearest unvoiced gap within `snap` seconds — most Mandarin syllable
    boundaries with a consonant are one.
    """
    if not spans:
        return spans
    voiced = ~np.isnan(track.semitones)
    if voiced.sum() < 3:
        return spans
    v_start, v_end = float(track.times[voiced][0]), float(track.times[voiced][-1])
    s_start, s_end = spans[0][0], spans[-1][1]
    scale = (v_end - v_start) / max(s_end - s_start, 1e-3)
    bounds = [v_start + (s - s_start) * scale for s, _ in spans] + [v_end]
    gaps = _gap_centres(track.times, voiced)
    for k in range(1, len(bounds) - 1):
        near = gaps[np.abs(gaps - bounds[k]) <= snap] if gaps.size else gaps
        if near.size:
            candidate = float(near[np.argmin(np.abs(near - bounds[k]))])
            if bounds[k - 1] < candidate < bounds[k + 1]:
                bounds[k] = candidate
    return [(bounds[k], bounds[k + 1]) for k in range(len(spans))]


def _gap_centres(times: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    centres, k = [], 0
    while k < len(voiced):
        if not voiced[k]:
            j = k
            while j + 1 < len(voiced) and not voiced[j + 1]:
                j += 1
            centres.append((times[k] + times[j]) / 2)
            k = j + 1
        else:
            k += 1
    return np.array(centres)
