"""A server killed mid-download and mid-transcription leaves nothing behind once it is restarted.

The real app (`python -m app`, as conftest's running_app starts it, on its own port) with a private
TMPDIR, so what it leaves is known exactly: a link served slowly on loopback is being downloaded
and an upload is being transcribed (ZIMU_CONCURRENCY=2, both at once) when the whole server is
SIGKILLed, which runs no clean-up at all. The restart must remove the download folder with its
.part file, both result folders and Gradio's copy of the upload (app/base/housekeeping.py).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, read_split, wait_http
from tests.served_media import build_video, join_clips, reference_rows, serve_handler
from tests.test_fuzz import THIRD_PARTY_TEMP

pytestmark = pytest.mark.slow  # two server starts, a download and a transcription

LINK_SECONDS = 60  # how long the slow link takes to send the whole video: the kill comes well before
RETENTION = 2  # ZIMU_RESULT_TTL of the restarted server: the killed server's upload is older


@contextlib.contextmanager
def slow_link(body: bytes):
    """Serve `body` as video/mp4 over LINK_SECONDS on a free loopback port; yields its URL."""
    step = max(1, len(body) // (LINK_SECONDS * 10))  # bytes per tenth of a second

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body), step):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):  # the server was killed
                pass

        def log_message(self, format, *args):  # noqa: A002
            pass

    with serve_handler(Slow) as base:
        yield base + "lesson.mp4"


def start_app(tmpdir: Path, log: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """`python -m app` as running_app starts it, in its own session (so the kill takes ffmpeg too)."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port),
                                 "--allow-local-urls"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TMPDIR": str(tmpdir), "GRADIO_ANALYTICS_ENABLED": "False",
                                     **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url, timeout=180, proc=proc)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc, url


def kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def wait_for(what: str, check, timeout: float = 180.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def transcribing(job) -> bool:
    """The recogniser is at work: its progress says so, or it has streamed a first partial transcript."""
    from gradio_client.utils import Status

    status = job.status()
    return status.code == Status.ITERATING or any(u.desc == "Transcribing" for u in (status.progress_data or []))


def test_a_server_killed_mid_download_and_mid_transcription_leaves_nothing_after_a_restart(
        tmp_path, zh_synth, monkeypatch):
    from gradio_client import Client, handle_file

    from tests.test_ui import find_endpoints

    # gradio_client 2.7 leaves an empty <tempdir>/<40 hex> folder per downloaded file: keep them here.
    (tmp_path / "client-temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "client-temp"))
    server_tmp, log = tmp_path / "server-tmp", tmp_path / "server.log"
    server_tmp.mkdir()
    video = build_video(reference_rows(3), tmp_path / "lesson.mp4")
    # ~3 min of speech: long enough to be killed while transcribing (~10x real time here).
    rows = [r for r in read_split("test") if len(r["sentence"]) >= 5][3:83]
    upload = join_clips(rows, tmp_path / "long.mp3", ("-c:a", "libmp3lame", "-b:a", "32k"))

    with slow_link(video.read_bytes()) as link:
        proc, url = start_app(server_tmp, log, ZIMU_CONCURRENCY="2")
        try:
            client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
            endpoints = find_endpoints(client)
            downloading = client.submit(link, "zh", "none", ["hanzi"], api_name=endpoints["url"])
            parts = wait_for("the download to start", lambda: [p for p in server_tmp.glob("zimu-dl-*/*.part")
                                                                if p.stat().st_size > 0])
            job = client.submit(handle_file(str(upload)), "zh", "none", ["hanzi"], api_name=endpoints["upload"])
            wait_for("the transcription to start", lambda: transcribing(job) or job.done())
            assert not job.done(), "the transcription ended before the kill: make the upload longer"
            assert not downloading.done(), "the download ended before the kill: slow the link down"
        finally:
            kill(proc)
    client.close()

    # What the SIGKILL left: the half download, both result folders, Gradio's copy of the upload.
    left = tree(server_tmp)
    # The download's folder (its .part, or the finished file when a loaded machine let it complete).
    assert parts[0].parent.is_dir() and any(parts[0].parent.iterdir()), left
    assert len(list(server_tmp.glob("zimu-results/job-*"))) == 2
    assert any(p.name == "long.mp3" for p in (server_tmp / "gradio").rglob("*")), left

    time.sleep(RETENTION + 0.5)  # the killed server's files are now older than the restart's retention
    proc, url = start_app(server_tmp, log, ZIMU_RESULT_TTL=str(RETENTION))
    try:
        survivors = left & tree(server_tmp)
    finally:
        kill(proc)
    # Only folders the restarted server uses remain from before (Gradio makes vibe_edit_history at
    # every start, empty), and caches of libraries that are meant to be reused (jieba's dictionary).
    ours = {p for p in survivors if Path(p).parts[0] not in THIRD_PARTY_TEMP}
    assert ours - {"gradio/vibe_edit_history"} == {"zimu-results", "gradio"}, sorted(survivors)
    lines = [line for line in log.read_text(errors="replace").splitlines() if "start-up clean-up" in line]
    print("\n".join(lines))
    assert lines[0].endswith("nothing to remove"), lines
    assert "removed 1 download folder, 2 result folders" in lines[1], lines
