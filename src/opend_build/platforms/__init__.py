"""One module per target OS, each turning Options into a Toolchain, and each declaring the options
it takes (`OPTIONS`: flag -> choices, None for a free value), from which the command line is built.
They start no process and read no environment: what they ask of the host goes through the
`host.Probe` they are given (they may read a file's presence, and the processor's name).

A Toolchain holds named facts; everything else is derived from them: its CMake arguments, the
presets, the flags doctor compiles its probe with, and the key of its build folders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..host import Probe
    from ..settings import Options

# MSVC's C runtime, as CMake names it: /MT[d] (static) or /MD[d] (DLL)
MSVC_RUNTIMES = {"MT": "MultiThreaded$<$<CONFIG:Debug>:Debug>", "MD": "MultiThreaded$<$<CONFIG:Debug>:Debug>DLL"}


@dataclass(frozen=True)
class Toolchain:
    os: str
    compiler: str  # "gcc", "clang", "appleclang", "msvc", "mingw" (MinGW-w64 g++, Windows from Linux)
    cxx: str  # compiler executable (absolute when probed on this host)
    version: str
    bin_dir: str  # where the SDK keeps this platform's libraries, e.g. "Bin/Linux"
    generator: str = "Ninja"
    stdlib: str = ""  # "libc++" when the compiler is told -stdlib=libc++; "" for its default
    cxx11_abi: int | None = None  # libstdc++'s _GLIBCXX_USE_CXX11_ABI; None: the compiler's default
    osx_architectures: str = ""  # macOS: "arm64", "x86_64" or "arm64;x86_64"
    deployment_target: str = ""  # macOS
    toolset: str = ""  # Windows: the platform toolset (-T)
    platform: str = ""  # Windows: the Visual Studio platform (-A): Win32 or x64
    runtime: str = ""  # Windows: MT or MD
    arch: str = ""  # Linux: the target processor (x86_64, aarch64): the host's, or --arch's; MinGW: x86_64
    c: str = ""  # Linux cross builds: the C compiler beside `cxx` (CMake's checks and any C source)
    library_architecture: str = ""  # Linux cross builds: the Debian multiarch triplet whose libraries are the target's
    host: Toolchain | None = None  # cross builds: the build machine's own toolchain, which builds the protoc that runs here
    toolchain_file: str = ""  # Linux: the user's CMake toolchain file (it names compilers and target; the driver adds nothing)
    toolchain_digest: str = ""  # its content's sha256: an edit to it gets other build folders
    env: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def cross(self) -> bool:
        """The build's programs do not run on this machine: protoc is built twice (see plan.py)."""
        return self.host is not None

    @property
    def target(self) -> str:
        """The target as a cross build's plan names it: its processor, and its OS where that is not the build machine's."""
        return f"{self.os} {self.arch}" if self.host is not None and self.host.os != self.os else self.arch

    @property
    def cross_how(self) -> str:
        """How CMake is told the target of a cross build."""
        if self.toolchain_file:
            return f"CMAKE_TOOLCHAIN_FILE={self.toolchain_file}"
        if self.compiler == "mingw":
            return f"CMAKE_SYSTEM_NAME=Windows, CMAKE_SYSTEM_PROCESSOR={self.arch}, MinGW-w64 {self.cxx}, executables linked -static"
        return f"CMAKE_SYSTEM_PROCESSOR={self.arch}, libraries from /usr/lib/{self.library_architecture}"

    @property
    def cxx_flags(self) -> tuple[str, ...]:
        """What every compile of this toolchain adds (and doctor's probe compiles with)."""
        return (*(["-stdlib=libc++"] if self.stdlib == "libc++" else []),
                *([f"-D_GLIBCXX_USE_CXX11_ABI={self.cxx11_abi}"] if self.cxx11_abi is not None else []))

    @property
    def cache_variables(self) -> dict[str, str]:
        """The CMake cache variables this toolchain sets, in a stable order."""
        v: dict[str, str] = {}
        if self.toolchain_file:
            v["CMAKE_TOOLCHAIN_FILE"] = self.toolchain_file
            if self.cxx_flags:
                v["CMAKE_CXX_FLAGS"] = " ".join(self.cxx_flags)
            return v
        if self.cross:
            # Set before any compiler check: CMake then treats the build as a cross build (no
            # try_run, no host libraries) and finds packages in the target's multiarch folders.
            v["CMAKE_SYSTEM_NAME"] = "Windows" if self.os == "windows" else "Linux"
            v["CMAKE_SYSTEM_PROCESSOR"] = self.arch
        if self.compiler != "msvc":
            v["CMAKE_CXX_COMPILER"] = self.cxx
        if self.c:
            v["CMAKE_C_COMPILER"] = self.c
        if self.library_architecture:
            v["CMAKE_LIBRARY_ARCHITECTURE"] = self.library_architecture
        if self.stdlib == "libc++" and self.os == "linux":
            v["CMAKE_EXE_LINKER_FLAGS"] = "-stdlib=libc++"
        if self.compiler == "mingw":  # the shipped protoc.exe carries MinGW's runtime (libstdc++, libgcc, winpthread): no DLLs beside it
            v["CMAKE_EXE_LINKER_FLAGS"] = "-static"
        if self.cxx_flags:
            v["CMAKE_CXX_FLAGS"] = " ".join(self.cxx_flags)
        if self.osx_architectures:
            v["CMAKE_OSX_ARCHITECTURES"] = self.osx_architectures
        if self.deployment_target:
            v["CMAKE_OSX_DEPLOYMENT_TARGET"] = self.deployment_target
        if self.runtime:
            v["CMAKE_MSVC_RUNTIME_LIBRARY"] = MSVC_RUNTIMES[self.runtime]
        return v

    @property
    def cmake_args(self) -> tuple[str, ...]:
        return (*(["-T", self.toolset] if self.toolset else []), *(["-A", self.platform] if self.platform else []),
                *(f"-D{k}={v}" for k, v in self.cache_variables.items()))

    @property
    def channel_dir(self) -> str:
        """Where the vendor puts the channel library: beside the static libraries, except with
        MSVC, where Bin/Windows[-x64]/<Config>/ holds the .dll and its .lib and <MD|MT>/ below
        it the static libraries (MinGW's lib*.a sit beside the .dll: it has no MD/MT)."""
        return str(PurePosixPath(self.bin_dir).parent) if self.compiler == "msvc" else self.bin_dir

    def key(self) -> str:
        """What makes two builds' object files incompatible: everything but notes."""
        facts = [self.os, self.compiler, self.cxx, self.version, self.generator, list(self.cmake_args), list(self.env)]
        if self.cross:  # a native build's key stays as it always was, so its protobuf build is shared
            facts.append(["cross", self.arch, *([self.toolchain_digest] if self.toolchain_digest else [])])
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:12]


def modules() -> dict:  # type: ignore[type-arg]
    from . import linux, macos, windows

    return {"linux": linux, "macos": macos, "windows": windows}


def option_choices() -> dict[str, dict[str, tuple[str, ...] | None]]:
    """OS -> the options its module takes -> their choices (None: any value)."""
    return {name: module.OPTIONS for name, module in modules().items()}


def builds_on(options: Options, host_os: str) -> bool:
    """Whether a machine of `host_os` builds for options.os: its own OS, or Windows from Linux with MinGW-w64."""
    return options.os == host_os or (options.os == "windows" and options.compiler == "mingw" and host_os == "linux")


def toolchain_for(options: Options, probe: Probe | None = None) -> Toolchain:
    """The toolchain for options.os; `probe` looks at this host (none: nothing is looked at, as
    for another OS's --dry-run)."""
    from ..host import Probe

    probe = probe or Probe(None)
    found = modules()
    if options.os not in found:
        raise UsageError(f"--os {options.os} is not supported", "use linux, macos or windows")
    return found[options.os].toolchain(options, probe)
