"""`opend-sdk`: where a wheel-installed SDK lives, for CMake and scripts (like `pybind11 --cmakedir`).

    cmake -S . -B build -DFTAPI_DIR="$(opend-sdk --cmakedir)"
    cmake -S . -B build -DCMAKE_PREFIX_PATH="$(opend-sdk --prefix)"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PREFIX = Path(__file__).resolve().parent / "cpp"  # wheel.install-dir in pyproject.toml


def package_dir(prefix: Path = PREFIX) -> Path:
    """lib/cmake/<Lib>: the one CMake package the wheel carries (FTAPI or MMAPI)."""
    found = sorted(p.parent for p in (prefix / "lib" / "cmake").glob("*/*Config.cmake"))
    if not found:
        raise FileNotFoundError(f"no SDK is installed at {prefix}: this opend-build was installed without its C++ build (an editable or driver-only install)")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="opend-sdk", description="Print where the SDK built into this wheel is installed.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--cmakedir", action="store_true", help="the folder of <Lib>Config.cmake (set <Lib>_DIR to it)")
    g.add_argument("--prefix", action="store_true", help="the install prefix (add it to CMAKE_PREFIX_PATH)")
    g.add_argument("--includedir", action="store_true", help="the SDK's Include folder")
    g.add_argument("--lib", action="store_true", help="the package name for find_package: FTAPI or MMAPI")
    a = p.parse_args(argv)
    try:
        cmake_dir = package_dir()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("  what to do: build the wheel with 'pip wheel .' (see README, 'pip'), or use build.py's output", file=sys.stderr)
        return 3
    print({"cmakedir": cmake_dir, "prefix": PREFIX, "includedir": PREFIX / "Include", "lib": cmake_dir.name}[
        next(k for k in ("cmakedir", "prefix", "includedir", "lib") if getattr(a, k))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
