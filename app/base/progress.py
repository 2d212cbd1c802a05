"""Progress for long loops: tqdm's bar on a terminal; in a log (stderr redirected: CI, Slurm, nohup)
whole lines instead of one line smeared with carriage returns: one when the stage starts, at most
one every 30 s, one when it ends.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 30


class _LineProgress(tqdm):
    """tqdm that writes each refresh as a line of its own."""

    def display(self, msg=None, pos=None):
        self.fp.write((msg or self.__str__()).strip() + "\n")
        self.fp.flush()
        return True


def progress(iterable=None, **options) -> tqdm:
    """tqdm(iterable, **options), drawn as a bar on a terminal and as lines elsewhere."""
    if sys.stderr.isatty():
        return tqdm(iterable, **options)
    options.pop("dynamic_ncols", None)
    options["mininterval"] = max(options.get("mininterval", 0), LOG_INTERVAL_SECONDS)
    options.setdefault("ascii", True)
    return _LineProgress(iterable, **options)
