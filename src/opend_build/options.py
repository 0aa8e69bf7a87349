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
    command: str  # "build"
    os: str
    sdk: Path | None
    brand: str | None  # None: detect from the SDK (futu for the default)
    protobuf: Path | None  # None: the SDK's Src/protobuf-*, or the pinned PyPI copy without --sdk
    build_type: str
    jobs: int
    out: Path | None
    compiler: str | None  # "gcc" | "clang" | None (the OS default)
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
    p.add_argument("command", nargs="?", default="build", choices=["build"], help="what to do (default: build)")
    p.add_argument("--os", default=None, choices=OSES, help="target OS (default: this machine's)")
    p.add_argument("--sdk", type=Path, help="SDK folder or archive (.zip/.7z/.tar.gz); default: the open parts from PyPI")
    p.add_argument("--brand", choices=sorted(BRANDS), help="futu (FTAPI) or moomoo (MMAPI); default: detected")
    p.add_argument("--protobuf", type=Path, help="protobuf source (archive or folder) instead of the SDK's Src/protobuf-all-*")
    p.add_argument("--build-type", default="Release", choices=BUILD_TYPES)
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: cores, capped by memory)")
    p.add_argument("--out", type=Path, help="output folder (default: out/<Lib>4CPP-<os>-<build type>)")
    p.add_argument("--compiler", choices=["gcc", "clang"], help="Linux: gcc (default) or clang with libc++")
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
    if a.compiler == "clang" and target == "windows":
        raise UsageError("--compiler clang is for Linux (macOS always uses clang; Windows uses MSVC)")
    return Options(
        command=a.command,
        os=target,
        sdk=a.sdk.expanduser().absolute() if a.sdk else None,
        brand=a.brand,
        protobuf=a.protobuf.expanduser().absolute() if a.protobuf else None,
        build_type=a.build_type,
        jobs=a.jobs or default_jobs(),
        out=a.out.expanduser().absolute() if a.out else None,
        compiler=a.compiler,
        dry_run=a.dry_run,
        verbose=a.verbose,
        summary_json=a.summary_json.absolute() if a.summary_json else None,
        lock_timeout=a.lock_timeout,
    )
