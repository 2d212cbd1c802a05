"""Video and audio links through yt-dlp (YouTube, Bilibili, direct media links, ~1,800 sites).

Safe intake for a public server, in two steps:
1. `link_info`: only http(s); hosts that resolve to loopback, private, link-local (cloud metadata
   169.254.169.254 among them) or otherwise reserved addresses are refused unless local links are
   explicitly allowed (tests, self-hosting); playlists and channels are refused; the duration
   stated in the metadata is checked before anything is downloaded.
2. `download_audio`: the audio-only stream goes into a folder the caller owns (and removes); the
   media URL is checked like the page URL, and the size limit is enforced while downloading
   (yt-dlp's max_filesize for announced sizes, the progress hook for the rest).
yt-dlp's errors become one plain line. No ffmpeg post-processing: the app decodes any container.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from app.audio import check_duration
from app.errors import UserError

DownloadProgress = Callable[[float], None]
DEFAULT_MAX_DOWNLOAD_MB = float(os.environ.get("ZIMU_MAX_DOWNLOAD_MB", 500))


@dataclass
class Download:
    path: Path
    title: str
    video_id: str
    duration: float | None
    webpage_url: str


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text.strip()))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_host(url: str) -> None:
    """Refuse links whose host is, or resolves to, a non-public address (SSRF guard)."""
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"could not reach {url[:100]}: the host name does not resolve") from exc
    if not addresses or not all(_is_public(a) for a in addresses):
        raise UserError("links to local or private network addresses are refused")


def check_url(url: str, allow_local: bool = False) -> str:
    url = url.strip()
    if not url:
        raise UserError("paste a video or audio link first")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"unsupported link {url[:80]}: only http:// and https:// links are accepted")
    if not allow_local:
        check_host(url)
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


def _options(cookies: str | None) -> dict:
    options = {
        "format": "bestaudio/best",
        "noplaylist": True,  # a watch?v=…&list=… link means its video, not the list
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "socket_timeout": 20,
        "retries": 2,
        "logger": _SilentLogger(),
    }
    if cookies:
        options["cookiefile"] = cookies
    return options


def link_info(url: str, max_duration: float, allow_local: bool = False, cookies: str | None = None) -> dict:
    """yt-dlp's metadata for one video, after every check that needs no download."""
    import yt_dlp

    url = check_url(url, allow_local)
    try:
        with yt_dlp.YoutubeDL(_options(cookies)) as ydl:
            info = ydl.extract_info(url, download=False)
    except Exception as exc:  # yt_dlp.utils.DownloadError and friends
        raise UserError(explain_download_error(exc, url)) from exc
    if info is None:
        raise UserError(f"no video or audio found at {url[:100]}")
    if info.get("_type") in ("playlist", "multi_video") or info.get("entries") is not None:
        raise UserError("this link is a playlist or channel: paste the link of a single video")
    check_duration(info.get("duration"), max_duration, "this video")
    info["zimu_link"] = url
    return info


def link_key(info: dict) -> str:
    """Identity of a video whatever link led to it (youtu.be/…, watch?v=…): extractor + id."""
    return f"{info.get('extractor_key') or info.get('extractor')}:{info.get('id')}"


class _TooLarge(Exception):
    pass


def download_audio(info: dict, folder: Path, max_mb: float = DEFAULT_MAX_DOWNLOAD_MB,
                   progress: DownloadProgress | None = None, cookies: str | None = None,
                   allow_local: bool = False) -> Download:
    """Fetch the audio of a video described by `link_info` into `folder`."""
    import yt_dlp

    url = info["zimu_link"]
    limit = int(max_mb * 1e6)

    def hook(d: dict) -> None:
        if d.get("status") != "downloading":
            return
        if (d.get("downloaded_bytes") or 0) > limit:
            raise _TooLarge()
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if progress and total:
            progress(min(1.0, d.get("downloaded_bytes", 0) / total))

    options = _options(cookies) | {"outtmpl": str(Path(folder) / "media.%(ext)s"), "progress_hooks": [hook],
                                   "max_filesize": limit}
    logger = options["logger"]
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            # process_ie_result picks the format; check where the bytes will really come from.
            selected = ydl.process_ie_result(dict(info), download=False)
            for fmt in selected.get("requested_formats") or [selected]:
                if fmt.get("url") and not allow_local:
                    check_host(fmt["url"])
            done = ydl.process_ie_result(dict(info), download=True)
    except UserError:
        raise
    except Exception as exc:
        if isinstance(exc, _TooLarge) or isinstance(getattr(exc, "exc_info", [None, None])[1], _TooLarge):
            raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit") from exc
        raise UserError(explain_download_error(exc, url)) from exc
    downloads = done.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        found = sorted(Path(folder).glob("media.*"))
        if not found:
            # max_filesize makes yt-dlp skip an over-size file without raising.
            if logger.too_large:
                raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit")
            raise UserError(f"nothing was downloaded from {url[:100]}")
        path = found[0]
    if path.stat().st_size > limit:
        raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit")
    return Download(path=path, title=done.get("title") or done.get("id") or "video",
                    video_id=str(done.get("id") or "video"), duration=done.get("duration"),
                    webpage_url=done.get("webpage_url") or url)


class _SilentLogger:
    """yt-dlp prints errors itself before raising; we report them once, our way. It also says
    only here (not by raising) that it skipped a file over max_filesize, so that is remembered."""

    def __init__(self) -> None:
        self.too_large = False

    def debug(self, msg: str) -> None:
        self.info(msg)

    def info(self, msg: str) -> None:
        if "larger than max-filesize" in msg:
            self.too_large = True

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass
