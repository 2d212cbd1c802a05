"""`python -m app` starts the web UI; `python -m app transcribe INPUT... -o DIR` is the batch CLI.

Also the Hugging Face Space's app_file: run as a plain script it puts the repo root on sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python app/__main__.py` (how a Space starts its app_file)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
