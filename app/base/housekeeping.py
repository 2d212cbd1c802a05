"""Removing what a killed server leaves behind in the temp folder.

A SIGKILL (the OOM killer, a container stopped hard) runs no `finally`, no atexit and none of
Gradio's shutdown clean-up, so these stay:
- a link download's `zimu-dl-PID-*` folder, with up to --max-download-mb of `media.*.part`;
- result folders `zimu-results/job-PID-*` (subtitle files, player audio);
- Gradio's copies of uploads and outputs (`$GRADIO_TEMP_DIR`, default `<tmp>/gradio`): Gradio's own
  `delete_cache` only removes the files the running process created.

At start-up `sweep(starting=True)` removes download and result folders whose process (the PID in the
name) is gone, and anything of ours, Gradio's cache included, untouched for longer than the
retention; `keep_tidy` repeats the sweep every few minutes, so a dead process's young files go once
they pass the retention, as the README promises. Only our own names are touched, only entries owned
by this user, never through a symlink.

`stop_empty_upload_files` removes the cause of one more leftover: a 0-byte `tmp*` file that every
call through a gr.File input left in Gradio's cache.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

DOWNLOAD_PREFIX = "zimu-dl-"
RESULT_PREFIX = "job-"
SWEEP_EVERY = 600.0  # seconds between sweeps while the server runs
# Gradio's cache holds <sha1 or sha256 hex>/ folders (uploads, outputs) and tmp* files and folders
# (uploads being received, video conversions); nothing else in it is ours to judge.
GRADIO_ENTRY = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}|tmp\w+)$")


def owned_prefix(prefix: str) -> str:
    """The name prefix for a folder this process owns: the PID tells a later start whether its
    owner is still alive."""
    return f"{prefix}{os.getpid()}-"


def gradio_cache() -> Path:
    """Where Gradio 6 keeps uploads and outputs (gradio.utils.get_upload_folder)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def _pid_in(name: str, prefix: str) -> int | None:
    m = re.match(re.escape(prefix) + r"(\d+)-", name)
    return int(m.group(1)) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _newest_change(path: Path) -> float:
    """The latest mtime in a folder tree: a download still growing is not old."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


SINGULAR = {"download folders": "download folder", "result folders": "result folder",
            "Gradio cache entries": "Gradio cache entry"}


@dataclass
class Swept:
    """What one sweep removed: counts per kind and bytes freed."""

    removed: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def line(self) -> str:
        parts = [f"{n} {SINGULAR[kind] if n == 1 else kind}" for kind, n in self.removed.items() if n]
        return ("removed " + ", ".join(parts) + f" ({self.bytes / 1e6:.1f} MB)") if parts else "nothing to remove"


def _leftover(entry: Path, prefix: str | None, ttl: float, now: float, starting: bool) -> bool:
    """A folder of a dead owner (at start-up our own PID is a previous process's: containers reuse
    PIDs), or anything not changed for `ttl` seconds."""
    pid = _pid_in(entry.name, prefix) if prefix else None
    if pid is not None and (not _alive(pid) or (starting and pid == os.getpid())):
        return True
    return now - _newest_change(entry) > ttl


def _sweep_folder(folder: Path, kind: str, matches, prefix: str | None, ttl: float, now: float,
                  starting: bool, swept: Swept) -> None:
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        try:
            if not matches(entry.name) or entry.is_symlink():
                continue
            if uid is not None and entry.lstat().st_uid != uid:  # a shared /tmp: not ours even as root
                continue
            if _leftover(entry, prefix, ttl, now, starting):
                size = _size(entry)
                _remove(entry)
                swept.removed[kind] = swept.removed.get(kind, 0) + 1
                swept.bytes += size
        except FileNotFoundError:  # removed meanwhile (Gradio's own clean-up, another sweep)
            continue


def sweep(ttl: float, results_root: Path, temp_root: Path | None = None, cache: Path | None = None,
          starting: bool = False) -> Swept:
    """Remove our leftovers: download folders in `temp_root`, result folders in `results_root`,
    Gradio cache entries in `cache`; see the module's docstring for the rules."""
    temp_root = Path(temp_root or tempfile.gettempdir())
    cache = Path(cache or gradio_cache())
    now = time.time()
    swept = Swept()
    _sweep_folder(temp_root, "download folders", lambda n: n.startswith(DOWNLOAD_PREFIX), DOWNLOAD_PREFIX,
                  ttl, now, starting, swept)
    _sweep_folder(results_root, "result folders", lambda n: n.startswith(RESULT_PREFIX), RESULT_PREFIX,
                  ttl, now, starting, swept)
    _sweep_folder(cache, "Gradio cache entries", GRADIO_ENTRY.match, None, ttl, now, starting, swept)
    return swept


def sweep_results(results_root: Path, ttl: float) -> Swept:
    """Only the result folders: what each new request does, so the disk stays bounded between sweeps."""
    swept = Swept()
    _sweep_folder(Path(results_root), "result folders", lambda n: n.startswith(RESULT_PREFIX), RESULT_PREFIX,
                  ttl, time.time(), False, swept)
    return swept


def keep_tidy(ttl: float, results_root: Path, every: float = SWEEP_EVERY) -> threading.Thread:
    """Sweep every `every` seconds in a daemon thread (it dies with the server)."""

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                sweep(ttl, results_root)
            except OSError as exc:  # a full or read-only disk must not end the thread
                print(f"zimu: temp clean-up failed: {exc}", flush=True)

    thread = threading.Thread(target=loop, name="zimu-housekeeping", daemon=True)
    thread.start()
    return thread


def stop_empty_upload_files(demo) -> int:
    """Gradio 6.31's gr.File(type="filepath") preprocessing (components/file.py,
    File._process_single_file) opens `tempfile.NamedTemporaryFile(delete=False, dir=GRADIO_CACHE)`,
    sets its name to the upload's path and drops it: every Upload call leaves a 0-byte tmp* file in
    the cache that nothing removes. Each File input of `demo` gets a copy of that same function whose
    `tempfile` makes a plain object instead of a file: the same checks and messages, Gradio's own code
    in tracebacks, no file. Returns how many components were changed (0 once Gradio stops doing it)."""
    import gradio as gr

    changed = 0
    for block in demo.blocks.values():
        if not isinstance(block, gr.File):
            continue
        original = type(block)._process_single_file
        if "NamedTemporaryFile" not in original.__code__.co_names:
            continue
        no_file = types.SimpleNamespace(NamedTemporaryFile=types.SimpleNamespace)  # takes the kwargs, keeps .name
        fixed = types.FunctionType(original.__code__, {**original.__globals__, "tempfile": no_file},
                                   original.__name__, original.__defaults__, original.__closure__)
        block._process_single_file = types.MethodType(fixed, block)
        changed += 1
    return changed
