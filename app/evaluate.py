"""`python -m app.evaluate DATA [options]`: the former spelling of the one evaluation command,
`python -m training.evaluate --data DATA --plain [options]` (the app's pipeline beside plain
faster-whisper; `--no-plain` leaves the baseline out). CTranslate2 models need only the app's
dependencies there.
"""

from __future__ import annotations

import sys

# Their owner is app.corpus; app.evaluate_english still imports them from here.
from app.corpus import read_split, write_rows

__all__ = ["main", "read_split", "write_rows"]


def main(argv: list[str] | None = None) -> int:
    from training.evaluate import main as evaluate

    argv = list(sys.argv[1:] if argv is None else argv)
    plain = "--no-plain" not in argv
    argv = [a for a in argv if a != "--no-plain"]
    if argv and not argv[0].startswith("-"):
        argv = ["--data", *argv]
    return evaluate([*argv, "--plain"] if plain else argv)


if __name__ == "__main__":
    sys.exit(main())
