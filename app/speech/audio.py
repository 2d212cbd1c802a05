"""Audio intake and output: probe, decode and resample any file PyAV (the ffmpeg libraries, bundled
in its wheel) can read to 16 kHz mono, and write audio back out. Every failure becomes a one-line
`UserError`. The one owner of the sample rate and of the int16 <-> float32 sample conversion.

Decoding streams PyAV's frames into one preallocated array (faster-whisper's `decode_audio` collects
the whole file as bytes, then converts: three copies at once, 1.7 GB at the peak for 3 hours). The
app keeps long audio as int16 (`dtype=np.int16`), half of float32: 3 hours are 345 MB; the
recogniser converts each window as it needs it.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np

from app.base.errors import UserError

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


def to_float32(pcm: np.ndarray) -> np.ndarray:
    """Samples as float32 in [-1, 1) (what Whisper and Silero take); float input is returned as is."""
    if pcm.dtype == np.int16:
        return pcm.astype(np.float32) / 32768.0  # faster-whisper's scale, so results match its decoder
    return pcm.astype(np.float32, copy=False)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Samples as int16 (half the memory of float32); int16 input is returned as is."""
    if audio.dtype == np.int16:
        return audio
    return np.clip(audio * 32768.0, -32768, 32767).astype(np.int16)


def _decode(path: Path, dtype, expected_seconds: float | None) -> np.ndarray:
    """All of the file's first audio stream, 16 kHz mono, in one array filled as frames arrive
    (sized from the container's duration; grown if the container understated it)."""
    import av
    from faster_whisper.audio import _group_frames, _ignore_invalid_frames, _resample_frames

    out = np.empty(int((expected_seconds or 60) * SAMPLE_RATE) + SAMPLE_RATE, dtype=dtype)
    filled = 0
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        frames = _resample_frames(_group_frames(_ignore_invalid_frames(container.decode(audio=0)), 500000),
                                  resampler)
        for frame in frames:
            pcm = frame.to_ndarray().reshape(-1)
            if filled + pcm.size > out.size:
                out = np.resize(out, max(2 * out.size, filled + pcm.size))
            out[filled:filled + pcm.size] = pcm if dtype == np.int16 else to_float32(pcm)
            filled += pcm.size
    del resampler  # PyAV's resampler holds native buffers until collected (faster-whisper #390)
    gc.collect()
    # A copy only when the estimate was far off: resizing in place keeps the peak at one array.
    out.resize(filled, refcheck=False)
    return out


def load_audio(path: str | os.PathLike, max_duration: float = DEFAULT_MAX_DURATION,
               name: str | None = None, dtype=np.float32) -> np.ndarray:
    """Decode to 16 kHz mono (float32 in [-1, 1), or int16 with `dtype=np.int16`), refusing empty,
    undecodable and over-long media.

    `name` is what messages call the file (default: its file name; e.g. "this video" for a download,
    whose file name is an internal one)."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise UserError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{name} is empty (0 bytes)")
    expected = probe_duration(path, name)
    check_duration(expected, max_duration, name)
    try:
        audio = _decode(path, np.dtype(dtype), expected)
    except Exception as exc:
        raise UserError(f"could not decode {name}: not an audio or video file ffmpeg can decode") from exc
    if audio.size == 0:
        raise UserError(f"{name} contains no audio")
    # The container may not state a duration (raw streams, some WebM recordings): check again.
    check_duration(audio.size / SAMPLE_RATE, max_duration, name)
    return audio


class StreamResampler:
    """Microphone chunks (any rate, mono or multi-channel, int16 or float) as 16 kHz mono float32,
    resampled continuously across chunks (one PyAV resampler per stream, so no clicks at joins)."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self._resampler = None

    def __call__(self, rate: int, samples: np.ndarray) -> np.ndarray:
        import av

        samples = np.asarray(samples)
        if samples.ndim == 2:
            samples = to_float32(samples).mean(axis=1) if samples.dtype == np.int16 else samples.mean(axis=1)
        if samples.dtype.kind == "i" and samples.dtype != np.int16:
            samples = (samples / float(np.iinfo(samples.dtype).max)).astype(np.float32)
        pcm = to_int16(samples.astype(np.float32) if samples.dtype.kind == "f" else samples)
        if rate == SAMPLE_RATE:
            return to_float32(pcm)
        if self._resampler is None or rate != self.rate:
            self.rate = rate
            self._resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return to_float32(np.concatenate(out)) if out else np.zeros(0, dtype=np.float32)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """A whole buffer (e.g. synthesised speech at 24 kHz) as 16 kHz mono float32, its tail flushed."""
    convert = StreamResampler()
    head = convert(rate, samples)
    if convert._resampler is None:
        return head
    tail = [f.to_ndarray().reshape(-1) for f in convert._resampler.resample(None)]
    return np.concatenate([head, *(to_float32(t) for t in tail)]) if tail else head


# Encoders by file suffix; lossy ones take the bitrate.
_CODECS = {".mp3": "libmp3lame", ".ogg": "libopus", ".opus": "libopus", ".m4a": "aac", ".wav": "pcm_s16le",
           ".flac": "flac"}


def write_audio(audio: np.ndarray, path: str | os.PathLike, bitrate: str = "64k", rate: int = SAMPLE_RATE) -> Path:
    """Write mono audio (float32 or int16, 16 kHz unless `rate` says otherwise; e.g. for the UI's player,
    a practice clip, a synthesised word) with PyAV, in the format of the file's suffix (.mp3,
    .ogg/.opus, .m4a, .wav, .flac)."""
    import av

    path = Path(path)
    codec = _CODECS.get(path.suffix.lower())
    if codec is None:
        raise UserError(f"cannot write {path.name}: audio formats are {', '.join(sorted(_CODECS))}")
    pcm = to_int16(audio)
    with av.open(str(path), mode="w") as container:
        # Opus runs at 48 kHz only; the resampler below converts to whatever the encoder takes.
        stream = container.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = "mono"
        if codec not in ("pcm_s16le", "flac"):
            stream.bit_rate = int(float(bitrate.rstrip("kK")) * 1000)
        resampler = av.audio.resampler.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        step = rate * 10
        for start in range(0, pcm.size, step):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + step], format="s16", layout="mono")
            frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                container.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            container.mux(stream.encode(resampled))
        container.mux(stream.encode(None))
    return path
