"""What the user asked for, as every layer reads it: the Options (parsed and validated once by
options.py, then only read), and the host's OS."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

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
    arch: str | None  # Linux: x86_64|aarch64 (another than the host's cross-compiles); macOS: arm64|x86_64|universal2; Windows: x86|x64
    deployment_target: str | None  # macOS
    toolset: str | None  # Windows: v120_xp ... v143
    runtime: str | None  # Windows: MT | MD
    cache: str  # compiler cache: "none" | "sccache"
    dry_run: bool
    verbose: bool
    summary_json: Path | None
    lock_timeout: float
    channel: str | None = None  # "vendor" | "open" | None: the SDK's own where it brings one for this target, else the open one
    opend: str | None = None  # verify: HOST:PORT of an OpenD to connect to
    rsa_key: Path | None = None  # verify --opend: the PEM file of the RSA key OpenD uses
    reproduce: bool = False  # verify: rebuild the output from its recorded inputs and compare every file
    security: str | None = None  # verify --opend: MARKET.CODE to subscribe to (None: HK.00700)
    no_subscribe: bool = False  # verify --opend: InitConnect and GetGlobalState only
    from_clone: bool = False  # verify --reproduce: rebuild from a copy of the checkout at another path
    toolchain_file: Path | None = None  # Linux: the user's CMake toolchain file (a cross build)
