"""Checkpoints that survive a lost GPU: a checkpoint counts only once it is known to be whole.

Trainer writes checkpoint-N/ file by file, in place (no temporary folder), and then deletes old
checkpoints beyond save_total_limit; a process killed in between leaves a folder that looks like
a checkpoint but has a truncated model or optimizer, and `get_last_checkpoint` would resume from
it. So:

  * after Trainer has written checkpoint-N (the `on_save` callback, all ranks done), every file in
    it is fsync'ed and a marker, COMPLETE_MARKER, listing each file and its size, is written to a
    temporary name and renamed into place — a single-file rename, which is atomic on local disks
    and also on mounted cloud drives, where renaming a whole folder is not;
  * only then are old checkpoints deleted (Trainer's own rotation is switched off because it
    runs before the marker is written): marker first, so a half-deleted folder is never complete;
  * on start, `latest_complete_checkpoint` skips any folder whose marker is missing or whose
    files no longer match it, and `discard_incomplete` removes those folders so Trainer can write
    the same step again.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from app.base.files import fsync, write_atomic

COMPLETE_MARKER = "checkpoint-complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_folders(output_dir: str | Path) -> list[tuple[int, Path]]:
    """checkpoint-N folders of `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))]
    return sorted(found)


def step_of(folder: Path) -> int:
    return int(_CHECKPOINT_RE.match(folder.name).group(1))


def mark_complete(folder: Path, step: int) -> None:
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != COMPLETE_MARKER and not path.name.startswith("."):
            fsync(path)
            files[path.relative_to(folder).as_posix()] = path.stat().st_size
    write_atomic(folder / COMPLETE_MARKER, json.dumps({"global_step": step, "files": files}, indent=1))


def is_complete(folder: Path) -> bool:
    """The marker is there and every file it lists is there with its recorded size."""
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if "trainer_state.json" not in files:
        return False
    for name, size in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def latest_complete_checkpoint(output_dir: str | Path) -> Path | None:
    for _, folder in reversed(checkpoint_folders(output_dir)):
        if is_complete(folder):
            return folder
    return None


def discard_incomplete(output_dir: str | Path) -> list[Path]:
    """Delete checkpoint folders that are not complete (call on the main process only)."""
    removed = []
    for _, folder in checkpoint_folders(output_dir):
        if not is_complete(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def rotate(output_dir: str | Path, keep_last: int | None, keep: Path | None = None) -> None:
    """Delete complete checkpoints beyond the newest `keep_last` (and never `keep`, the best one)."""
    if not keep_last or keep_last <= 0:
        return
    complete = [folder for _, folder in checkpoint_folders(output_dir) if is_complete(folder)]
    for folder in complete[:-keep_last]:
        if keep is not None and folder.resolve() == keep.resolve():
            continue
        (folder / COMPLETE_MARKER).unlink(missing_ok=True)  # no longer a candidate from here on
        shutil.rmtree(folder, ignore_errors=True)


class CompleteCheckpointCallback(TrainerCallback):
    """Marks each checkpoint complete after Trainer saved it, then rotates; see the module doc.

    `extra_files` (name → text) are written into every checkpoint first, e.g. the run's
    configuration, so a checkpoint folder alone says how it was trained.
    """

    def __init__(self, keep_last: int | None, extra_files: dict[str, str] | None = None):
        self.keep_last = keep_last
        self.extra_files = extra_files or {}

    def on_save(self, args, state, control, **kwargs):
        from accelerate import PartialState

        # Every rank has written its part (each writes its own rng_state_<rank>.pth) before rank 0
        # vouches for the folder.
        PartialState().wait_for_everyone()
        if args.should_save:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            for name, text in self.extra_files.items():
                (folder / name).write_text(text, encoding="utf-8")
            mark_complete(folder, state.global_step)
            best = Path(state.best_model_checkpoint) if state.best_model_checkpoint else None
            rotate(args.output_dir, self.keep_last, keep=best)
        PartialState().wait_for_everyone()
        return control
