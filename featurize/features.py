"""Whisper's log-mel input: transformers' WhisperFeatureExtractor, and its unpadded float16 form.

Whisper always sees 30 s (3000 frames); a 3 s clip is 90 % padding. The unpadded form keeps only
the frames that audio reaches and rebuilds the rest exactly, because the padding frames of
WhisperFeatureExtractor's output are one constant per clip:

  * frame t covers samples [160 t - 200, 160 t + 200), so frames t >= ceil((n + 200) / 160) see
    only the zero padding, whose log10 mel is log10(1e-10) = -10;
  * the extractor then clamps every value to max(x, M - 8) (M = the clip's largest log10 mel,
    always in an audio frame) and maps x -> (x + 4) / 4; the padding frames become
    max(-10, M - 8) mapped the same way = max(-1.5, max(stored) - 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE
from app.speech.model import embedded_model_dir, is_embedded

HOP = 160
HALF_WINDOW = 200  # n_fft // 2: the centred STFT reaches this far past a frame's centre
PADDED_FLOAT32_BYTES = 80 * 3000 * 4  # the usual stored form: 0.96 MB per clip, whatever its length


def feature_extractor(feature_size: int = 80):
    """WhisperFeatureExtractor built offline; the defaults are Whisper's (16 kHz, n_fft 400, hop 160, 30 s)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=feature_size)


def load_feature_extractor(model: str | None):
    """The model's own preprocessor_config.json when it has one (large-v3: 128 mels), else 80 mels."""
    from transformers import WhisperFeatureExtractor

    folder = _model_folder(model)
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        return WhisperFeatureExtractor.from_pretrained(str(folder))
    if folder is None and model:  # a Hub id: the tokenizer has already proved the Hub reachable
        return WhisperFeatureExtractor.from_pretrained(model)
    if folder is not None and (folder / "config.json").is_file():
        mels = json.loads((folder / "config.json").read_text()).get("num_mel_bins")
        if mels:
            return feature_extractor(int(mels))
    return feature_extractor()


def _model_folder(model: str | None) -> Path | None:
    if is_embedded(model):
        return embedded_model_dir()
    path = Path(model).expanduser()
    return path if path.is_dir() else None


def log_mel(audio: np.ndarray, extractor) -> np.ndarray:
    """The model input: float32 (n_mels, 3000), exactly what the HF fine-tuning recipe computes."""
    return extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features[0]


def audio_frames(num_samples: int, extractor) -> int:
    return min(-(-(num_samples + HALF_WINDOW) // HOP), extractor.nb_max_frames)


def unpadded_log_mel(audio: np.ndarray, extractor, dtype=np.float16) -> np.ndarray:
    """(n_mels, T): the frames of `log_mel(audio)` that audio reaches (T ~ 100 per second).

    Also the fast way to the padded input: `pad_log_mel(unpadded_log_mel(a, fe, np.float32))`
    equals `log_mel(a, fe)` at ~1/15 of the cost, as the STFT skips ~27 s of zeros.
    """
    audio = audio[: extractor.n_samples]
    # Enough trailing zeros that every kept frame sees the same zeros as in the 30 s version.
    tail = np.zeros(2 * HALF_WINDOW, np.float32)
    features = extractor(
        np.concatenate([audio, tail]), sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="np"
    ).input_features[0]
    return features[:, : audio_frames(audio.size, extractor)].astype(dtype)


def pad_log_mel(stored: np.ndarray, num_frames: int = 3000) -> np.ndarray:
    """(n_mels, T) from `unpadded_log_mel` -> float32 (n_mels, num_frames) as `log_mel` gives."""
    stored = stored.astype(np.float32)
    fill = max(-1.5, float(stored.max()) - 2.0) if stored.size else -1.5
    out = np.full((stored.shape[0], num_frames), fill, np.float32)
    out[:, : stored.shape[1]] = stored[:, :num_frames]
    return out
