"""Video and audio links through yt-dlp (YouTube, Bilibili, direct media links, ~1,800 sites).

Safe intake for a public server:
1. `link_info`: only http(s); hosts that resolve to loopback, private, link-local (cloud metadata
   169.254.169.254 among them) or otherwise reserved addresses are refused unless local links are
   explicitly allowed (tests, self-hosting); playlists and channels are refused; the duration
   stated in the metadata is checked before anything is downloaded.
2. `download_audio`: the audio-only stream goes into a folder the caller owns (and removes); the
   media URL is checked like the page URL, only protocols downloaded in this process are accepted,
   and the size limit is enforced while downloading (yt-dlp's max_filesize for announced sizes, the
   progress hook for the rest).
3. While yt-dlp runs for either step, every socket it connects is checked at connect time (an audit
   hook on `socket.connect`, scoped to the calling thread): the address actually connected to must
   be public. That covers what a first look at the link cannot: redirects, meta refresh, the media
   URL, HLS/DASH segments and host names that resolve to another address the second time (DNS
   rebinding). yt-dlp may not start programs (ffmpeg would fetch segments itself) and connects
   directly, without a proxy, so the checked peer is the real site.
`ZIMU_TEST_PUBLIC_HOSTS=127.0.0.2,…` (tests only, off by default, no UI control) marks chosen loopback
addresses as public, so these attacks can be played on one machine.
yt-dlp's errors become one plain line. No ffmpeg post-processing: the app decodes any container.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from app.speech.audio import check_duration
from app.base.errors import UserError, first_line

DownloadProgress = Callable[[float], None]
DEFAULT_MAX_DOWNLOAD_MB = float(os.environ.get("ZIMU_MAX_DOWNLOAD_MB", 500))
TEST_PUBLIC_HOSTS_ENV = "ZIMU_TEST_PUBLIC_HOSTS"
REFUSED = "links to local or private network addresses are refused"
SHOWN_CHARS = 200  # of a user's input quoted in an error line
# Protocols yt-dlp downloads in this process, on the calling thread, through Python sockets.
GUARDED_PROTOCOLS = {"http", "https", "m3u8", "m3u8_native", "http_dash_segments", "http_dash_segments_generator"}
# yt-dlp's request handlers that connect through Python's socket module (curl_cffi connects from C).
GUARDED_HANDLERS = {"Urllib", "Requests"}
NO_FFMPEG = os.path.join(os.devnull, "ffmpeg")  # a path that cannot exist: /dev/null is no folder


@dataclass
class Download:
    path: Path
    title: str
    webpage_url: str


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text.strip()))


def shown(text: str) -> str:
    """A user's input as quoted in an error line: a 100,000-character link must not come back whole."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _test_public_hosts() -> set:
    """Loopback addresses that ZIMU_TEST_PUBLIC_HOSTS marks as public, so that tests can play a public
    site and a private service on one machine. Anything but loopback is ignored: the switch cannot
    open a real private network."""
    hosts = set()
    for item in os.environ.get(TEST_PUBLIC_HOSTS_ENV, "").split(","):
        try:
            ip = ipaddress.ip_address(item.strip())
        except ValueError:
            continue
        if ip.is_loopback:
            hosts.add(ip)
    return hosts


def _is_public(address) -> bool:
    if not isinstance(address, str):
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False  # a name, not an address: what it would reach is unknown
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip  # IPv4 inside IPv6 is judged as IPv4
    if ip in _test_public_hosts():
        return True
    return ip.is_global and not ip.is_multicast


def check_host(url: str) -> None:
    """Refuse links whose host is, or resolves to, a non-public address (SSRF guard)."""
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"could not reach {shown(url)}: the host name does not resolve") from exc
    if not addresses or not all(_is_public(a) for a in addresses):
        raise UserError(REFUSED)


def check_url(url: str, allow_local: bool = False) -> str:
    url = url.strip()
    if not url:
        raise UserError("paste a video or audio link first")
    try:
        parsed = urlparse(url)
    except ValueError:  # "http://[::1" and other broken hosts
        parsed = urlparse("")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"unsupported link {shown(url)}: only http:// and https:// links are accepted")
    if not allow_local:
        check_host(url)
    return url


class _Refused(PermissionError):
    """Raised inside yt-dlp, from the audit hook, where a link job may not connect or start a program."""


class _Guard:
    """What the audit hook refused during one yt-dlp call. yt-dlp wraps socket errors in its own
    messages or tries another URL, so the refusal is reported from here, not from its exception."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.programs: list[str] = []


_SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_PROGRAM_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                             "os.fork", "os.forkpty"})
_current = threading.local()  # .guard: the _Guard of the yt-dlp call running on this thread, if any
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    """Runs for every audited event of the process, so it returns at once unless a guarded yt-dlp
    call is running on this thread: Gradio's own (loopback) traffic on other threads is untouched."""
    if event not in _SOCKET_EVENTS and event not in _PROGRAM_EVENTS:
        return
    guard = getattr(_current, "guard", None)
    if guard is None:
        return
    if event in _PROGRAM_EVENTS:
        # A program's connections (ffmpeg fetching HLS segments) cannot be checked from here.
        program = os.path.basename(str(args[0])) if args else event
        guard.programs.append(program)
        raise _Refused(f"{program}: no programs while fetching a link")
    sock, address = args[0], args[1]
    if address is None:  # sendmsg on a connected socket: its peer was checked at connect
        return
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not _is_public(address[0]):
        # AF_UNIX and friends, and names instead of addresses, are refused too.
        guard.addresses.append(str(address[0] if isinstance(address, tuple) else address))
        raise _Refused(f"{REFUSED}: {address!r}")


def _install_audit_hook() -> None:
    """Once per process (an audit hook cannot be removed, so it is added only when first needed)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


@contextlib.contextmanager
def _public_only(allow_local: bool):
    """Check every connection yt-dlp makes on this thread while the block runs; yields the _Guard,
    or None when local links are allowed (tests, self-hosting)."""
    if allow_local:
        yield None
        return
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    _install_audit_hook()
    guard = _Guard()
    _current.guard = guard
    # No ffmpeg for yt-dlp in this context (a context variable: this thread only), so that it neither
    # runs `ffmpeg -version` (refused, and then remembered process-wide as "no ffmpeg") nor hands a
    # stream to ffmpeg; the hook refusing programs stays as the backstop.
    no_ffmpeg = FFmpegPostProcessor._ffmpeg_location.set(NO_FFMPEG)
    try:
        yield guard
    finally:
        FFmpegPostProcessor._ffmpeg_location.reset(no_ffmpeg)
        _current.guard = None


def _raise_refusal(guard: _Guard | None, url: str, exc: Exception | None = None) -> None:
    """After a guarded yt-dlp call (`exc`: its error, if it failed): any refused connection fails the
    job, even one yt-dlp recovered from; ffmpeg, refused or hidden from yt-dlp, explains a failure."""
    if guard is None:
        return
    if guard.addresses:
        raise UserError(f"{REFUSED}: {shown(url)} leads to {shown(guard.addresses[0])}") from exc
    # ffmpeg only: a refused probe of another program (deno for YouTube's challenges) explains nothing.
    if exc is not None and any("ffmpeg" in text.lower() for text in [str(exc), *guard.programs]):
        raise UserError(f"could not download {shown(url)}: this stream needs an outside program "
                        "(ffmpeg), which links may not use on this server") from exc


@functools.cache
def _youtube_dl_class():
    import yt_dlp

    class YoutubeDL(yt_dlp.YoutubeDL):
        """Requests only through handlers that connect with Python sockets, which the audit hook sees
        (curl_cffi, used for impersonation when installed, connects from C)."""

        def build_request_director(self, handlers, preferences=None):
            handlers = [h for h in handlers if h.RH_KEY in GUARDED_HANDLERS]
            return super().build_request_director(handlers, preferences)

    return YoutubeDL


def _check_protocols(selected: dict, url: str) -> None:
    """Only streams yt-dlp fetches itself, on this thread: other downloaders run programs (rtmpdump,
    ffmpeg) or threads (live pings, websockets) that the guard would not see."""
    from yt_dlp.utils import determine_protocol

    for fmt in selected.get("requested_formats") or [selected]:
        protocol = fmt.get("protocol") or determine_protocol(fmt)
        if any(p not in GUARDED_PROTOCOLS for p in protocol.split("+")):
            raise UserError(f"could not download {shown(url)}: its {shown(protocol)} stream is not supported")
        if fmt.get("url"):
            check_host(fmt["url"])  # an early, clear refusal; the connection is checked again


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def explain_download_error(exc: Exception, url: str) -> str:
    """yt-dlp's messages, made into one plain line."""
    text = _ANSI.sub("", first_line(exc, limit=10_000))
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[^\]]+\]\s*([\w-]+:\s*)?", "", text)
    lower = text.lower()
    if "unsupported url" in lower:
        return f"no video or audio found at {shown(url)} (unsupported link)"
    # Before the network check: an HTTP error arrives as "Unable to download webpage: HTTP Error 404",
    # and the server was reached.
    if "http error 404" in lower or "http error 410" in lower:
        return f"the video at {shown(url)} is unavailable or was removed"
    if m := re.search(r"http error (\d{3})", lower):
        return f"could not download {shown(url)}: the site answered HTTP error {m.group(1)}"
    if any(k in lower for k in ("connection refused", "name or service not known", "failed to resolve",
                                "timed out", "network is unreachable", "no route to host",
                                "temporary failure in name resolution", "unable to download webpage")):
        return f"could not reach {shown(url)}: check the link and your connection"
    if "private" in lower:
        return "this video is private"
    if "sign in to confirm" in lower or "not a bot" in lower:
        return "the site asks to sign in to confirm you are not a bot: pass a cookies file (--cookies)"
    if "not available in your country" in lower or "geo" in lower and "restrict" in lower:
        return "this video is not available in the server's country"
    if "http error 404" in lower or "removed" in lower or "unavailable" in lower:
        return f"the video at {shown(url)} is unavailable or was removed"
    return f"could not download {shown(url)}: {text[:160]}"


def _options(cookies: str | None, public_only: bool = False) -> dict:
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
        "external_downloader": {"default": "native"},  # HLS in this process (ffmpeg would fetch it itself)
        "concurrent_fragment_downloads": 1,  # fragments on the calling thread, where the guard is
        "fixup": "never",
    }
    if public_only:
        options["proxy"] = ""  # connect directly: the checked peer must be the site, not a proxy
    if cookies:
        options["cookiefile"] = cookies
    return options


def link_info(url: str, max_duration: float, allow_local: bool = False, cookies: str | None = None) -> dict:
    """yt-dlp's metadata for one video, after every check that needs no download."""
    url = check_url(url, allow_local)
    with _public_only(allow_local) as guard:
        try:
            with _youtube_dl_class()(_options(cookies, not allow_local)) as ydl:
                info = ydl.extract_info(url, download=False)
        except Exception as exc:  # yt_dlp.utils.DownloadError and friends
            _raise_refusal(guard, url, exc)
            raise UserError(explain_download_error(exc, url)) from exc
        _raise_refusal(guard, url)
    if info is None:
        raise UserError(f"no video or audio found at {shown(url)}")
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


# "Keep the video": a small single-file rendition (yt-dlp may not run ffmpeg to merge separate video and
# audio streams); a height the site does not state is accepted, the size limit still applies; a site
# with no such rendition gives its audio.
VIDEO_FORMAT = "best[height<=?480][vcodec!=?none][acodec!=?none]/bestaudio/best"


def download_audio(info: dict, folder: Path, max_mb: float = DEFAULT_MAX_DOWNLOAD_MB,
                   progress: DownloadProgress | None = None, cookies: str | None = None,
                   allow_local: bool = False, video: bool = False) -> Download:
    """Fetch the audio of a video described by `link_info` into `folder`; with `video`, a rendition of
    at most 480p with its sound instead (every check is the same)."""
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

    options = _options(cookies, not allow_local) | {"outtmpl": str(Path(folder) / "media.%(ext)s"),
                                                    "progress_hooks": [hook], "max_filesize": limit}
    if video:
        options["format"] = VIDEO_FORMAT
    logger = options["logger"]
    with _public_only(allow_local) as guard:
        try:
            with _youtube_dl_class()(options) as ydl:
                # process_ie_result picks the format; check how and where from the bytes will come.
                selected = ydl.process_ie_result(dict(info), download=False)
                if not allow_local:
                    _check_protocols(selected, url)
                done = ydl.process_ie_result(dict(info), download=True)
        except UserError:
            raise
        except Exception as exc:
            _raise_refusal(guard, url, exc)
            if isinstance(exc, _TooLarge) or isinstance(getattr(exc, "exc_info", [None, None])[1], _TooLarge):
                raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit") from exc
            raise UserError(explain_download_error(exc, url)) from exc
        _raise_refusal(guard, url)
    downloads = done.get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        found = sorted(Path(folder).glob("media.*"))
        if not found:
            # max_filesize makes yt-dlp skip an over-size file without raising.
            if logger.too_large:
                raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit")
            raise UserError(f"nothing was downloaded from {shown(url)}")
        path = found[0]
    if path.stat().st_size > limit:
        raise UserError(f"this video is larger than the {max_mb:.0f} MB download limit")
    return Download(path=path, title=done.get("title") or done.get("id") or "video",
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
