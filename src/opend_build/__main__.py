"""`python -m opend_build ...` is `python build.py ...`."""

import sys

from .cli import main

sys.exit(main())
