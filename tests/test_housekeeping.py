"""Start-up clean-up (app/base/housekeeping.py), the queue limits (app/base/limits.py) and atomic writes
(app/base/files.py: what a kill leaves behind), without a server.

The real thing (a server SIGKILLed mid-download and mid-transcription, then restarted; a burst
beyond the queue) is tests/test_crash.py and tests/test_load.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from app.base import housekeeping, limits


def dead_pid() -> int:
    """The PID of a process that has just exited (not reused within the test, in practice)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make(path: Path, age: float = 0.0, size: int = 10) -> Path:
    """A folder holding one file of `size` bytes, everything last changed `age` seconds ago."""
    path.mkdir(parents=True)
    (path / "media.mp4.part").write_bytes(bytes(size))
    stamp = time.time() - age
    for p in (path / "media.mp4.part", path):
        os.utime(p, (stamp, stamp))
    return path


@pytest.fixture
def temp(tmp_path) -> SimpleNamespace:
    root = tmp_path / "tmp"
    return SimpleNamespace(root=root, results=root / "zimu-results", cache=root / "gradio")


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_start_up_removes_a_dead_servers_folders_and_old_cache(temp):
    dead, me, init = dead_pid(), os.getpid(), 1  # PID 1 is alive in any container or machine
    make(temp.root / f"zimu-dl-{dead}-abc", size=5_000_000)  # a killed download, seconds old
    make(temp.root / f"zimu-dl-{me}-abc")  # our PID at start-up: a previous process's (containers reuse PIDs)
    make(temp.root / f"zimu-dl-{init}-live")  # another live process's download, still young
    make(temp.root / f"zimu-dl-{init}-stale", age=7200)  # ... and one untouched for 2 h
    make(temp.root / "zimu-dl-old-style", age=7200)  # no PID in the name: by age only
    make(temp.root / "zimu-dl-young-style")
    make(temp.root / "someone-elses", age=7200)  # not our name: never touched
    make(temp.results / f"job-{dead}-x")
    make(temp.results / f"job-{init}-x")
    make(temp.cache / ("a" * 64), age=7200)  # a killed server's upload, over the retention
    make(temp.cache / ("b" * 40))  # young: Gradio's copy may still be downloaded
    (temp.cache / "tmpk3j2").write_bytes(b"partial upload")
    os.utime(temp.cache / "tmpk3j2", (time.time() - 7200,) * 2)
    make(temp.cache / "not-gradios", age=7200)
    (temp.root / "zimu-dl-1-link").symlink_to(temp.root / "someone-elses")

    swept = housekeeping.sweep(3600, temp.results, temp.root, temp.cache, starting=True)

    assert names(temp.root) == {f"zimu-dl-{init}-live", "zimu-dl-young-style", "someone-elses", "zimu-dl-1-link",
                                "zimu-results", "gradio"}
    assert names(temp.results) == {f"job-{init}-x"}
    assert names(temp.cache) == {"b" * 40, "not-gradios"}
    assert swept.removed == {"download folders": 4, "result folders": 1, "Gradio cache entries": 2}
    assert swept.bytes >= 5_000_000 and swept.line().startswith("removed 4 download folders, 1 result folder, 2 ")
    assert (temp.root / "someone-elses" / "media.mp4.part").exists()  # not through the symlink


def test_a_running_server_keeps_its_own_folders_until_they_are_old(temp):
    mine = make(temp.root / f"zimu-dl-{os.getpid()}-abc")
    housekeeping.sweep(3600, temp.results, temp.root, temp.cache)
    assert mine.exists()
    assert housekeeping.sweep(3600, temp.results, temp.root, temp.cache).line() == "nothing to remove"
    # A download still growing is young whatever the folder's own time says.
    old = make(temp.root / f"zimu-dl-{os.getpid()}-slow", age=7200)
    (old / "media.mp4.part").write_bytes(bytes(20))
    housekeeping.sweep(3600, temp.results, temp.root, temp.cache)
    assert old.exists()
    os.utime(old / "media.mp4.part", (time.time() - 7200,) * 2)
    housekeeping.sweep(3600, temp.results, temp.root, temp.cache)
    assert not old.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_other_users_entries_are_left_alone(temp):
    theirs = make(temp.root / f"zimu-dl-{dead_pid()}-abc", age=7200)
    os.chown(theirs, 65534, 65534)
    housekeeping.sweep(3600, temp.results, temp.root, temp.cache, starting=True)
    assert theirs.exists()


# --- limits -------------------------------------------------------------------------------------


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "client": (peer, 40000)})


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("8.8.8.8", None, "8.8.8.8"),
    ("8.8.8.8", "1.1.1.1", "8.8.8.8"),  # a direct client's own X-Forwarded-For is not believed
    ("10.16.3.80", "1.1.1.1", "1.1.1.1"),  # a Space: the proxy's private address, the learner's in the header
    ("10.16.3.80", "9.9.9.9, 1.1.1.1", "1.1.1.1"),  # the proxy appends: the rightmost public entry is real
    ("10.16.3.80", "1.1.1.1, 10.0.0.3", "1.1.1.1"),
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "10.1.0.7", "10.1.0.7"),  # no public entry (a test on loopback): the rightmost
])
def test_client_address(peer, forwarded, expected):
    assert limits.client_address(request(peer, forwarded)) == expected


def fake_queue(waiting: list[tuple[str, str]], running: list[tuple[str, str]]):
    """Gradio's Queue as limits reads it: (concurrency id, client address) per event."""
    def event(cid, address):
        return SimpleNamespace(concurrency_id=cid, request=request("10.0.0.1", address))

    queues = {}
    for cid, address in waiting:
        queues.setdefault(cid, SimpleNamespace(queue=[])).queue.append(event(cid, address))
    return SimpleNamespace(event_queue_per_concurrency_id=queues,
                           active_jobs=[[event(c, a)] for c, a in running] + [None])


def test_queue_size_and_per_client_limit():
    queue = fake_queue(waiting=[("model", "1.1.1.1"), ("model", "2.2.2.2"), ("relines", "3.3.3.3")],
                       running=[("model", "1.1.1.1")])
    joining: Counter = Counter()
    # 1.1.1.1 holds two (one running, one waiting): a third is refused; others may join.
    assert limits.refusal(queue, "model", "1.1.1.1", joining, 3, 2) == limits.TOO_MANY.format(held=2)
    assert limits.refusal(queue, "model", "2.2.2.2", joining, 3, 2) is None
    assert limits.refusal(queue, "model", "1.1.1.1", joining, 3, 0) is None  # 0: no per-client limit
    # Two waiting transcriptions (the relines event is not one) plus one joining fill a queue of 3.
    joining["4.4.4.4"] += 1
    assert limits.refusal(queue, "model", "5.5.5.5", joining, 3, 2) == limits.BUSY.format(waiting=3)
    assert "try again in a minute" in limits.BUSY


def test_a_file_input_leaves_no_empty_file_in_gradios_cache(tmp_path, monkeypatch):
    import gradio as gr
    from gradio.data_classes import FileData

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    with gr.Blocks() as demo:
        upload = gr.File(type="filepath", file_types=["audio"])
    (tmp_path / "cache").mkdir()
    clip = tmp_path / "cache" / "clip.mp3"
    clip.write_bytes(b"ID3")
    upload.GRADIO_CACHE = str(tmp_path / "cache")

    upload.preprocess(FileData(path=str(clip)))
    leaked = [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("tmp")]
    assert len(leaked) == 1  # Gradio's own: the file this fix removes (the test fails once Gradio stops)
    for p in (tmp_path / "cache").glob("tmp*"):
        p.unlink()

    assert housekeeping.stop_empty_upload_files(demo) == 1
    assert upload.preprocess(FileData(path=str(clip))) == str(clip)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["clip.mp3"]
    with pytest.raises(gr.Error, match="Invalid file type"):  # Gradio's check and message are kept
        upload.preprocess(FileData(path=str(tmp_path / "notes.txt")))


def test_atomic_write_leaves_the_old_file_or_the_new_one_and_no_temporary(tmp_path):
    from app.base.files import atomic_path, write_atomic

    target = tmp_path / "manifest.json"
    write_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
