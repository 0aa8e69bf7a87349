"""The packaging routes' own parts: Conan settings mapped onto the driver's options, and the
editable install that never builds C++. The routes themselves (conan create, upload to a real
conan_server and install elsewhere, pip wheel into a fresh venv) run as the README writes them, in
test_readme.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import OFFLINE, make_venv, ok, run

from opend_build import conan_settings
from opend_build.errors import UsageError


def test_conan_settings_map_onto_the_drivers_options() -> None:
    base = {"os": "Linux", "arch": "x86_64", "compiler": "gcc", "build_type": "Release", "compiler.libcxx": "libstdc++11"}
    assert conan_settings.driver_args(base) == ["--os", "linux", "--build-type", "Release", "--cxx11-abi", "1"]
    assert conan_settings.driver_args({**base, "compiler.libcxx": "libstdc++"})[-2:] == ["--cxx11-abi", "0"]
    assert conan_settings.driver_args({**base, "compiler": "clang", "compiler.libcxx": "libc++"})[-2:] == ["--compiler", "clang"]
    mac = {"os": "Macos", "arch": "armv8|x86_64", "compiler": "apple-clang", "build_type": "Debug", "os.version": "11.0"}
    assert conan_settings.driver_args(mac) == ["--os", "macos", "--build-type", "Debug", "--arch", "universal2", "--deployment-target", "11.0"]
    win = {"os": "Windows", "arch": "x86", "compiler": "msvc", "compiler.version": "193", "compiler.runtime": "static", "build_type": "Release"}
    assert conan_settings.driver_args(win) == ["--os", "windows", "--build-type", "Release", "--arch", "x86", "--runtime", "MT", "--toolset", "v143"]
    assert conan_settings.driver_args({**win, "compiler.toolset": "v120_xp"})[-1] == "v120_xp"
    with pytest.raises(UsageError, match="clang with compiler.libcxx=libstdc"):
        conan_settings.driver_args({**base, "compiler": "clang", "compiler.libcxx": "libstdc++11"})
    with pytest.raises(UsageError, match="FreeBSD"):
        conan_settings.driver_args({**base, "os": "FreeBSD"})


def test_editable_install_builds_no_cpp(project_copy: Path, tmp_path: Path) -> None:
    bin_dir = make_venv(tmp_path / "venv")
    out = ok(run([str(bin_dir / "python"), "-m", "pip", "install", "-v", "--no-deps", "-e", str(project_copy)], OFFLINE))
    assert "Build files have been written" not in out and "Bin/Linux" not in out
    where = ok(run([str(bin_dir / "python"), "-c", "import opend_build; print(opend_build.__file__)"])).strip()
    assert where.startswith(str(project_copy / "src")), where
    r = run([str(bin_dir / "opend-sdk"), "--cmakedir"])
    assert r.returncode == 3 and "installed without its C++ build" in r.stderr
