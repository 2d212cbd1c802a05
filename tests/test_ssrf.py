"""SSRF through a public link, played on loopback with the real yt-dlp.

ZIMU_TEST_PUBLIC_HOSTS=127.0.0.2 makes 127.0.0.2 count as a public address. A "public" site listens
on 127.0.0.2 and a "private" service on 127.0.0.1 (its own port, and a twin on the public site's
port for DNS rebinding); the private one counts every request it gets. Each attack starts from a
link to the public site and must be refused with one line and zero requests on the private side.
Each is also played with local links allowed (the guard off), where the private service is reached:
that shows the attack is real, so a refusal is the guard's doing and not a broken setup.

DNS rebinding is simulated in-process: `socket.getaddrinfo` is patched so that a made-up name
(rebind.zimu.test) resolves to 127.0.0.2 the first time and to 127.0.0.1 afterwards. Python code
(our check and yt-dlp's own connection code) resolves through that function, as it would through
a rebinding DNS server.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.base.errors import UserError
from app.jobs import link_cache, run_job
from app.speech.media import (REFUSED, _check_protocols, _is_public, _public_only, check_url, download_audio,
                       link_info)
from app.speech.transcribe import TranscribeOptions
from tests.served_media import build_video, closed_port_url, reference_rows

OPTIONS = TranscribeOptions(english="none")
MAX = 600.0
PUBLIC_IP, PRIVATE_IP = "127.0.0.2", "127.0.0.1"
REBIND_HOST = "rebind.zimu.test"


@dataclass
class Server:
    base: str
    port: int
    requests: list[str] = field(default_factory=list)


def _handler(routes: dict, folder: Path, requests: list[str]):
    """Answers from `routes` (path → (status, headers, body)) or else serves `folder`; logs each path."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mp4": "video/mp4",
                          ".ts": "video/mp2t", ".html": "text/html"}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            requests.append(self.path)
            route = routes.get(self.path.split("?")[0])
            if route is None:
                return super().do_GET()
            status, headers, body = route
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802
            requests.append(self.path)
            super().do_HEAD()

        def log_message(self, format, *args):  # noqa: A002 (quiet tests)
            pass

    return Handler


@contextlib.contextmanager
def _serving(address: tuple[str, int], handler):
    server = http.server.ThreadingHTTPServer(address, handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _pair_of_ports(stack: contextlib.ExitStack, public_handler, twin_handler) -> int:
    """A port free on both 127.0.0.2 (the public site) and 127.0.0.1 (the private twin)."""
    for _ in range(50):
        attempt = contextlib.ExitStack()
        port = attempt.enter_context(_serving((PUBLIC_IP, 0), public_handler)).server_address[1]
        try:
            attempt.enter_context(_serving((PRIVATE_IP, port), twin_handler))
        except OSError:  # taken on 127.0.0.1: try another
            attempt.close()
            continue
        stack.enter_context(attempt)
        return port
    raise RuntimeError("no port free on both loopback addresses")


def _html(title: str, body: str = "") -> bytes:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()


def _playlist(segment: str, key: str = "") -> bytes:
    return ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n" + key +
            f"#EXTINF:5.0,\n{segment}\n#EXT-X-ENDLIST\n").encode()


@dataclass
class Sites:
    public: Server
    private: Server

    def url(self, path: str, host: str = PUBLIC_IP) -> str:
        return f"http://{host}:{self.public.port}/{path}"


@pytest.fixture(scope="module")
def sites(tmp_path_factory, zh_synth):
    """The public site's pages are the attacks; the private service has a speech video (so a leak would be
    transcribed), a page, HLS segments and a key."""
    private_dir, public_dir = tmp_path_factory.mktemp("private"), tmp_path_factory.mktemp("public")
    build_video(reference_rows(2), private_dir / "clip.mp4")
    shutil.copy(private_dir / "clip.mp4", private_dir / "seg.ts")
    (private_dir / "key.bin").write_bytes(bytes(16))
    (private_dir / "page.html").write_bytes(_html("Private page", '<video src="clip.mp4"></video>'))
    shutil.copy(private_dir / "clip.mp4", public_dir / "clip.mp4")
    shutil.copy(private_dir / "clip.mp4", public_dir / "seg.ts")
    private_hits: list[str] = []
    public_hits: list[str] = []
    with contextlib.ExitStack() as stack:
        private = stack.enter_context(_serving((PRIVATE_IP, 0), _handler({}, private_dir, private_hits)))
        inside = f"http://{PRIVATE_IP}:{private.server_address[1]}/"
        routes: dict = {}
        port = _pair_of_ports(stack, _handler(routes, public_dir, public_hits),
                              _handler({}, private_dir, private_hits))
        outside = f"http://{PUBLIC_IP}:{port}/"
        html = {"Content-Type": "text/html"}
        hls = {"Content-Type": "application/vnd.apple.mpegurl"}
        routes.update({
            "/redirect.mp4": (302, {"Location": inside + "clip.mp4"}, b""),
            "/refresh.html": (200, html,
                              _html("Moved", f'<meta http-equiv="refresh" content="0; url={inside}clip.mp4">')),
            "/hls.m3u8": (200, hls, _playlist(inside + "seg.ts")),
            # SAMPLE-AES is beyond yt-dlp's own HLS downloader: it hands such a stream to ffmpeg.
            "/hls-ffmpeg.m3u8": (200, hls, _playlist(inside + "seg.ts",
                                                     f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{inside}key.bin"\n')),
            "/video.html": (200, html, _html("A video", f'<video src="{outside}redirect.mp4"></video>')),
            "/page.html": (200, html, _html("Public page", '<video src="clip.mp4"></video>')),
            "/public.m3u8": (200, hls, _playlist(outside + "seg.ts")),
        })
        yield Sites(public=Server(outside, port, public_hits), private=Server(inside, private.server_address[1],
                                                                             private_hits))


@pytest.fixture
def public_switch(monkeypatch):
    monkeypatch.setenv("ZIMU_TEST_PUBLIC_HOSTS", PUBLIC_IP)


@pytest.fixture
def rebinding(monkeypatch):
    """REBIND_HOST resolves to 127.0.0.2 once, then to 127.0.0.1."""
    real = socket.getaddrinfo
    answers = iter([PUBLIC_IP])

    def getaddrinfo(host, port, *args, **kwargs):
        if host != REBIND_HOST:
            return real(host, port, *args, **kwargs)
        address = next(answers, PRIVATE_IP)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _fetch(url: str, folder: Path, allow_local: bool) -> Path:
    """What the app does with a link, short of transcribing: metadata, then the download."""
    return download_audio(link_info(url, MAX, allow_local=allow_local), folder, allow_local=allow_local).path


ATTACKS = {
    "302 redirect": "redirect.mp4",
    "meta refresh": "refresh.html",
    "HLS segment": "hls.m3u8",
    "HLS handed to ffmpeg": "hls-ffmpeg.m3u8",
    "<video src> that redirects": "video.html",
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_reaches_the_private_service_without_the_guard(sites, public_switch, tmp_path, attack):
    before = len(sites.private.requests)
    try:
        _fetch(sites.url(ATTACKS[attack]), tmp_path, allow_local=True)
    except UserError:
        pass  # an attack may still end in an error (versions of yt-dlp, ffmpeg): the hits are what counts
    assert len(sites.private.requests) > before, attack


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_refused_with_no_request_to_the_private_service(sites, public_switch, model, tmp_path, attack):
    link_cache.clear()
    before = len(sites.private.requests)
    url = sites.url(ATTACKS[attack])
    with pytest.raises(UserError) as info:
        run_job(url, model, OPTIONS, MAX)
    message = str(info.value)
    assert "\n" not in message
    if attack == "HLS handed to ffmpeg":
        assert message == (f"could not download {url}: this stream needs an outside program (ffmpeg), "
                           "which links may not use on this server")
    else:
        assert message == f"{REFUSED}: {url} leads to {PRIVATE_IP}"
    assert sites.private.requests[before:] == []


def test_dns_rebinding_without_the_guard_reads_the_private_page(sites, public_switch, rebinding):
    before = len(sites.private.requests)
    url = sites.url("page.html", REBIND_HOST)
    check_url(url)  # the first lookup says public: a check of the name alone passes
    info = link_info(url, MAX, allow_local=True)
    assert info["title"].startswith("Private page")
    assert len(sites.private.requests) > before


def test_dns_rebinding_is_refused(sites, public_switch, rebinding):
    before = len(sites.private.requests)
    url = sites.url("page.html", REBIND_HOST)
    with pytest.raises(UserError) as info:
        link_info(url, MAX)
    assert str(info.value) == f"{REFUSED}: {url} leads to {PRIVATE_IP}"
    assert sites.private.requests[before:] == []


@pytest.mark.parametrize("page, media", [("page.html", "/clip.mp4"), ("public.m3u8", "/seg.ts")])
def test_a_public_site_still_works_with_the_guard(sites, public_switch, tmp_path, page, media):
    """A page with a video, and HLS downloaded natively (yt-dlp sees no ffmpeg on a guarded thread)."""
    before = len(sites.private.requests), len(sites.public.requests)
    path = _fetch(sites.url(page), tmp_path, allow_local=False)
    assert path.parent == tmp_path and path.stat().st_size > 1000
    assert media in sites.public.requests[before[1]:]
    assert sites.private.requests[before[0]:] == []


def test_the_guard_is_only_on_the_thread_that_runs_yt_dlp(sites, public_switch):
    """While a link job waits for a slow public answer, other threads (Gradio's own loopback traffic)
    connect to 127.0.0.1 as usual."""
    release, waiting = threading.Event(), threading.Event()
    outcome: dict = {}
    with _slow_server(release, waiting) as url:
        job = threading.Thread(target=lambda: outcome.update(error=_error_of(lambda: link_info(url, MAX))))
        job.start()
        try:
            assert waiting.wait(30), "the link job never reached the slow site"
            before = len(sites.private.requests)
            with urllib.request.urlopen(sites.private.base + "page.html", timeout=10) as response:
                assert b"Private page" in response.read()
            assert len(sites.private.requests) == before + 1
        finally:
            release.set()
            job.join(30)
    assert outcome["error"] == f"no video or audio found at {url} (unsupported link)"


def test_the_hook_refuses_programs_and_private_peers_while_yt_dlp_runs(sites, public_switch):
    """The backstop under the tests above: on a guarded thread no program starts (ffmpeg would fetch
    segments itself) and no socket reaches a private address; after the block all is as before."""
    before = len(sites.private.requests)
    with _public_only(False) as guard:
        with pytest.raises(PermissionError):
            subprocess.run(["ffmpeg", "-version"], capture_output=True)
        with pytest.raises(PermissionError):
            socket.create_connection((PRIVATE_IP, sites.private.port), timeout=5)
        socket.create_connection((PUBLIC_IP, sites.public.port), timeout=5).close()
    assert guard.programs == ["ffmpeg"] and guard.addresses == [PRIVATE_IP]
    assert sites.private.requests[before:] == []
    socket.create_connection((PRIVATE_IP, sites.private.port), timeout=5).close()
    assert subprocess.run(["ffmpeg", "-version"], capture_output=True).returncode == 0


@contextlib.contextmanager
def _slow_server(release: threading.Event, waiting: threading.Event):
    """A 'public' page on 127.0.0.2 that answers only once `release` is set."""

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            waiting.set()
            release.wait(30)
            body = _html("Nothing here", "<p>text</p>")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002
            pass

    with _serving((PUBLIC_IP, 0), Slow) as server:
        yield f"http://{PUBLIC_IP}:{server.server_address[1]}/slow.html"


def _error_of(call) -> str | None:
    try:
        call()
    except UserError as exc:
        return str(exc)
    return None


def test_switch_is_off_by_default_and_takes_loopback_only(monkeypatch):
    monkeypatch.delenv("ZIMU_TEST_PUBLIC_HOSTS", raising=False)
    assert not _is_public(PUBLIC_IP)
    monkeypatch.setenv("ZIMU_TEST_PUBLIC_HOSTS", f"{PUBLIC_IP}, 10.0.0.1, 192.168.1.1, nonsense")
    assert _is_public(PUBLIC_IP) and _is_public(f"::ffff:{PUBLIC_IP}")
    assert not _is_public(PRIVATE_IP)
    assert not _is_public("10.0.0.1") and not _is_public("192.168.1.1")  # the switch never opens a real LAN
    with pytest.raises(UserError, match="local or private network addresses are refused"):
        check_url(f"http://{PRIVATE_IP}/x.mp4")


def test_streams_fetched_by_other_programs_or_threads_are_refused(public_switch):
    url = "http://127.0.0.2/page.html"
    for protocol in ("rtmp", "websocket_frag", "f4m+rtmp"):
        with pytest.raises(UserError) as info:
            _check_protocols({"url": "http://127.0.0.2/stream", "protocol": protocol}, url)
        assert str(info.value) == f"could not download {url}: its {protocol} stream is not supported"
    _check_protocols({"url": "http://127.0.0.2/a.m3u8", "protocol": "m3u8_native"}, url)  # accepted


def test_long_link_is_cut_in_the_error_line():
    url = "ftp://" + "a" * 100_000
    with pytest.raises(UserError) as info:
        check_url(url)
    message = str(info.value)
    assert message == f"unsupported link {url[:200]}…: only http:// and https:// links are accepted"


@pytest.mark.parametrize("url", ["http://[::1", "http://[127.0.0.1]/x.mp4"])
def test_a_broken_host_is_one_line_not_a_traceback(url):
    with pytest.raises(UserError) as info:
        check_url(url)
    assert str(info.value) == f"unsupported link {url}: only http:// and https:// links are accepted"


def test_long_link_is_cut_in_the_cli_error_line(model, tmp_path, capsys):
    from app.cli import main

    url = closed_port_url("clip.mp4?" + "a" * 100_000)
    assert main(["transcribe", url, "--allow-local-urls", "--english", "none", "-o", str(tmp_path)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: could not reach {url[:200]}…: check the link and your connection"]
