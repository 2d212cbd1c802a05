"""Progress for long loops and jobs: tqdm's bar on a terminal; in a log (stderr redirected: CI, Slurm,
nohup) whole lines instead of one line smeared with carriage returns: one when a stage starts, at most
one every 30 s, one when it ends, and never an empty one.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 30


class _Lines:
    """A log file as tqdm's output: the bare newlines and carriage returns tqdm writes around its
    bar (on close, on clearing) would be empty lines in a log, so they are dropped."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        if text.strip():
            self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class _LineProgress(tqdm):
    """tqdm that writes each refresh as a line of its own, and a line no different from the last
    one not at all (close redraws the bar)."""

    def __init__(self, *args, file=None, **options):
        self._last_line = ""
        super().__init__(*args, file=_Lines(file or sys.stderr), **options)

    def display(self, msg=None, pos=None):
        line = (self.__str__() if msg is None else msg).strip()
        if line and line != self._last_line:
            self.fp.write(line + "\n")
            self.fp.flush()
            self._last_line = line
        return True


def progress(iterable=None, **options) -> tqdm:
    """tqdm(iterable, **options), drawn as a bar on a terminal and as lines elsewhere."""
    if sys.stderr.isatty():
        return tqdm(iterable, **options)
    options.pop("dynamic_ncols", None)
    options["mininterval"] = max(options.get("mininterval", 0), LOG_INTERVAL_SECONDS)
    options.setdefault("ascii", True)
    return _LineProgress(iterable, **options)


class StageProgress:
    """One job's progress under its label, in stages ("decoding", "transcribing", ...): on a terminal
    one bar, "clip.mp3: transcribing  40%|####      |"; in a log a line when a stage starts,
    "clip.mp3: decoding", and a line with the percentage at most every 30 s while it runs."""

    def __init__(self, label: str, stream=None, clock=time.monotonic):
        self.label = label
        self.clock = clock
        self.stream = stream or sys.stderr
        self.stage = ""
        self._bar = None
        self._last_line_at = 0.0
        if self.stream.isatty():
            self._bar = tqdm(total=100, desc=label, file=self.stream, leave=True,
                             bar_format="{desc} {percentage:3.0f}%|{bar}|")

    def update(self, fraction: float, stage: str) -> None:
        stage = stage.lower()
        percent = max(0, min(100, round(fraction * 100)))
        new_stage = stage != self.stage
        self.stage = stage
        if self._bar is not None:
            self._bar.set_description_str(f"{self.label}: {stage}", refresh=False)
            self._bar.update(percent - self._bar.n)
            if new_stage:
                self._bar.refresh()
            return
        now = self.clock()
        if new_stage:
            self._write(f"{self.label}: {stage}", now)
        elif now - self._last_line_at >= LOG_INTERVAL_SECONDS and 0 < percent < 100:
            self._write(f"{self.label}: {stage} {percent}%", now)

    def _write(self, line: str, now: float) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._last_line_at = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
