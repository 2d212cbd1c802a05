"""Audio intake: probe, decode and resample any file ffmpeg/PyAV can read to 16 kHz mono float32.

Decoding is faster-whisper's own `decode_audio` (PyAV, the ffmpeg libraries), so the app needs no
ffmpeg binary for files; every failure becomes a one-line `UserError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.errors import UserError

SAMPLE_RATE = 16000
DEFAULT_MAX_DURATION = float(os.environ.get("ZIMU_MAX_DURATION", 3 * 3600))


def probe_duration(path: str | os.PathLike, name: str | None = None) -> float | None:
    """Container duration in seconds without decoding, or None when the container does not say."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.duration is not None:
                return container.duration / av.time_base
            streams = [s for s in container.streams.audio if s.duration and s.time_base]
            return float(streams[0].duration * streams[0].time_base) if streams else None
    except Exception as exc:
        raise UserError(f"could not read {name or Path(path).name}: not an audio or video file ffmpeg can decode") from exc


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def check_duration(seconds: float | None, max_duration: float, name: str) -> None:
    if seconds is not None and seconds > max_duration:
        raise UserError(
            f"{name} is {format_duration(seconds)} long; the limit is {format_duration(max_duration)}"
        )


def load_audio(path: str | os.PathLike, max_duration: float = DEFAULT_MAX_DURATION,
               name: str | None = None) -> np.ndarray:
    """Decode to 16 kHz mono float32, refusing empty, undecodable and over-long media.

    `name` is what messages call the file (default: its file name; e.g. "this video" for a download,
    whose file name is an internal one)."""
    from faster_whisper.audio import decode_audio

    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise UserError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{name} is empty (0 bytes)")
    check_duration(probe_duration(path, name), max_duration, name)
    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as exc:
        raise UserError(f"could not decode {name}: not an audio or video file ffmpeg can decode") from exc
    if audio.size == 0:
        raise UserError(f"{name} contains no audio")
    # The container may not state a duration (raw streams, some WebM recordings): check again.
    check_duration(audio.size / SAMPLE_RATE, max_duration, name)
    return audio


def write_audio(audio: np.ndarray, path: str | os.PathLike, bitrate: str = "64k") -> Path:
    """Write 16 kHz mono audio (e.g. for the UI's player or a practice clip) through pydub/ffmpeg."""
    from pydub import AudioSegment

    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    segment = AudioSegment(pcm, frame_rate=SAMPLE_RATE, sample_width=2, channels=1)
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "mp3"
    segment.export(str(path), format=fmt, bitrate=bitrate if fmt in ("mp3", "ogg", "m4a") else None)
    return path
