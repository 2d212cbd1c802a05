"""A featurise run: plan shards, skip finished ones, fan the rest out to processes, summarise.

Resume: the shard list is a pure function of the sources and options, and a shard is either
complete under its final name (with the options' fingerprint in its footer) or absent. A rerun
of the same command recomputes the list, skips every shard that exists with the right
fingerprint and redoes the rest, so after any number of kills the rows are exactly those of an
uninterrupted run.

Parallel: --num-proc N runs N worker processes on this machine; --num-shards N --shard-index I
makes this process do only the shards whose number (counted over all splits, in plan order) is
I modulo N, so N cluster jobs given I = 0..N-1 share the work with no coordination but the
output folder. Whichever process finds every shard finished writes manifest.json.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from app.base.errors import UserError
from featurize import manifest, shards
from featurize.pipeline import Featurizer, Settings
from featurize.sources import SourceSpec, Unit, columns_for, units_of

log = logging.getLogger("featurize")


@dataclass
class PlannedShard:
    number: int  # position over all splits: what --shard-index takes modulo --num-shards
    unit: Unit
    name: str


def plan(specs: list[SourceSpec], settings: Settings, audio_column: str | None,
         text_column: str | None) -> list[PlannedShard]:
    """Every shard of the run, in a fixed order: splits in order of first appearance, then sources."""
    by_split: dict[str, list[Unit]] = {}
    for spec in specs:
        columns = columns_for(spec.kind, audio_column, text_column)
        for split in spec.splits:
            units = units_of(spec, split, columns, settings.clips_per_shard, settings.streaming,
                             settings.allow_outside_paths)
            by_split.setdefault(split, []).extend(units)
    planned = []
    for split, units in by_split.items():
        for index, unit in enumerate(units):
            planned.append(PlannedShard(len(planned), unit, shards.shard_name(split, index, len(units))))
    return planned


def check_output(out: Path) -> Path:
    """Create OUT/data and prove it writable before any work; returns the data folder."""
    data = out / "data"
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc
    return data


def check_existing(data: Path, planned: list[PlannedShard], fingerprint: str, overwrite: bool) -> None:
    """Refuse to mix shards made with other options (resuming needs the same command)."""
    ours = {p.name for p in planned}
    foreign = []
    for path in sorted(data.glob("*.parquet")):
        stats = shards.read_stats(path)
        if path.name not in ours or stats is None or stats.get("fingerprint") != fingerprint:
            foreign.append(path)
    if foreign and not overwrite:
        raise UserError(
            f"{data} holds {len(foreign)} shard(s) made with other sources or options (e.g. {foreign[0].name}); "
            "rerun the original command to resume, use another --out, or pass --overwrite to delete them"
        )
    for path in foreign:
        path.unlink(missing_ok=True)
    if foreign:
        (data.parent / manifest.MANIFEST_NAME).unlink(missing_ok=True)


# --- workers -------------------------------------------------------------------------------------

_featurizer: Featurizer | None = None
_progress_queue = None


def _init_worker(settings: Settings, progress_queue) -> None:
    global _featurizer, _progress_queue
    _one_torch_thread()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    _featurizer = Featurizer(settings)
    _progress_queue = progress_queue


def _one_torch_thread() -> None:
    # One clip's STFT is tiny: torch's intra-op thread pool only adds contention (measured 50x
    # slower with 2 threads on 2 busy cores). Parallelism comes from processes (--num-proc).
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


class _BatchedProgress:
    """Report progress to the parent a few times a second, not once per clip."""

    def __init__(self, sink):
        self.sink, self.pending, self.last = sink, 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        if time.monotonic() - self.last > 0.3:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.sink.put(self.pending)
        self.pending, self.last = 0, time.monotonic()


def _work(unit: Unit, path: str) -> dict:
    progress = _BatchedProgress(_progress_queue)
    try:
        return _featurizer.write_shard(unit, Path(path), progress)
    finally:
        progress.flush()


# --- the run -------------------------------------------------------------------------------------


@dataclass
class RunOptions:
    out: Path
    num_proc: int = 1
    num_shards: int = 1
    shard_index: int = 0
    overwrite: bool = False
    progress: bool = True


def run(specs: list[SourceSpec], settings: Settings, options: RunOptions,
        audio_column: str | None = None, text_column: str | None = None, push_to_hub=None) -> dict:
    """Plan, resume, featurise this process's share, write the manifest when all is done."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from app.base.progress import progress

    data = check_output(options.out)
    featurizer = Featurizer(settings)  # fails fast on a bad --model / tokenizer
    planned = plan(specs, settings, audio_column, text_column)
    check_existing(data, planned, featurizer.fingerprint, options.overwrite)
    mine = [p for p in planned if p.number % options.num_shards == options.shard_index]
    finished = {p.name: s for p in mine if (s := shards.read_stats(data / p.name)) is not None}
    todo = [p for p in mine if p.name not in finished]
    for p in todo:  # leftovers of a killed run (each shard has a single owner, so this is safe)
        for tmp in data.glob(f".{p.name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if finished:
        log.info("resuming: %d of %d shards already finished, %d to do", len(finished), len(mine), len(todo))

    total = sum(p.unit.size or 0 for p in todo) if all(p.unit.size is not None for p in todo) else None
    started = time.perf_counter()
    done_now: dict[str, dict] = {}
    # Bars on a terminal, lines every 30 s in a log file (Slurm/k8s; app.base.progress), none with --quiet.
    bar_options = dict(disable=not options.progress, dynamic_ncols=True, mininterval=0.1)
    with logging_redirect_tqdm(), progress(total=total, unit="clip", desc="featurize", **bar_options) as bar, \
            progress(total=len(mine), initial=len(finished), unit="shard", desc="shards", position=1,
                 **bar_options) as shard_bar:
        if options.num_proc <= 1 or len(todo) <= 1:
            _one_torch_thread()
            for p in todo:
                done_now[p.name] = featurizer.write_shard(p.unit, data / p.name, bar.update)
                shard_bar.update(1)
        else:
            _run_pool(featurizer.settings, todo, data, options.num_proc, bar, shard_bar, done_now)
    elapsed = time.perf_counter() - started

    all_stats = {p.name: shards.read_stats(data / p.name) for p in planned}
    complete = all(s is not None for s in all_stats.values())
    result = manifest.summarise({**finished, **done_now}, done_now, elapsed)
    result["complete"] = complete
    if complete:
        result["manifest"] = str(manifest.write(options.out, planned, all_stats, featurizer, specs))
        if push_to_hub:
            push_to_hub(options.out)
    return result


def _run_pool(settings, todo, data, num_proc, bar, shard_bar, done_now) -> None:
    # spawn, not fork: the parent already holds tokenizers/torch thread pools that fork would copy.
    context = multiprocessing.get_context("spawn")
    progress_queue = context.Queue()
    with ProcessPoolExecutor(num_proc, mp_context=context, initializer=_init_worker,
                             initargs=(settings, progress_queue)) as pool:
        futures = {pool.submit(_work, p.unit, str(data / p.name)): p for p in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, bar)
            for future in done:
                done_now[futures[future].name] = future.result()
                shard_bar.update(1)
        _drain(progress_queue, bar)


def _drain(progress_queue, bar) -> None:
    while True:
        try:
            bar.update(progress_queue.get_nowait())
        except queue.Empty:
            return

