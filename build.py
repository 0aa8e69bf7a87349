#!/usr/bin/env python3
"""Build the OpenD C++ API SDK: `python build.py --os linux [--sdk PATH]`. See README.md."""

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def load(root: Path = ROOT):  # type: ignore[no-untyped-def]
    """Import opend_build from this checkout's src/. An editable install of another checkout puts
    an import hook in front of sys.path (scikit-build-core's), so the package is loaded by path;
    its submodules then follow the package's own __path__."""
    src = str(root / "src")
    loaded = sys.modules.get("opend_build")
    if loaded is not None and Path(loaded.__file__).resolve().parent.parent == Path(src):
        return loaded
    for name in [n for n in sys.modules if n == "opend_build" or n.startswith("opend_build.")]:
        del sys.modules[name]
    spec = importlib.machinery.PathFinder.find_spec("opend_build", [src])
    if spec is None or spec.loader is None:
        raise ImportError(f"no opend_build package in {src}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["opend_build"] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    load()
    from opend_build.cli import main

    sys.exit(main())
