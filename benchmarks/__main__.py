"""`python -m benchmarks` (make bench): runs the core benchmark; see benchmarks/bench_core.py."""
import sys

from .bench_core import main

sys.exit(main(sys.argv[1:]))
