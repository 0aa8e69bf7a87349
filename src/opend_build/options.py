"""Command line -> Options: read and validated once, then only read."""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .sdk import BRANDS

OSES = ("linux", "macos", "windows")
BUILD_TYPES = ("Release", "Debug")


def host_os() -> str:
    return {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(platform.system(), platform.system().lower())


@dataclass(frozen=True)
class Options:
    command: str  # "build" | "doctor" | "inputs"
    os: str
    sdk: Path | None
    brand: str | None  # None: detect from the SDK (futu for the default)
    protobuf: str | None  # None: the SDK's Src/protobuf-*, else the pinned default; X.Y.Z, "system", or a path (see protobuf.py)
    build_type: str
    jobs: int
    out: Path | None
    compiler: str | None  # "gcc" | "clang" | None (the OS default)
    cxx11_abi: int | None  # Linux g++: _GLIBCXX_USE_CXX11_ABI; None: the compiler's default
    arch: str | None  # macOS: arm64|x86_64|universal2; Windows: x86|x64
    deployment_target: str | None  # macOS
    toolset: str | None  # Windows: v120_xp ... v143
    runtime: str | None  # Windows: MT | MD
    cache: str  # compiler cache: "none" | "sccache"
    dry_run: bool
    verbose: bool
    summary_json: Path | None
    lock_timeout: float


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, "run 'python build.py --help' for the options")


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="build.py",
        description="Build the OpenD C++ API SDK (protobuf 3.5.1, protocol classes, lib<Brand>) in one command.",
    )
    p.add_argument("command", nargs="?", default="build", choices=["build", "doctor", "inputs", "presets", "verify"],
                   help="build (default); doctor: can the SDK's prebuilt libraries be linked here?; inputs: fetch and unpack the inputs, print them as CMake cache entries; presets: print CMakePresets.json; verify: check the built classes against Python's, message by message")
    p.add_argument("--os", default=None, choices=OSES, help="target OS (default: this machine's)")
    p.add_argument("--sdk", type=Path, help="SDK folder or archive (.zip/.7z/.tar.gz); default: the open parts from PyPI")
    p.add_argument("--brand", choices=sorted(BRANDS), help="futu (FTAPI) or moomoo (MMAPI); default: detected")
    p.add_argument("--protobuf", metavar="VERSION|system|PATH",
                   help="the protobuf to build against: a pinned version built from source (3.5.1, the default; 3.21.12; 29.0 with abseil), "
                        "'system' (the installed one, found like CMake's find_package), an installed prefix (include/, lib/, bin/protoc), "
                        "or a protobuf source folder or archive (default: the SDK's Src/protobuf-*, or 3.5.1)")
    p.add_argument("--build-type", default="Release", choices=BUILD_TYPES)
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: cores, capped by memory)")
    p.add_argument("--out", type=Path, help="output folder (default: out/<Lib>4CPP-<os>-<build type>)")
    p.add_argument("--compiler", choices=["gcc", "clang"], help="Linux: gcc (default) or clang with libc++")
    p.add_argument("--cxx11-abi", type=int, choices=[0, 1], help="Linux g++: _GLIBCXX_USE_CXX11_ABI (default: the compiler's)")
    p.add_argument("--arch", choices=["arm64", "x86_64", "universal2", "x86", "x64"], help="macOS: arm64|x86_64|universal2 (default universal2); Windows: x86|x64 (default x64)")
    p.add_argument("--deployment-target", help="macOS deployment target (default 10.15)")
    p.add_argument("--toolset", choices=["v120_xp", "v120", "v140", "v141", "v142", "v143"], help="Windows platform toolset (default: the newest installed)")
    p.add_argument("--runtime", choices=["MT", "MD"], help="Windows C runtime: MT (static) or MD (DLL, default)")
    p.add_argument("--cache", choices=["none", "sccache"], default="none",
                   help="compiler cache: sccache (local disk, or Redis/S3/GCS/GitHub Actions cache set by sccache's own SCCACHE_* variables)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    p.add_argument("--summary-json", type=Path, help="also write the end-of-run summary as JSON to this file")
    p.add_argument("--lock-timeout", type=float, default=1800.0, help="seconds to wait for another run using the same folders (0: fail at once)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every command's output and tracebacks")
    return p


def default_jobs() -> int:
    cores = os.cpu_count() or 1
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        mem_gib = 8.0
    # A generated .pb.cc needs up to ~0.6 GiB at -O2; leave room for the rest of the machine.
    return max(1, min(cores, int(mem_gib / 1.0)))


def parse(argv: list[str]) -> Options:
    a = parser().parse_args(argv)
    if a.jobs is not None and a.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {a.jobs}")
    target = a.os or host_os()
    only = {
        "--compiler": (a.compiler, ("linux",)),
        "--cxx11-abi": (a.cxx11_abi, ("linux",)),
        "--deployment-target": (a.deployment_target, ("macos",)),
        "--toolset": (a.toolset, ("windows",)),
        "--runtime": (a.runtime, ("windows",)),
        "--arch": (a.arch, ("macos", "windows")),
    }
    for flag, (value, oses) in only.items():
        if value is not None and target not in oses:
            raise UsageError(f"{flag} does not apply to --os {target}", f"it is for --os {' or '.join(oses)}")
    if a.arch in ("x86", "x64") and target != "windows" or a.arch in ("arm64", "x86_64", "universal2") and target != "macos":
        raise UsageError(f"--arch {a.arch} does not apply to --os {target}")
    if a.cxx11_abi is not None and a.compiler == "clang":
        raise UsageError("--cxx11-abi is for g++ (libstdc++); clang here uses libc++")
    return Options(
        command=a.command,
        os=target,
        sdk=a.sdk.expanduser().absolute() if a.sdk else None,
        brand=a.brand,
        protobuf=a.protobuf or None,
        build_type=a.build_type,
        jobs=a.jobs or default_jobs(),
        out=a.out.expanduser().absolute() if a.out else None,
        compiler=a.compiler,
        cxx11_abi=a.cxx11_abi,
        arch=a.arch,
        deployment_target=a.deployment_target,
        toolset=a.toolset,
        runtime=a.runtime,
        cache=a.cache,
        dry_run=a.dry_run,
        verbose=a.verbose,
        summary_json=a.summary_json.absolute() if a.summary_json else None,
        lock_timeout=a.lock_timeout,
    )
