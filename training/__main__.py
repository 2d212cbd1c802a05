"""`python -m training --data FEATURES --base MODEL --out DIR`: see training/train.py."""

import sys

from training.train import main

sys.exit(main())
