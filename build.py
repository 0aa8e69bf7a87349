#!/usr/bin/env python3
"""Build the OpenD C++ API SDK: `python build.py --os linux [--sdk PATH]`. See README.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from opend_build.cli import main  # noqa: E402

sys.exit(main())
