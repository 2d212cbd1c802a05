"""One job, the same for the CLI and the UI: a file or a link → audio → transcript → subtitle files.

Links are downloaded into a temp folder of their own, removed as soon as the audio is decoded, and
their results are cached by video id + model + options (bounded by total audio length), so the
same video pasted twice is neither fetched nor transcribed again.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

import numpy as np

from app.speech.audio import SAMPLE_RATE, check_duration, load_audio, to_int16
from app.base.housekeeping import DOWNLOAD_PREFIX, owned_prefix
from app.speech.media import download_audio, is_url, link_info, link_key
from app.language.subtitles import FORMATS, CueRules, write_subtitles
from app.speech.transcribe import Progress, Transcript, TranscribeOptions, iter_transcribe

LANGUAGES = {"zh": "Mandarin", "auto": "Detect", "en": "English", "yue": "Cantonese", "ja": "Japanese",
             "ko": "Korean"}  # the spoken-language menu of the CLI and the UI
LINK_CACHE_SECONDS = float(os.environ.get("ZIMU_LINK_CACHE_SECONDS", 3600))  # ≈115 MB of int16 audio


@dataclass
class Job:
    transcript: Transcript
    audio: np.ndarray  # 16 kHz mono int16: half of float32 (3 hours: 345 MB); app.speech.audio.to_float32 converts
    title: str
    media_path: Path | None  # the local file that was decoded; None for a link (its download is gone)
    cached: bool = False
    video: Path | None = None  # a link's kept download ("keep the video"), moved out of the temp folder


class LinkCache:
    """LRU of finished link jobs; audio kept as int16, total length bounded."""

    def __init__(self, max_seconds: float = LINK_CACHE_SECONDS):
        self.max_seconds = max_seconds
        self._items: OrderedDict[tuple, tuple[Transcript, np.ndarray, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Job | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            transcript, pcm, title = self._items[key]
        return Job(transcript=transcript, audio=pcm, title=title, media_path=None,
                   cached=True)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key: tuple, job: Job) -> None:
        if job.audio.size / SAMPLE_RATE > self.max_seconds:
            return
        pcm = to_int16(job.audio)
        with self._lock:
            self._items[key] = (job.transcript, pcm, job.title)
            self._items.move_to_end(key)
            while sum(v[1].size for v in self._items.values()) / SAMPLE_RATE > self.max_seconds:
                self._items.popitem(last=False)


link_cache = LinkCache()


def iter_job(source: str, model, options: TranscribeOptions, max_duration: float,
             progress: Progress | None = None, cookies: str | None = None, allow_local: bool = False,
             max_download_mb: float | None = None, partial: bool = True,
             keep_video: Path | None = None) -> Iterator[Transcript | Job]:
    """`source` is a local path or an http(s) link. Yields the growing transcript while the
    recogniser works (partial `Transcript`s, for a UI to show), last the finished `Job`.
    `keep_video`: a folder where a link's download (a ≤ 480p rendition) is kept for watching."""
    if not is_url(source):
        path = Path(source)
        if progress:
            progress(0.0, "Decoding")
        audio = load_audio(path, max_duration, dtype=np.int16)
        transcript = yield from _transcribing(audio, model, options, progress, partial)
        yield Job(transcript=transcript, audio=audio, title=path.stem, media_path=path)
        return
    if progress:
        progress(0.0, "Checking the link")
    info = link_info(source, max_duration, allow_local, cookies)
    # app.speech.model tags what it loads: id() alone could be reused by a model loaded after an eviction.
    key = (link_key(info), getattr(model, "zimu_key", id(model)), repr(options))
    cached = None if keep_video else link_cache.get(key)  # the cache holds audio, not video
    if cached is not None:
        check_duration(cached.transcript.duration, max_duration, "this video")  # limits may differ per call
        yield cached
        return
    extra = {} if max_download_mb is None else {"max_mb": max_download_mb}
    # The PID in the folder's name lets a restart after a crash remove it (app/base/housekeeping.py).
    with tempfile.TemporaryDirectory(prefix=owned_prefix(DOWNLOAD_PREFIX)) as folder:
        download = download_audio(info, Path(folder), progress=(lambda f: progress(f, "Downloading"))
                                  if progress else None, cookies=cookies, allow_local=allow_local,
                                  video=keep_video is not None, **extra)
        if progress:
            progress(0.0, "Decoding")
        # The download's file name is internal (media.mp4): messages say "this video", as media.py does.
        audio = load_audio(download.path, max_duration, "this video", dtype=np.int16)
        video = None
        if keep_video is not None:
            keep_video.mkdir(parents=True, exist_ok=True)
            video = Path(shutil.move(str(download.path), keep_video / f"video{download.path.suffix.lower()}"))
    transcript = yield from _transcribing(audio, model, options, progress, partial)
    job = Job(transcript=transcript, audio=audio, title=download.title, media_path=None, video=video)
    if keep_video is None:
        link_cache.put(key, job)
    yield job


def _transcribing(audio: np.ndarray, model, options: TranscribeOptions, progress: Progress | None,
                  partial: bool):
    """Yield the partial transcripts (with `partial`); return the finished one."""
    for transcript in iter_transcribe(audio, model, options, progress, partial):
        if not transcript.complete:
            yield transcript
    return transcript


def run_job(source: str, model, options: TranscribeOptions, max_duration: float,
            progress: Progress | None = None, cookies: str | None = None, allow_local: bool = False,
            max_download_mb: float | None = None, keep_video: Path | None = None) -> Job:
    """The finished job of `iter_job` (the CLI's way: no partial results)."""
    for item in iter_job(source, model, options, max_duration, progress, cookies, allow_local, max_download_mb,
                         partial=False, keep_video=keep_video):
        job = item
    return job


def safe_stem(title: str, fallback: str = "subtitles") -> str:
    """A file name from a title: keeps hanzi and letters, drops path separators and oddities."""
    stem = re.sub(r"[^\w\u3400-\u9fff-]+", "_", title, flags=re.UNICODE).strip("._")
    return stem[:80] or fallback


def export(transcript: Transcript, folder: Path, stem: str, formats=FORMATS,
           lines=("hanzi", "pinyin", "english"), rules: CueRules | None = None) -> dict[str, Path]:
    """`rules`: the cue rules the transcript was built with (keep_punctuation decides the line ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {fmt: write_subtitles(transcript.cues, folder / f"{stem}.{fmt}", lines, fmt, rules) for fmt in formats}
