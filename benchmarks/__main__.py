"""`python -m benchmarks` (make bench): the issue-6 table; see benchmarks/table.py."""
import sys

from .table import main

sys.exit(main(sys.argv[1:]))
