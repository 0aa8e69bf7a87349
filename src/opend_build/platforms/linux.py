"""Linux: g++ with -std=gnu++11 (the SDK's own choice), or clang with libc++ (--compiler clang)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from ..errors import ToolchainError
from . import Toolchain

if TYPE_CHECKING:
    from ..settings import Options

# The options Linux takes and their choices.
OPTIONS: dict[str, tuple[str, ...] | None] = {"--compiler": ("gcc", "clang"), "--cxx11-abi": ("0", "1")}

INSTALL_HINT = {
    "gcc": "install a C++ compiler, e.g. 'apt-get install g++', or set CXX",
    "clang": "install clang and libc++, e.g. 'apt-get install clang libc++-dev libc++abi-dev'",
}


def _find(compiler: str) -> str:
    candidates = ["clang++"] if compiler == "clang" else ["g++", "c++"]
    env_cxx = os.environ.get("CXX")
    if env_cxx and compiler != "clang":
        candidates.insert(0, env_cxx)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise ToolchainError(f"no C++ compiler found (looked for {', '.join(candidates)})", INSTALL_HINT[compiler])


def _version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ToolchainError(f"cannot run the C++ compiler {cxx}: {exc.strerror}", INSTALL_HINT["gcc"]) from exc
    return out.stdout.strip() or "unknown"


def _check_libcxx(cxx: str) -> None:
    """clang without libc++ fails deep inside CMake's compiler check; say what to install instead."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text("#include <string>\nint main() { return std::string(\"ok\").size() == 2 ? 0 : 1; }\n")
        r = subprocess.run([cxx, "-stdlib=libc++", str(src), "-o", str(Path(tmp) / "probe")], capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolchainError(f"{cxx} cannot build with libc++ (-stdlib=libc++)", INSTALL_HINT["clang"])


def toolchain(options: Options, probe: bool) -> Toolchain:
    compiler = options.compiler or "gcc"
    cxx = _find(compiler) if probe else ("clang++" if compiler == "clang" else "g++")
    if probe and compiler == "clang":
        _check_libcxx(cxx)
    version = _version(cxx) if probe else "(probed on the build host)"
    notes = (f"_GLIBCXX_USE_CXX11_ABI={options.cxx11_abi}",) if options.cxx11_abi is not None else ()
    return Toolchain(os="linux", compiler=compiler, cxx=cxx, version=version, bin_dir="Bin/Linux",
                     stdlib="libc++" if compiler == "clang" else "", cxx11_abi=options.cxx11_abi, notes=notes)
