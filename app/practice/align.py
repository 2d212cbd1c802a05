"""Syllable timing of a learner's attempt from a native reading of the same sentence.

The reference reading is synthesised (app.speech.synthesis.speak_timed), so each of its syllables'
spans is known from the model's own durations. The attempt is aligned to it by dynamic time warping
over MFCC frames, and every reference boundary is carried through the warping path onto the attempt's
time axis. Whisper's word timestamps lead the audio and are spread evenly over a word's characters;
the warping path follows the sound itself.

- Frames: faster-whisper's own log-mel (80 bands, 10-ms hop), whose DCT gives MFCC 0-12, plus their
  deltas (how the spectrum moves: syllable onsets), each normalised over the utterance's speech (mean
  and variance), which takes most of the speaker, the level and the channel out.
- Leading and trailing silence is trimmed on both sides before warping, so the path starts where both
  start speaking and ends where both stop. A pause inside the sentence that is longer (or only) in
  the attempt becomes a vertical run of the path; where the reference has a pause or a closure there,
  the run lands on it. Where it has none (two vowels run together), the run may land a few frames into
  a syllable, and that syllable's span takes the pause in (its pitch, unvoiced there, is unaffected).
- DTW with the symmetric step weights (diagonal 2, horizontal/vertical 1), one row at a time: the
  horizontal step inside a row is a running minimum, so each row is a few numpy operations.
"""

from __future__ import annotations

import functools

import numpy as np

RATE = 16000
HOP = 0.01  # seconds per frame: Whisper's log-mel hop (160 samples)
CEPSTRA = 13  # MFCC 0..12
SILENCE_BELOW_PEAK_DB = 35.0  # a frame this far below the clip's loud frames is silence...
SILENCE_ABOVE_FLOOR_DB = 12.0  # ...unless the floor (a noisy microphone) is higher: then this above it
MIN_SPEECH_FRAMES = 5
FLOOR_DB = 50.0  # levels further below the loud frames are all one silence


@functools.lru_cache(maxsize=1)
def _extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=80)


@functools.lru_cache(maxsize=4)
def _dct(bands: int, keep: int) -> np.ndarray:
    """Orthonormal DCT-II rows 0..keep-1 (numpy only: no scipy in the app's requirements)."""
    n = np.arange(bands)
    k = np.arange(keep)[:, None]
    rows = np.sqrt(2.0 / bands) * np.cos(np.pi * k * (2 * n + 1) / (2 * bands))
    rows[0] /= np.sqrt(2.0)
    return rows.astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) log10 mel power, frame t centred at t × HOP seconds."""
    spec = _extractor()(np.asarray(audio, dtype=np.float32), padding=0)
    return (spec.T * 4.0 - 4.0).astype(np.float32)  # undo Whisper's (x + 4) / 4 scaling


def loudness(mel: np.ndarray) -> np.ndarray:
    """Each frame's level in dB below the clip's loud frames (its 99th percentile), at most FLOOR_DB below."""
    db = 10.0 * np.log10(np.sum(10.0 ** mel.astype(np.float64), axis=1) + 1e-12)
    return np.clip(db - np.percentile(db, 99), -FLOOR_DB, 0.0) if len(db) else db


def silence(level: np.ndarray) -> np.ndarray:
    """Which frames are silence: quieter than the loud frames by SILENCE_BELOW_PEAK_DB, or, on a noisy
    microphone, less than SILENCE_ABOVE_FLOOR_DB above its floor."""
    if len(level) == 0:
        return np.zeros(0, dtype=bool)
    return level <= max(-SILENCE_BELOW_PEAK_DB, float(np.percentile(level, 5)) + SILENCE_ABOVE_FLOOR_DB)


def speech_extent(quiet: np.ndarray) -> tuple[int, int] | None:
    """(first, last) frame that is not silence, None when fewer than MIN_SPEECH_FRAMES are."""
    loud = np.flatnonzero(~quiet)
    if loud.size < MIN_SPEECH_FRAMES:
        return None
    return int(loud[0]), int(loud[-1])


def features(mel: np.ndarray) -> np.ndarray:
    """MFCC 0..12 and their deltas, each normalised to mean 0, variance 1 over these frames."""
    cep = mel @ _dct(mel.shape[1], CEPSTRA).T
    padded = np.pad(cep, ((2, 2), (0, 0)), mode="edge")
    delta = (padded[3:-1] - padded[1:-3] + 2 * (padded[4:] - padded[:-4])) / 10.0  # HTK regression, ±2 frames
    both = np.hstack([cep, delta])
    return ((both - both.mean(axis=0)) / (both.std(axis=0) + 1e-6)).astype(np.float32)


def frame_costs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the frames of a and b."""
    return np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0))


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-cost monotone path from (0, 0) to the last cell of `cost` (frames of a × frames of b),
    steps (1, 0), (0, 1) and (1, 1), the diagonal's cost counted twice: (indices into a, into b)."""
    n, m = cost.shape
    diagonal = np.zeros((n, m), dtype=bool)  # how each cell was reached: diagonal, from the left, else below
    left = np.zeros((n, m), dtype=bool)
    left[0, 1:] = True
    row = np.cumsum(cost[0], dtype=np.float64)
    for i in range(1, n):
        c = cost[i]
        entry = row + c  # from below
        diag = row[:-1] + 2.0 * c[1:]
        diagonal[i, 1:] = diag <= entry[1:]
        entry[1:] = np.minimum(entry[1:], diag)
        run = np.cumsum(c, dtype=np.float64)
        rest = entry - run
        best = np.minimum.accumulate(rest)  # then any horizontal run within the row
        left[i] = rest > best  # exact: best is rest itself or an earlier element of it, copied
        row = run + best
    return _backtrack(diagonal, left)


def _backtrack(diagonal: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = diagonal.shape[0] - 1, diagonal.shape[1] - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if left[i, j]:
            j -= 1
        elif diagonal[i, j]:
            i, j = i - 1, j - 1
        else:
            i -= 1
        path.append((i, j))
    pairs = np.array(path[::-1])
    return pairs[:, 0], pairs[:, 1]


def _frame_map(ref_idx: np.ndarray, att_idx: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """For every reference frame, the first and last attempt frame the path pairs it with."""
    first = np.full(frames, np.inf)
    last = np.full(frames, -np.inf)
    np.minimum.at(first, ref_idx, att_idx)
    np.maximum.at(last, ref_idx, att_idx)
    return first, last


def align_to_reference(attempt: np.ndarray, reference: np.ndarray,
                       reference_spans: list[tuple[float, float] | None]) -> list[tuple[float, float] | None]:
    """Each reference span carried onto the attempt's time axis (both 16-kHz mono float32). A span
    is None where the reference's is, and every span is None when either clip holds no speech."""
    if min(len(attempt), len(reference)) < _extractor().n_fft:
        return [None] * len(reference_spans)
    att_mel, ref_mel = log_mel(attempt), log_mel(reference)
    att_level, ref_level = loudness(att_mel), loudness(ref_mel)
    att_quiet, ref_quiet = silence(att_level), silence(ref_level)
    att_ext, ref_ext = speech_extent(att_quiet), speech_extent(ref_quiet)
    if att_ext is None or ref_ext is None:
        return [None] * len(reference_spans)
    (a0, a1), (r0, r1) = att_ext, ref_ext
    r, a = slice(r0, r1 + 1), slice(a0, a1 + 1)
    cost = frame_costs(features(ref_mel[r]), features(att_mel[a]))
    ref_idx, att_idx = dtw_path(cost)
    first, last = _frame_map(ref_idx, att_idx, r1 - r0 + 1)
    duration = len(attempt) / RATE

    def carry(t: float, is_end: bool) -> float:
        """A boundary between reference frames → attempt seconds. Where the path pairs one reference
        frame with many attempt frames (the learner paused or held a sound), a syllable's end goes to
        the first of them and a start to the last, so the pause falls between the two syllables."""
        f = t / HOP - r0
        k = min(max(int(round(f)), 0), r1 - r0)
        at = (first[k] if is_end else last[k]) + (f - k)  # beyond the speech: seconds as they were
        return float(min(max((at + a0) * HOP, 0.0), duration))

    out: list[tuple[float, float] | None] = []
    for span in reference_spans:
        if span is None:
            out.append(None)
            continue
        start, end = carry(span[0], False), carry(span[1], True)
        out.append((start, max(end, start + HOP)))
    return out
