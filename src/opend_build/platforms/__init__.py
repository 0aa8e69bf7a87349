"""One module per target OS, each turning Options into a Toolchain: compiler, CMake arguments,
environment and the SDK's Bin/ folder name. Probing the host happens here; planning stays pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import UsageError
from ..options import Options


@dataclass(frozen=True)
class Toolchain:
    os: str
    compiler: str  # "gcc", "clang", "appleclang", "msvc"
    cxx: str  # compiler executable (absolute when probed on this host)
    version: str
    bin_dir: str  # where the SDK keeps this platform's libraries, e.g. "Bin/Linux"
    generator: str = "Ninja"
    cmake_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def channel_dir(self) -> str:
        """Where the vendor puts the channel library: beside the static libraries, except on
        Windows, where Bin/Windows[-x64]/<Config>/ holds the .dll and its .lib and <MD|MT>/ below
        it the static libraries."""
        return str(PurePosixPath(self.bin_dir).parent) if self.os == "windows" else self.bin_dir

    def key(self) -> str:
        """What makes two builds' object files incompatible: everything but notes."""
        facts = [self.os, self.compiler, self.cxx, self.version, self.generator, list(self.cmake_args), list(self.env)]
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:12]


def toolchain_for(options: Options, probe: bool) -> Toolchain:
    """The toolchain for options.os; `probe` looks at this host (False for a foreign --dry-run)."""
    from . import linux, macos, windows

    modules = {"linux": linux, "macos": macos, "windows": windows}
    if options.os not in modules:
        raise UsageError(f"--os {options.os} is not supported", "use linux, macos or windows")
    return modules[options.os].toolchain(options, probe)
