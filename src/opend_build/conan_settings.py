"""Conan settings -> the driver's Options, so `conan create` and `build.py` choose one toolchain.

Pure: conanfile.py hands in its settings as plain strings and gets Options back, checked by the
same `options.build` as the command line's; the platform modules then make the Toolchain (its
CMake cache variables, the Bin folder) exactly as they do for the driver.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import UsageError
from .options import Options, build
from .platforms import windows

OS = {"Linux": "linux", "Macos": "macos", "Windows": "windows"}
MACOS_ARCH = {"armv8": "arm64", "x86_64": "x86_64", "armv8|x86_64": "universal2", "x86_64|armv8": "universal2"}
WINDOWS_ARCH = {"x86": "x86", "x86_64": "x64"}


LINUX_ARCH = {"x86_64": "x86_64", "armv8": "aarch64"}


def options_for(settings: Mapping[str, str | None], brand: str) -> Options:
    """The Options for Conan settings (os, arch, compiler, compiler.*, build_type), built and
    checked by `options.build` as the command line's are: one validation for every route."""
    os_name = settings.get("os") or ""
    if os_name not in OS:
        raise UsageError(f"settings.os={os_name} is not supported", "use Linux, Macos or Windows")
    target = OS[os_name]
    v: dict[str, object] = {"os": target, "build_type": settings.get("build_type") or "Release", "brand": brand}
    compiler = settings.get("compiler") or ""
    arch = settings.get("arch") or ""
    libcxx = settings.get("compiler.libcxx")
    if target == "linux":
        if compiler == "clang":
            if libcxx not in (None, "libc++"):
                raise UsageError(f"clang with compiler.libcxx={libcxx} is not a toolchain of build.py", "use compiler.libcxx=libc++ with clang, or gcc for libstdc++")
            v["compiler"] = "clang"
        elif compiler == "gcc":
            if libcxx in ("libstdc++", "libstdc++11"):
                v["cxx11_abi"] = "1" if libcxx == "libstdc++11" else "0"
        else:
            raise UsageError(f"compiler={compiler} on Linux is not supported", "use gcc or clang")
        if arch not in LINUX_ARCH:
            raise UsageError(f"arch={arch} on Linux is not supported", "use x86_64 or armv8")
        v["arch"] = LINUX_ARCH[arch]
    elif target == "macos":
        if arch not in MACOS_ARCH:
            raise UsageError(f"arch={arch} on macOS is not supported", "use armv8, x86_64 or armv8|x86_64")
        v["arch"] = MACOS_ARCH[arch]
        if settings.get("os.version"):
            v["deployment_target"] = str(settings["os.version"])
    else:
        if compiler != "msvc":
            raise UsageError(f"compiler={compiler} on Windows is not supported", "use msvc")
        if arch not in WINDOWS_ARCH:
            raise UsageError(f"arch={arch} on Windows is not supported", "use x86 or x86_64")
        runtime = settings.get("compiler.runtime") or "dynamic"
        v["arch"], v["runtime"] = WINDOWS_ARCH[arch], "MT" if runtime == "static" else "MD"
        # compiler.version -> its platform toolset (the platform module's table); compiler.toolset (e.g. v120_xp) wins when given
        toolset = settings.get("compiler.toolset") or windows.BY_MSVC_VERSION.get(settings.get("compiler.version") or "")
        if toolset:
            v["toolset"] = toolset
    return build("build", v)
