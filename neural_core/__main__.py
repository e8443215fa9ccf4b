"""`python -m neural_core ...`: see neural_core.cli."""
import sys

from .cli import main

sys.exit(main())
