"""``python -m benchmarks run ...``: see :mod:`benchmarks.harness`."""

import sys

from .harness import main

sys.exit(main())
