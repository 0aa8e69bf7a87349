"""Windows: MSVC through a Visual Studio generator with an explicit platform toolset, or MinGW-w64
from a Linux machine (--compiler mingw).

The "Visual Studio 12 2013" generator left CMake in 3.31, so every toolset, v120_xp included, is
driven by the newest Visual Studio generator with -T <toolset>: MSBuild then uses the older
toolset when that Visual Studio is installed beside the new one. vswhere finds the installs.

MinGW-w64 (Debian's x86_64-w64-mingw32-g++-posix, package g++-mingw-w64-x86-64-posix) is a cross
build like Linux --arch aarch64: the Toolchain carries the build machine's own as `host`, whose
protoc generates the code. Its libraries keep MinGW's names (lib*.a) in Bin/Windows-x64/<Config>/,
beside the channel's .dll and import library: MinGW has no MD/MT choice to keep apart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ToolchainError
from . import MSVC_RUNTIMES, Toolchain

if TYPE_CHECKING:
    from ..host import Probe
    from ..settings import Options

# The one toolset table: toolset -> the Visual Studio that ships it, its major version, and the
# MSVC versions (Conan's compiler.version: _MSC_VER without its last digit) whose compiler it is.
TOOLSET_TABLE: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "v120_xp": ("Visual Studio 2013", 12, ()),  # v120's compiler, XP's libraries: asked for by name only
    "v120": ("Visual Studio 2013", 12, ("180",)),
    "v140": ("Visual Studio 2015", 14, ("190",)),
    "v141": ("Visual Studio 2017", 15, ("191",)),
    "v142": ("Visual Studio 2019", 16, ("192",)),
    "v143": ("Visual Studio 2022", 17, ("193", "194", "195")),
}
TOOLSETS = tuple(TOOLSET_TABLE)
SHIPPED_BY = {t: (vs, major) for t, (vs, major, _) in TOOLSET_TABLE.items()}
BY_MSVC_VERSION = {v: t for t, (_, _, versions) in TOOLSET_TABLE.items() for v in versions}
# The Visual Studio generators CMake still has (2017 and newer), by major version, and each one's own toolset.
GENERATORS = {major: f"Visual Studio {major} {vs.split()[-1]}" for vs, major, _ in TOOLSET_TABLE.values() if major >= 15}
NEWEST_TOOLSET = {major: t for t, (_, major, versions) in TOOLSET_TABLE.items() if versions and major in GENERATORS}
# The options Windows takes and their choices.
OPTIONS: dict[str, tuple[str, ...] | None] = {"--compiler": ("msvc", "mingw"), "--arch": ("x86", "x64"), "--toolset": TOOLSETS,
                                              "--runtime": tuple(MSVC_RUNTIMES)}
# MinGW-w64 on a Linux machine: the compilers (the posix threads variant: std::thread works), and
# the Debian packages that bring them and Wine, which runs what they make.
MINGW = "x86_64-w64-mingw32"
MINGW_CXX, MINGW_C = f"{MINGW}-g++-posix", f"{MINGW}-gcc-posix"
MINGW_PACKAGE, WINE_PACKAGE = "g++-mingw-w64-x86-64-posix", "wine64"
WINE_LOADERS = ("wine64", "/usr/lib/wine/wine64", "wine")  # Debian's wine64 package puts its loader in /usr/lib/wine


def wine(probe: Probe) -> str | None:
    """Wine's 64-bit loader on this machine, which runs the .exe files a MinGW build makes."""
    return next((found for name in WINE_LOADERS if (found := probe.which(name))), None)


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
        toolset = NEWEST_TOOLSET[newest]
    elif SHIPPED_BY[toolset][1] not in majors and SHIPPED_BY[toolset][1] < 15:
        vs = SHIPPED_BY[toolset][0]
        raise ToolchainError(f"toolset {toolset} needs {vs} installed beside a newer Visual Studio",
                             f"install {vs} (for v120_xp with its 'Windows XP support for C++' component), then run again")
    return toolset, GENERATORS[newest]


def toolchain(options: Options, probe: Probe) -> Toolchain:
    if options.compiler == "mingw":
        return _mingw(options, probe)
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


def _mingw(options: Options, probe: Probe) -> Toolchain:
    """Windows x64 from this Linux machine with MinGW-w64; the build machine's own toolchain as `host`."""
    from . import linux

    host = linux.toolchain(replace(options, os="linux", compiler=None, arch=None), probe)
    if probe.live:
        cxx, c = probe.which(MINGW_CXX), probe.which(MINGW_C)
        if cxx is None:
            raise ToolchainError(f"--compiler mingw: no MinGW-w64 compiler {MINGW_CXX} on PATH", f"install MinGW-w64: apt-get install {MINGW_PACKAGE}")
        version = linux._version(cxx, probe)
    else:
        cxx, c, version = MINGW_CXX, MINGW_C, "(probed on the build host)"
    notes = [f"cross build for Windows x64 on this {host.arch} Linux machine: protoc for {host.arch} generates the code; "
             f"the .exe files run here under Wine ({WINE_PACKAGE})"]
    if probe.live and wine(probe) is None:
        notes.append(f"Wine is not installed: the build needs none, but nothing it makes can be tried here (apt-get install {WINE_PACKAGE})")
    return Toolchain(os="windows", compiler="mingw", cxx=cxx, version=version, bin_dir=f"Bin/Windows-x64/{options.build_type}",
                     arch="x86_64", c=c or "", host=host, notes=tuple(notes))
