import sys

from featurize.cli import main

if __name__ == "__main__":  # --num-proc workers are spawned: importing this must not start a run
    sys.exit(main())
