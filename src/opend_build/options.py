"""Command line -> Options: read and validated once, then only read."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import platforms
from .errors import UsageError
from .sdk import BRANDS
from .settings import BUILD_TYPES, OSES, Options, host_os

__all__ = ["BUILD_TYPES", "OSES", "Options", "default_jobs", "host_os", "parse", "parser"]


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
    p.add_argument("--out", type=Path, help="output folder (default: out/<Lib>4CPP-<os>-<build type>; a cross build's: out/<Lib>4CPP-<os>-<arch>-<build type>)")
    # The per-OS options: which OS takes each, and its choices, come from the platform modules.
    helps = {
        "--compiler": "Linux: gcc (default) or clang with libc++; Windows: msvc (default, on Windows) or mingw (MinGW-w64 on a Linux machine, "
                      "g++-mingw-w64-x86-64-posix)",
        "--cxx11-abi": "g++: _GLIBCXX_USE_CXX11_ABI (default: the compiler's)",
        "--arch": "Linux: default this machine's, another cross-compiles (aarch64: g++-aarch64-linux-gnu); macOS: default universal2; Windows: default x64",
        "--deployment-target": "default 10.15",
        "--toolset": "platform toolset (default: the newest installed)",
        "--runtime": "C runtime: MT (static) or MD (DLL, default)",
        "--toolchain-file": "your CMake toolchain file for the target: a cross build (protoc is built for this machine too)",
    }
    for flag, help_text in helps.items():
        per_os = {os_name: table[flag] for os_name, table in platforms.option_choices().items() if flag in table}
        choices = list(dict.fromkeys(c for values in per_os.values() for c in (values or ())))
        where = "; ".join(f"{os_name}: {'|'.join(values) if values else 'any'}" for os_name, values in per_os.items())
        p.add_argument(flag, choices=choices or None, help=f"{where}. {help_text}")
    p.add_argument("--channel", choices=["vendor", "open"],
                   help="the channel library that talks to OpenD: vendor (the SDK's own binary or source) or open (opend-build's, from "
                        "channel/, needs OpenSSL's libcrypto); default: the SDK's where it brings one for this OS, else the open one")
    p.add_argument("--opend", metavar="HOST:PORT", help="verify: connect to this OpenD through the output's channel instead")
    p.add_argument("--rsa-key", type=Path, metavar="FILE", help="verify --opend: PEM file of the RSA key OpenD is configured with (encrypts)")
    p.add_argument("--reproduce", action="store_true", help="verify: rebuild the output from the inputs its manifest records, in a fresh cache, and compare every file")
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
    # Validated once, against what the target OS's module takes.
    takes = platforms.option_choices().get(target, {})
    for flag in ("--compiler", "--cxx11-abi", "--arch", "--deployment-target", "--toolset", "--runtime", "--toolchain-file"):
        value = getattr(a, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if flag not in takes:
            oses = [o for o, t in platforms.option_choices().items() if flag in t]
            raise UsageError(f"{flag} does not apply to --os {target}", f"it is for --os {' or '.join(oses)}")
        if takes[flag] is not None and value not in takes[flag]:  # type: ignore[operator]
            raise UsageError(f"{flag} {value} does not apply to --os {target}", f"use {' or '.join(takes[flag])}")  # type: ignore[arg-type]
    if (a.opend or a.rsa_key or a.reproduce) and a.command != "verify":
        raise UsageError("--opend, --rsa-key and --reproduce are for 'verify'", "python build.py verify [--opend HOST:PORT [--rsa-key FILE] | --reproduce]")
    toolchain_file = Path(a.toolchain_file).expanduser().absolute() if a.toolchain_file else None
    if toolchain_file is not None and not toolchain_file.is_file():
        raise UsageError(f"--toolchain-file {a.toolchain_file}: no such file", "pass the path of a CMake toolchain file")
    if toolchain_file is not None and a.compiler:
        raise UsageError("--compiler does not apply with --toolchain-file", "the toolchain file names the compiler")
    if a.compiler == "mingw" and (a.arch == "x86" or a.toolset or a.runtime):
        raise UsageError("--compiler mingw builds for Windows x64 only, without MSVC's --toolset and --runtime",
                         "drop --arch x86, --toolset and --runtime (or build with MSVC on Windows)")
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
        cxx11_abi=int(a.cxx11_abi) if a.cxx11_abi is not None else None,
        arch=a.arch,
        deployment_target=a.deployment_target,
        toolset=a.toolset,
        runtime=a.runtime,
        cache=a.cache,
        dry_run=a.dry_run,
        verbose=a.verbose,
        summary_json=a.summary_json.absolute() if a.summary_json else None,
        lock_timeout=a.lock_timeout,
        channel=a.channel,
        opend=a.opend,
        rsa_key=a.rsa_key.expanduser().absolute() if a.rsa_key else None,
        reproduce=a.reproduce,
        toolchain_file=toolchain_file,
    )
