"""One job, the same for the CLI and the UI: a file or a link → audio → transcript → subtitle files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio import load_audio
from app.media import download_audio, is_url
from app.subtitles import FORMATS, write_subtitles
from app.transcribe import Progress, Transcript, TranscribeOptions, transcribe


@dataclass
class Job:
    transcript: Transcript
    audio: np.ndarray
    title: str
    media_path: Path  # the decoded file (the upload, the recording or the download)


def run_job(source: str, model, options: TranscribeOptions, workdir: Path, max_duration: float,
            progress: Progress | None = None, cookies: str | None = None) -> Job:
    """`source` is a local path or an http(s) link; downloads land in `workdir` (the caller's)."""
    if is_url(source):
        if progress:
            progress(0.0, "Downloading")
        download = download_audio(source, workdir, max_duration,
                                  progress=(lambda f: progress(f, "Downloading")) if progress else None,
                                  cookies=cookies)
        # The download's file name is internal (media.mp4): messages say "this video", as media.py does.
        media_path, title, name = download.path, download.title, "this video"
    else:
        media_path, title, name = Path(source), Path(source).stem, None
    if progress:
        progress(0.0, "Decoding")
    audio = load_audio(media_path, max_duration, name)
    transcript = transcribe(audio, model, options, progress)
    return Job(transcript=transcript, audio=audio, title=title, media_path=media_path)


def safe_stem(title: str, fallback: str = "subtitles") -> str:
    """A file name from a title: keeps hanzi and letters, drops path separators and oddities."""
    stem = re.sub(r"[^\w\u3400-\u9fff-]+", "_", title, flags=re.UNICODE).strip("._")
    return stem[:80] or fallback


def export(transcript: Transcript, folder: Path, stem: str, formats=FORMATS,
           lines=("hanzi", "pinyin", "english")) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {fmt: write_subtitles(transcript.cues, folder / f"{stem}.{fmt}", lines, fmt) for fmt in formats}
