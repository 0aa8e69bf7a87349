"""Conan settings -> the driver's options, so `conan create` and `build.py` choose one toolchain.

Pure: conanfile.py hands in its settings as plain strings and gets build.py arguments back; the
platform modules then decide the SDK's Bin folder exactly as they do for the driver.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import UsageError

OS = {"Linux": "linux", "Macos": "macos", "Windows": "windows"}
MACOS_ARCH = {"armv8": "arm64", "x86_64": "x86_64", "armv8|x86_64": "universal2", "x86_64|armv8": "universal2"}
WINDOWS_ARCH = {"x86": "x86", "x86_64": "x64"}
# msvc compiler.version -> platform toolset; compiler.toolset (e.g. v120_xp) wins when given.
MSVC_TOOLSET = {"180": "v120", "190": "v140", "191": "v141", "192": "v142", "193": "v143", "194": "v143", "195": "v143"}


def driver_args(settings: Mapping[str, str | None]) -> list[str]:
    """build.py arguments for Conan settings (os, arch, compiler, compiler.*, build_type)."""
    os_name = settings.get("os") or ""
    if os_name not in OS:
        raise UsageError(f"settings.os={os_name} is not supported", "use Linux, Macos or Windows")
    target = OS[os_name]
    args = ["--os", target, "--build-type", settings.get("build_type") or "Release"]
    compiler = settings.get("compiler") or ""
    arch = settings.get("arch") or ""
    libcxx = settings.get("compiler.libcxx")
    if target == "linux":
        if compiler == "clang":
            if libcxx not in (None, "libc++"):
                raise UsageError(f"clang with compiler.libcxx={libcxx} is not a toolchain of build.py", "use compiler.libcxx=libc++ with clang, or gcc for libstdc++")
            args += ["--compiler", "clang"]
        elif compiler == "gcc":
            if libcxx == "libstdc++":
                args += ["--cxx11-abi", "0"]
            elif libcxx == "libstdc++11":
                args += ["--cxx11-abi", "1"]
        else:
            raise UsageError(f"compiler={compiler} on Linux is not supported", "use gcc or clang")
        if arch not in ("x86_64", "armv8"):
            raise UsageError(f"arch={arch} on Linux is not supported", "build on an x86_64 or armv8 host")
    elif target == "macos":
        if arch not in MACOS_ARCH:
            raise UsageError(f"arch={arch} on macOS is not supported", "use armv8, x86_64 or armv8|x86_64")
        args += ["--arch", MACOS_ARCH[arch]]
        if settings.get("os.version"):
            args += ["--deployment-target", str(settings["os.version"])]
    else:
        if compiler != "msvc":
            raise UsageError(f"compiler={compiler} on Windows is not supported", "use msvc")
        if arch not in WINDOWS_ARCH:
            raise UsageError(f"arch={arch} on Windows is not supported", "use x86 or x86_64")
        runtime = settings.get("compiler.runtime") or "dynamic"
        args += ["--arch", WINDOWS_ARCH[arch], "--runtime", "MT" if runtime == "static" else "MD"]
        toolset = settings.get("compiler.toolset") or MSVC_TOOLSET.get(settings.get("compiler.version") or "")
        if toolset:
            args += ["--toolset", toolset]
    return args
