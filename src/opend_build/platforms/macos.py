"""macOS: Apple clang, -std=gnu++11 with libc++, a deployment target, one arch or universal2."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ToolchainError
from . import Toolchain

if TYPE_CHECKING:
    from ..host import Probe
    from ..settings import Options

ARCHS = {"arm64": "arm64", "x86_64": "x86_64", "universal2": "arm64;x86_64"}
DEFAULT_DEPLOYMENT_TARGET = "10.15"  # Xcode 11's floor, the vendor's own macOS toolchain
# The options macOS takes and their choices (None: any value).
OPTIONS: dict[str, tuple[str, ...] | None] = {"--arch": tuple(ARCHS), "--deployment-target": None}


def _probe(probe: Probe) -> tuple[str, str]:
    cxx = probe.which("clang++")
    if cxx is None:
        raise ToolchainError("no clang++ found", "install the Xcode command line tools: xcode-select --install")
    return cxx, probe.version_line(cxx) or "unknown"


def toolchain(options: Options, probe: Probe) -> Toolchain:
    cxx, version = _probe(probe) if probe.live else ("clang++", "(probed on the build host)")
    arch = options.arch or "universal2"
    target = options.deployment_target or DEFAULT_DEPLOYMENT_TARGET
    return Toolchain(
        os="macos",
        compiler="appleclang",
        cxx=cxx,
        version=version,
        bin_dir=f"Bin/Mac/{options.build_type}",  # as the SDK ships it: Bin/Mac/Debug, Bin/Mac/Release
        stdlib="libc++",
        osx_architectures=ARCHS[arch],
        deployment_target=target,
        # Every object carries the deployment target as its minimum macOS: the oldest system that
        # loads the output (the manifest records it as runs_on).
        notes=(f"arch {arch} ({ARCHS[arch]}), deployment target {target}: runs on macOS {target} or newer (CMAKE_OSX_DEPLOYMENT_TARGET)",),
    )
