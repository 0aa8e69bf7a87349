"""The packaging routes' own parts: Conan settings mapped onto the driver's options, and the
editable install that never builds C++. The routes themselves (conan create, upload to a real
conan_server and install elsewhere, pip wheel into a fresh venv) run as the README writes them, in
test_readme.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import OFFLINE, ROOT, conan_home, make_venv, ok, run, script

from opend_build import conan_settings
from opend_build.errors import UsageError


def test_conan_settings_map_onto_the_drivers_options() -> None:
    """Conan's settings become the driver's Options (checked by the same options.build), then the
    platform modules' Toolchain: no build.py argument strings in between."""
    from opend_build import options

    def same(settings: dict[str, str], *argv: str) -> None:
        assert conan_settings.options_for(settings, "futu") == options.parse([*argv, "--brand", "futu"], {}), argv

    base = {"os": "Linux", "arch": "x86_64", "compiler": "gcc", "build_type": "Release", "compiler.libcxx": "libstdc++11"}
    same(base, "--os", "linux", "--arch", "x86_64", "--cxx11-abi", "1")
    same({**base, "compiler.libcxx": "libstdc++"}, "--os", "linux", "--arch", "x86_64", "--cxx11-abi", "0")
    same({**base, "compiler": "clang", "compiler.libcxx": "libc++"}, "--os", "linux", "--arch", "x86_64", "--compiler", "clang")
    same({**base, "arch": "armv8"}, "--os", "linux", "--arch", "aarch64", "--cxx11-abi", "1")
    mac = {"os": "Macos", "arch": "armv8|x86_64", "compiler": "apple-clang", "build_type": "Debug", "os.version": "11.0"}
    same(mac, "--os", "macos", "--build-type", "Debug", "--arch", "universal2", "--deployment-target", "11.0")
    win = {"os": "Windows", "arch": "x86", "compiler": "msvc", "compiler.version": "193", "compiler.runtime": "static", "build_type": "Release"}
    same(win, "--os", "windows", "--arch", "x86", "--runtime", "MT", "--toolset", "v143")
    assert conan_settings.options_for({**win, "compiler.toolset": "v120_xp"}, "futu").toolset == "v120_xp"
    with pytest.raises(UsageError, match="clang with compiler.libcxx=libstdc"):
        conan_settings.options_for({**base, "compiler": "clang", "compiler.libcxx": "libstdc++11"}, "futu")
    with pytest.raises(UsageError, match="FreeBSD"):
        conan_settings.options_for({**base, "os": "FreeBSD"}, "futu")
    with pytest.raises(UsageError, match="--toolset v100 does not apply"):  # the command line's own check
        conan_settings.options_for({**win, "compiler.toolset": "v100"}, "futu")


def test_editable_install_builds_no_cpp(project_copy: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "venv")
    out = ok(run([str(bin_dir / "python"), "-m", "pip", "install", "-v", "--no-deps", "-e", str(project_copy)], OFFLINE))
    assert "Build files have been written" not in out and "Bin/Linux" not in out
    where = ok(run([str(bin_dir / "python"), "-c", "import opend_build; print(opend_build.__file__)"])).strip()
    assert where.startswith(str(project_copy / "src")), where
    r = run([str(bin_dir / "opend-sdk"), "--cmakedir"])
    assert r.returncode == 3 and "installed without its C++ build" in r.stderr


def test_conan_hands_cmake_the_toolchains_facts_not_its_own(tmp_path: Path) -> None:
    """`conan install` of the recipe for an MSVC profile (only generate() runs: nothing is built, so
    it works here): the toolchain file carries the driver's Toolchain - its toolset (-T), platform
    (-A) and MSVC runtime, its Bin folders - and none of the blocks by which Conan derives them again."""
    env = conan_home(tmp_path / "conan home")
    out = tmp_path / "gen"
    ok(run([script("conan"), "install", str(ROOT), "--output-folder", str(out), "--build=never",
            "-s:h", "os=Windows", "-s:h", "arch=x86", "-s:h", "compiler=msvc", "-s:h", "compiler.version=193",
            "-s:h", "compiler.runtime=static", "-s:h", "compiler.cppstd=17", "-s:h", "build_type=Release", "-c", "tools.cmake.cmaketoolchain:generator=Visual Studio 17 2022"], env))
    (toolchain,) = out.rglob("conan_toolchain.cmake")
    text = toolchain.read_text()
    assert 'set(CMAKE_GENERATOR_TOOLSET "v143"' in text and 'set(CMAKE_GENERATOR_PLATFORM "Win32"' in text
    assert "Definition of libcxx" not in text and "Definition of VS runtime" not in text  # Conan's own blocks are gone
    import json

    (presets,) = out.rglob("CMakePresets.json")
    cache = json.loads(presets.read_text())["configurePresets"][0]["cacheVariables"]
    assert cache["CMAKE_MSVC_RUNTIME_LIBRARY"] == "MultiThreaded$<$<CONFIG:Debug>:Debug>"  # the Toolchain's /MT
    assert (cache["OPEND_BIN_DIR"], cache["OPEND_CHANNEL_DIR"]) == ("Bin/Windows/Release/MT", "Bin/Windows/Release")
