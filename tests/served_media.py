"""Helpers for the link tests: a small Mandarin video made with the ffmpeg binary from zh-synth
clips, pages the yt-dlp generic extractor reads, a loopback HTTP server, and a closed port.

Nothing leaves 127.0.0.1; yt-dlp is the real one (generic extractor), never a stand-in.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import clip_path, read_split

SILENCE_GAP = 0.4  # seconds between the clips, so the recogniser sees separate sentences


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("the ffmpeg binary is needed to build test media: apt-get install ffmpeg")
    return path


def media_duration(path: Path) -> float:
    from app.speech.audio import probe_duration

    seconds = probe_duration(path)
    assert seconds is not None, path
    return seconds


def reference_rows(n: int = 3) -> list[dict]:
    """The first `n` zh-synth test sentences with at least five characters."""
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 5]
    return rows[:n]


def join_clips(rows: list[dict], out: Path, codec: tuple[str, ...] = ()) -> Path:
    """The rows' clips one after another, SILENCE_GAP after each, as one 16 kHz mono audio file."""
    n = len(rows)
    cmd = [ffmpeg(), "-v", "error", "-y"]
    for row in rows:
        cmd += ["-i", str(clip_path(row))]
    pads = "".join(f"[{i}:a]aresample=16000,aformat=channel_layouts=mono,apad=pad_dur={SILENCE_GAP}[a{i}];"
                   for i in range(n))
    cmd += ["-filter_complex", pads + "".join(f"[a{i}]" for i in range(n)) + f"concat=n={n}:v=0:a=1[a]",
            "-map", "[a]", *codec, str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out


def build_video(rows: list[dict], out: Path) -> Path:
    """MP4 (H.264 black frames + AAC): the rows' clips one after another with short gaps."""
    speech = join_clips(rows, out.with_suffix(".speech.wav"))
    seconds = media_duration(speech)
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"color=c=black:s=160x120:r=10:d={seconds:.3f}", "-i", str(speech),
                    "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(out)],
                   check=True, capture_output=True)
    speech.unlink()
    return out


REQUESTS: list[str] = []  # every path asked of any served site, in order


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".xml": "application/rss+xml", ".mp4": "video/mp4", ".html": "text/html"}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        REQUESTS.append(self.path)
        # /status/403 answers that HTTP status, to see how a site's refusal is reported.
        if self.path.startswith("/status/"):
            self.send_error(int(self.path.rsplit("/", 1)[1]))
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 (keep the test output quiet)
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve `folder` on a free loopback port in a thread; yields the base URL (ends with /)."""
    with serve_handler(partial(_Handler, directory=str(folder))) as url:
        yield url


@contextlib.contextmanager
def serve_handler(handler):
    """Any http.server request handler on a free loopback port in a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def closed_port_url(path: str = "clip.mp4") -> str:
    """A loopback URL nobody listens on (a port just bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


@dataclass
class Site:
    base: str
    folder: Path
    rows: list[dict]  # the zh-synth rows spoken in clip.mp4, in order

    def url(self, name: str) -> str:
        return self.base + name

    @staticmethod
    def requests() -> int:
        return len(REQUESTS)

    @property
    def sentences(self) -> str:
        return "".join(r["sentence"] for r in self.rows)


def write_site(folder: Path, base: str, rows: list[dict]) -> None:
    """clip.mp4 (the rows' speech), a copy, and pages that point at them."""
    build_video(rows, folder / "clip.mp4")
    shutil.copy(folder / "clip.mp4", folder / "clip2.mp4")
    (folder / "junk.mp4").write_bytes(bytes(range(256)) * 64)  # served as video/mp4, decodes as nothing
    (folder / "text.html").write_text(
        "<!doctype html><html><head><title>No media here</title></head>"
        "<body><p>Just a page of text.</p></body></html>", encoding="utf-8")
    (folder / "one.html").write_text(
        "<!doctype html><html><head><title>One video</title></head>"
        '<body><video src="clip.mp4" controls></video></body></html>', encoding="utf-8")
    (folder / "two.html").write_text(
        "<!doctype html><html><head><title>Two videos</title></head><body>"
        '<video src="clip.mp4" controls></video><video src="clip2.mp4" controls></video></body></html>',
        encoding="utf-8")
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Lessons</title>'
        f"<link>{base}</link><description>two episodes</description>"
        f'<item><title>One</title><guid>one</guid><enclosure url="{base}clip.mp4" type="video/mp4"/></item>'
        f'<item><title>Two</title><guid>two</guid><enclosure url="{base}clip2.mp4" type="video/mp4"/></item>'
        "</channel></rss>\n", encoding="utf-8")


@contextlib.contextmanager
def local_site(folder: Path, n_clips: int = 3):
    with serve(folder) as base:
        rows = reference_rows(n_clips)
        write_site(folder, base, rows)
        yield Site(base=base, folder=folder, rows=rows)
