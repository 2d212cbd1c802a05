"""Video and audio links through yt-dlp (YouTube, Bilibili, direct media links, ~1,800 sites).

Audio only: the smallest useful stream is downloaded into a temp folder the caller owns, with no
ffmpeg post-processing (the app decodes any container itself). Playlists are refused, duration is
checked from the metadata before anything is downloaded, and yt-dlp's errors become one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from app.audio import check_duration
from app.errors import UserError

DownloadProgress = Callable[[float], None]


@dataclass
class Download:
    path: Path
    title: str
    video_id: str
    duration: float | None
    webpage_url: str


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text.strip()))


def check_url(url: str) -> str:
    url = url.strip()
    if not url:
        raise UserError("paste a video or audio link first")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"unsupported link {url[:80]}: only http:// and https:// links are accepted")
    return url


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def explain_download_error(exc: Exception, url: str) -> str:
    """yt-dlp's messages, made into one plain line."""
    text = _ANSI.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[^\]]+\]\s*([\w-]+:\s*)?", "", text)
    lower = text.lower()
    if "unsupported url" in lower:
        return f"no video or audio found at {url[:100]} (unsupported link)"
    # Before the network check: an HTTP error arrives as "Unable to download webpage: HTTP Error 404",
    # and the server was reached.
    if "http error 404" in lower or "http error 410" in lower:
        return f"the video at {url[:100]} is unavailable or was removed"
    if m := re.search(r"http error (\d{3})", lower):
        return f"could not download {url[:100]}: the site answered HTTP error {m.group(1)}"
    if any(k in lower for k in ("connection refused", "name or service not known", "failed to resolve",
                                "timed out", "network is unreachable", "no route to host",
                                "temporary failure in name resolution", "unable to download webpage")):
        return f"could not reach {url[:100]}: check the link and your connection"
    if "private" in lower:
        return "this video is private"
    if "sign in to confirm" in lower or "not a bot" in lower:
        return "the site asks to sign in to confirm you are not a bot: pass a cookies file (--cookies)"
    if "not available in your country" in lower or "geo" in lower and "restrict" in lower:
        return "this video is not available in the server's country"
    if "http error 404" in lower or "removed" in lower or "unavailable" in lower:
        return f"the video at {url[:100]} is unavailable or was removed"
    return f"could not download {url[:100]}: {text[:160]}"


def download_audio(url: str, folder: Path, max_duration: float,
                   progress: DownloadProgress | None = None, cookies: str | None = None) -> Download:
    """Fetch the audio of one video into `folder` (which the caller creates and removes)."""
    import yt_dlp

    url = check_url(url)

    def hook(d: dict) -> None:
        if progress and d.get("status") == "downloading":
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            if total:
                progress(min(1.0, d.get("downloaded_bytes", 0) / total))

    options = {
        "format": "bestaudio/best",
        "outtmpl": str(Path(folder) / "media.%(ext)s"),
        "noplaylist": True,  # a watch?v=…&list=… link means its video, not the list
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "progress_hooks": [hook],
        "cachedir": False,
        "socket_timeout": 20,
        "retries": 2,
        "logger": _SilentLogger(),
    }
    if cookies:
        options["cookiefile"] = cookies
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise UserError(f"no video or audio found at {url[:100]}")
            if info.get("_type") in ("playlist", "multi_video") or info.get("entries") is not None:
                raise UserError("this link is a playlist or channel: paste the link of a single video")
            check_duration(info.get("duration"), max_duration, "this video")
            info = ydl.process_ie_result(info, download=True)
    except UserError:
        raise
    except Exception as exc:  # yt_dlp.utils.DownloadError and friends
        raise UserError(explain_download_error(exc, url)) from exc
    downloads = info.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads else None
    if path is None or not path.is_file():
        found = sorted(Path(folder).glob("media.*"))
        if not found:
            raise UserError(f"nothing was downloaded from {url[:100]}")
        path = found[0]
    return Download(path=path, title=info.get("title") or info.get("id") or "video",
                    video_id=str(info.get("id") or "video"), duration=info.get("duration"),
                    webpage_url=info.get("webpage_url") or url)


class _SilentLogger:
    """yt-dlp prints errors itself before raising; we report them once, our way."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass
