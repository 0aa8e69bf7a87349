"""CMakePresets.json, generated from the platform modules so an IDE user gets the driver's flags.

`python -m opend_build presets` prints it; a test checks the committed file is what this makes.
"""

from __future__ import annotations

import json
from typing import Any

from .options import parse
from .platforms import toolchain_for
from .sdk import BRANDS

# (preset name, driver arguments)
CONFIGURATIONS: list[tuple[str, list[str]]] = [
    ("linux-gcc", ["--os", "linux"]),
    ("linux-clang-libcxx", ["--os", "linux", "--compiler", "clang"]),
    ("macos-universal2", ["--os", "macos", "--arch", "universal2"]),
    ("macos-arm64", ["--os", "macos", "--arch", "arm64"]),
    ("windows-x64-MD", ["--os", "windows", "--arch", "x64", "--runtime", "MD"]),
    ("windows-x64-MT", ["--os", "windows", "--arch", "x64", "--runtime", "MT"]),
    ("windows-x86-v120_xp-MT", ["--os", "windows", "--arch", "x86", "--runtime", "MT", "--toolset", "v120_xp"]),
]
HOSTS = {"linux": "Linux", "macos": "Darwin", "windows": "Windows"}


def _preset(name: str, argv: list[str], brand: str) -> dict[str, Any]:
    opts = parse([*argv, "--brand", brand])
    tc = toolchain_for(opts)
    cache: dict[str, str] = {"CMAKE_BUILD_TYPE": "Release", "OPEND_BRAND": brand, "OPEND_BIN_DIR": tc.bin_dir, "OPEND_CHANNEL_DIR": tc.channel_dir}
    preset: dict[str, Any] = {"name": f"{name}-{brand}", "displayName": f"{brand}: {name}", "inherits": "base", "generator": tc.generator}
    if tc.toolset:
        preset["toolset"] = {"value": tc.toolset, "strategy": "set"}
    if tc.platform:
        preset["architecture"] = {"value": tc.platform, "strategy": "set"}
    cache.update(tc.cache_variables)
    if tc.compiler == "msvc":
        cache.pop("CMAKE_BUILD_TYPE")  # multi-config generator: pick the configuration when building
    preset["cacheVariables"] = cache
    preset["condition"] = {"type": "equals", "lhs": "${hostSystemName}", "rhs": HOSTS[tc.os]}
    return preset


def presets() -> dict[str, Any]:
    configure = [{
        "name": "base",
        "hidden": True,
        "binaryDir": "${sourceDir}/build/${presetName}",
        "installDir": "${sourceDir}/out/${presetName}",
    }]
    configure += [_preset(name, argv, brand) for name, argv in CONFIGURATIONS for brand in BRANDS]
    build = [{"name": p["name"], "configurePreset": p["name"], "configuration": "Release"} for p in configure[1:]]
    return {"version": 6, "cmakeMinimumRequired": {"major": 3, "minor": 25, "patch": 0}, "configurePresets": configure, "buildPresets": build}


def render() -> str:
    return json.dumps(presets(), indent=2) + "\n"
