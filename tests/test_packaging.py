"""The built SDK through the tools people use: Conan 2 (create, a real conan_server, a second
Conan home installing the binary with --build=never), a pip wheel (built, installed into a fresh
venv, found by CMake), and the editable install that never builds C++.

Real builds use the small test SDK in Debug: what these prove does not depend on the number of
protocol files or on optimisation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import sdkfactory
from conftest import ROOT, consume, free_port, service

from opend_build import conan_settings
from opend_build.errors import UsageError

OFFLINE = {"OPEND_BUILD_INDEX_URL": "http://127.0.0.1:9/simple"}  # any download attempt fails
SERVER_PASSWORD = "opend-test-only"


def script(name: str) -> str:
    found = Path(sysconfig.get_path("scripts")) / name
    return str(found) if found.is_file() else (shutil.which(name) or name)


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"{r.args}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout + r.stderr


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files (tracked or new, not ignored) in a folder of their own: Conan and pip
    build from it, so the checkout is never written, and a file missing from exports would show."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    dest = tmp_path_factory.mktemp("project") / "opend build"
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


@pytest.fixture(scope="session")
def small_zip(small_sdk: Path, work: Path) -> Path:
    return sdkfactory.zip_tree(small_sdk, work / "inputs" / "FTAPI4CPP_0.0.1.zip")


# --- Conan -------------------------------------------------------------------------------------


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


def conan_home(path: Path) -> dict[str, str]:
    """A fresh Conan home with a detected profile and no remotes: nothing can come from outside."""
    env = {"CONAN_HOME": str(path), **OFFLINE}
    ok(run([script("conan"), "profile", "detect"], env))
    ok(run([script("conan"), "remote", "remove", "*"], env))
    return env


CONAN_SETTINGS = ["-s", "build_type=Debug"]


@pytest.fixture(scope="session")
def conan_created(project_copy: Path, small_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """`conan create` of the recipe, offline, on a fresh Conan home, with the SDK as an archive."""
    env = {**conan_home(tmp_path_factory.mktemp("conan") / "home one"), "OPEND_SDK": str(small_zip)}
    out = ok(run([script("conan"), "create", str(project_copy), *CONAN_SETTINGS], env))
    return env, out


def packages(env: dict[str, str], remote: str | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    """{package id: its info} of opend-sdk/0.0.1 in the local cache or on a remote."""
    argv = [script("conan"), "list", "opend-sdk/0.0.1:*", "--format=json", *(["-r", remote] if remote else [])]
    r = run(argv, env)
    ok(r)
    data = json.loads(r.stdout)
    (where,) = data.values()
    found = {}
    for rev in where["opend-sdk/0.0.1"]["revisions"].values():
        found.update(rev.get("packages", {}))
    return found


def test_conan_create_builds_and_runs_test_package(conan_created: tuple[dict[str, str], str]) -> None:
    env, out = conan_created
    # test_package: the consumer found FTAPI through CMakeDeps, linked and ran
    assert "round-trip ok" in out and "library ok" in out
    (package_id, info), = packages(env).items()
    assert info["info"]["settings"]["build_type"] == "Debug"
    assert "compiler.cppstd" not in info["info"]["settings"]  # every compile is gnu++11: cppstd is not the binary's
    assert info["info"]["options"] == {"brand": "futu"}
    folder = Path(ok(run([script("conan"), "cache", "path", f"opend-sdk/0.0.1:{package_id}"], env)).strip())
    assert (folder / "Bin/Linux/libFTAPI.a").is_file() and (folder / "Bin/Linux/protoc").is_file()
    assert (folder / "Include/Proto/Qot_Sub.pb.h").is_file()


@pytest.fixture(scope="session")
def conan_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Conan remote: conan_server (PyPI's conan-server) on loopback, one user who may write."""
    folder = tmp_path_factory.mktemp("conan_server")
    port = free_port()
    (folder / "server.conf").write_text(f"""[server]
jwt_secret: {os.urandom(16).hex()}
jwt_expire_minutes: 120
ssl_enabled: False
port: {port}
public_port:
host_name: 127.0.0.1
authorize_timeout: 1800
disk_storage_path: ./data
disk_authorize_timeout: 1800
updown_secret: {os.urandom(16).hex()}

[write_permissions]
*/*@*/*: ci

[read_permissions]
*/*@*/*: *

[users]
ci: {SERVER_PASSWORD}
""")
    with service([script("conan_server"), "-d", str(folder)], port, "conan_server"):
        yield f"http://127.0.0.1:{port}"


def test_conan_upload_then_install_elsewhere_without_building(conan_created: tuple[dict[str, str], str], conan_server: str,
                                                              project_copy: Path, tmp_path: Path) -> None:
    env, _ = conan_created
    conan = script("conan")
    ok(run([conan, "remote", "add", "team", conan_server], env))
    ok(run([conan, "remote", "login", "team", "ci", "-p", SERVER_PASSWORD], env))
    ok(run([conan, "upload", "opend-sdk/0.0.1", "-r", "team", "-c"], env))
    uploaded = packages(env, "team")
    assert set(uploaded) == set(packages(env))

    # A second machine: an empty Conan home and no SDK at all; the binary must come from the remote.
    other = conan_home(tmp_path / "home two")
    ok(run([conan, "remote", "add", "team", conan_server], other))
    installed = ok(run([conan, "install", "--requires=opend-sdk/0.0.1", "-r", "team", "--build=never", *CONAN_SETTINGS,
                        "-of", str(tmp_path / "gen")], other))
    assert "Downloaded" in installed or "Decompressing" in installed, installed
    assert "Building your package" not in installed
    assert set(packages(other)) == set(uploaded)  # the very binary that was uploaded
    # and a consumer builds against it and runs, still without building the package
    tested = ok(run([conan, "test", str(project_copy / "test_package"), "opend-sdk/0.0.1", "--build=never", *CONAN_SETTINGS], other))
    assert "round-trip ok" in tested and "library ok" in tested


# --- pip ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wheel(project_copy: Path, small_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` with the SDK given through the documented environment variable."""
    dist = tmp_path_factory.mktemp("dist")
    ok(run([sys.executable, "-m", "pip", "wheel", str(project_copy), "--no-deps", "-w", str(dist), "-C", "cmake.build-type=Debug"],
           {"OPEND_SDK": str(small_zip), **OFFLINE}))
    (found,) = dist.glob("opend_build-*.whl")
    return found


def test_wheel_holds_the_sdk(wheel: Path) -> None:
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl"), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = "opend_build/cpp/"
    for f in ("Bin/Linux/libFTAPI.a", "Bin/Linux/libprotobuf.a", "Bin/Linux/protoc", "Include/FTAPI.h",
              "Include/Proto/Qot_Sub.pb.h", "Include/google/protobuf/message.h", "lib/cmake/FTAPI/FTAPIConfig.cmake"):
        assert prefix + f in names, f
    assert "opend_build/installed.py" in names and "opend_build/cli.py" in names


def venv(path: Path) -> Path:
    ok(run([sys.executable, "-m", "venv", str(path)]))
    return path / "bin"


def test_wheel_in_a_fresh_venv_is_found_by_cmake(wheel: Path, tmp_path: Path) -> None:
    bin_dir = venv(tmp_path / "venv")
    # --no-deps: the consumer needs only what the wheel carries (cmake and ninja are the driver's)
    ok(run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]))
    cmakedir = ok(run([str(bin_dir / "opend-sdk"), "--cmakedir"])).strip()
    assert cmakedir.endswith("lib/cmake/FTAPI") and str(tmp_path / "venv") in cmakedir
    prefix = ok(run([str(bin_dir / "opend-sdk"), "--prefix"])).strip()
    stdout = consume(Path(prefix), "FTAPI", tmp_path / "consumer", extra=[f"-DFTAPI_DIR={cmakedir}"])
    assert "round-trip ok" in stdout and "library ok" in stdout


def test_editable_install_builds_no_cpp(project_copy: Path, tmp_path: Path) -> None:
    bin_dir = venv(tmp_path / "venv")
    out = ok(run([str(bin_dir / "python"), "-m", "pip", "install", "-v", "--no-deps", "-e", str(project_copy)], OFFLINE))
    assert "Build files have been written" not in out and "Bin/Linux" not in out
    where = ok(run([str(bin_dir / "python"), "-c", "import opend_build; print(opend_build.__file__)"])).strip()
    assert where.startswith(str(project_copy / "src")), where
    r = run([str(bin_dir / "opend-sdk"), "--cmakedir"])
    assert r.returncode == 3 and "installed without its C++ build" in r.stderr
