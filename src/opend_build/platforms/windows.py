"""Windows: MSVC through a Visual Studio generator with an explicit platform toolset.

The "Visual Studio 12 2013" generator left CMake in 3.31, so every toolset, v120_xp included, is
driven by the newest Visual Studio generator with -T <toolset>: MSBuild then uses the older
toolset when that Visual Studio is installed beside the new one. vswhere finds the installs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ToolchainError
from . import MSVC_RUNTIMES, Toolchain

if TYPE_CHECKING:
    from ..host import Probe
    from ..settings import Options

TOOLSETS = ("v120_xp", "v120", "v140", "v141", "v142", "v143")
# Toolset -> the Visual Studio that ships it (for messages) and its major version.
SHIPPED_BY = {"v120_xp": ("Visual Studio 2013", 12), "v120": ("Visual Studio 2013", 12), "v140": ("Visual Studio 2015", 14),
              "v141": ("Visual Studio 2017", 15), "v142": ("Visual Studio 2019", 16), "v143": ("Visual Studio 2022", 17)}
GENERATORS = {17: "Visual Studio 17 2022", 16: "Visual Studio 16 2019", 15: "Visual Studio 15 2017"}
# The options Windows takes and their choices.
OPTIONS: dict[str, tuple[str, ...] | None] = {"--arch": ("x86", "x64"), "--toolset": TOOLSETS, "--runtime": tuple(MSVC_RUNTIMES)}


def bin_dir(arch: str, build_type: str, runtime: str) -> str:
    return f"Bin/{'Windows-x64' if arch == 'x64' else 'Windows'}/{build_type}/{runtime}"


def choose(toolset: str | None, installs: list[dict[str, str]]) -> tuple[str, str]:
    """(toolset, generator) from what is installed; pure, for tests."""
    majors = sorted({int(str(i.get("installationVersion", "0")).split(".")[0]) for i in installs}, reverse=True)
    newest = next((m for m in majors if m in GENERATORS), None)
    if newest is None:
        raise ToolchainError("no Visual Studio 2017 or newer found (vswhere lists none)",
                             "install Visual Studio 2022 (or its Build Tools) with the 'Desktop development with C++' workload")
    if toolset is None:
        toolset = {17: "v143", 16: "v142", 15: "v141"}[newest]
    elif SHIPPED_BY[toolset][1] not in majors and SHIPPED_BY[toolset][1] < 15:
        vs = SHIPPED_BY[toolset][0]
        raise ToolchainError(f"toolset {toolset} needs {vs} installed beside a newer Visual Studio",
                             f"install {vs} (for v120_xp with its 'Windows XP support for C++' component), then run again")
    return toolset, GENERATORS[newest]


def toolchain(options: Options, probe: Probe) -> Toolchain:
    arch = options.arch or "x64"
    runtime = options.runtime or "MD"
    if probe.live:
        toolset, generator = choose(options.toolset, probe.vswhere())
        notes: tuple[str, ...] = ()
    else:
        toolset = options.toolset or "v143"
        generator = GENERATORS[17]
        notes = ("" if options.toolset else "toolset: the newest installed, found with vswhere at run time (v143 shown)",)
    return Toolchain(
        os="windows",
        compiler="msvc",
        cxx="cl.exe",
        version=toolset,
        bin_dir=bin_dir(arch, options.build_type, runtime),
        generator=generator,
        toolset=toolset,
        platform="Win32" if arch == "x86" else "x64",
        runtime=runtime,
        notes=tuple(n for n in notes if n) + (f"arch {arch}, runtime /{runtime}{'d' if options.build_type == 'Debug' else ''}",),
    )
