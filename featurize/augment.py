"""Training-split augmentation: speed perturbation and additive noise at a chosen SNR.

Reproducible by seed: every clip copy draws from its own generator, seeded by a hash of
(--seed, source, split, clip key, copy number), so a resumed or sharded run augments each clip
exactly as an uninterrupted single-process run would.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE
from app.base.errors import UserError
from featurize.audio_codec import DecodeError, decode, resample

NOISE_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm"}


@dataclass(frozen=True)
class AugmentOptions:
    speeds: tuple[float, ...] = ()  # factors to draw from uniformly, e.g. (0.9, 1.0, 1.1)
    snr_db: tuple[float, float] | None = None  # uniform range; (x, x) for a fixed SNR
    noise_prob: float = 1.0  # share of clips that get noise
    noise_dir: str | None = None  # noise recordings (e.g. MUSAN); white noise when unset

    @property
    def active(self) -> bool:
        return bool(self.speeds) or self.snr_db is not None

    def describe(self) -> dict:
        return {"speeds": list(self.speeds), "snr_db": list(self.snr_db) if self.snr_db else None,
                "noise_prob": self.noise_prob, "noise_dir": self.noise_dir}


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """Kaldi-style speed perturbation: play `factor` times faster (tempo and pitch change together)."""
    if factor == 1.0:
        return audio
    return resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """audio + noise scaled so that 10 log10(P_audio / P_noise) = snr_db."""
    signal_power = float(np.mean(audio.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if signal_power == 0 or noise_power == 0:
        return audio
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


@functools.lru_cache(maxsize=1)
def noise_files(folder: str) -> tuple[str, ...]:
    return tuple(sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in NOISE_SUFFIXES))


@functools.lru_cache(maxsize=64)
def _noise_audio(path: str) -> np.ndarray:
    try:
        return decode(Path(path).read_bytes())
    except (OSError, DecodeError) as exc:
        raise UserError(f"--noise-dir: cannot use {path}: {exc}") from exc


def _noise_like(n: int, options: AugmentOptions, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if not options.noise_dir:
        return rng.standard_normal(n).astype(np.float32), "white"
    files = noise_files(options.noise_dir)
    path = files[rng.integers(len(files))]
    noise = _noise_audio(path)
    if noise.size < n:
        noise = np.tile(noise, -(-n // noise.size))
    start = rng.integers(noise.size - n + 1)
    return noise[start : start + n], Path(path).name


def augment(audio: np.ndarray, options: AugmentOptions, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Apply the configured augmentations; returns the audio and a short note (empty when unchanged)."""
    notes = []
    if options.speeds:
        factor = float(options.speeds[rng.integers(len(options.speeds))])
        if factor != 1.0:
            audio = speed_perturb(audio, factor)
            notes.append(f"speed={factor:g}")
    if options.snr_db is not None and rng.random() < options.noise_prob:
        snr = float(rng.uniform(*options.snr_db))
        noise, kind = _noise_like(audio.size, options, rng)
        audio = add_noise(audio, noise, snr)
        notes.append(f"noise={kind}@{snr:.1f}dB")
    return audio, ",".join(notes)
