"""The design's promises, as facts: every action has one handler, the plan states every skip and
check the run applies, planning reads only what it is given, --dry-run needs no toolchain, and
progress names the .proto files a unity batch compiles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Built, run_driver

from opend_build import options, runner
from opend_build.inputs import resolve
from opend_build.plan import Tools, make_plan
from opend_build.platforms import Toolchain
from opend_build.steps import Action, Configured, Published

GCC = Toolchain("linux", "gcc", "/usr/bin/g++", "12", "Bin/Linux")


def test_every_action_has_exactly_one_handler() -> None:
    assert set(runner.ACTIONS) == set(Action)


def test_dry_run_states_every_skip_and_check(tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--dry-run", "-v", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.output
    out = r.stdout
    assert out.count(f"({Configured.text})") == 2  # protobuf's and the SDK's configure
    assert out.count(f"({Published.text})") == 5  # link the output into staging, install, prune, write the manifest, publish
    for needle in ("  out: ", "else exit 2 before anything runs", "  locks: ", "  log: ", "skipped when the cached download matches its sha256",
                   "  probes run: ", "  before the steps: what an interrupted run left is recovered", "  publish record: ",
                   "a CMake File API query is placed in its build folder first", "NINJA_STATUS="):
        assert needle in out, needle
    assert not (tmp_path / "o").exists()


def test_planning_takes_the_environment_as_an_argument(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SCCACHE_REDIS_ENDPOINT", raising=False)
    opts = options.parse(["--os", "linux", "--cache", "sccache"])

    def plan(env: dict[str, str]) -> str:
        return make_plan(opts, GCC, resolve(opts, os.environ), Path("/cache"), Tools("cmake", "ninja", "/opt/sccache"), Path("/w"), env=env).render()

    assert "backend redis (SCCACHE_REDIS_ENDPOINT=redis://cache:6379)" in plan({"SCCACHE_REDIS_ENDPOINT": "redis://cache:6379"})
    monkeypatch.setenv("SCCACHE_REDIS_ENDPOINT", "redis://elsewhere:1")  # the process's environment is not read
    assert "backend local disk (sccache's default folder)" in plan({})
    # where the inputs are unpacked follows the environment given, too
    moved = resolve(opts, {"OPEND_BUILD_CACHE": "/elsewhere/cache"})
    assert moved.proto_dir.is_relative_to("/elsewhere/cache") and moved.protobuf.src is not None and moved.protobuf.src.is_relative_to("/elsewhere/cache")
    assert all(dict(s.args).get("dest", "/elsewhere/cache").startswith("/elsewhere/cache") for s in moved.prepare)


def test_dry_run_needs_no_toolchain(tmp_path: Path) -> None:
    """On a host without clang, --compiler clang --dry-run prints the plan and says what is missing;
    the real run stops with exit 6 before anything runs."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("cc", "c++"):  # nothing named clang++ on this PATH
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)  # type: ignore[arg-type]
    env = {"PATH": f"{bare}{os.pathsep}{Path(sys.executable).parent}"}
    r = run_driver("--os", "linux", "--compiler", "clang", "--dry-run", "-v", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.output
    assert "plan: FTAPI" in r.stdout and "missing on this machine: no C++ compiler found (looked for clang++)" in r.stdout
    real = run_driver("--os", "linux", "--compiler", "clang", "--out", str(tmp_path / "o"), env=env)
    assert real.returncode == 6 and "clang++" in real.stderr and not (tmp_path / "o").exists()


def test_dry_run_without_cmake_and_ninja_lists_them(tmp_path: Path) -> None:
    """Neither on PATH nor importable from PyPI's packages (hidden by modules of the same name that
    fail to import): the dry run still prints the plan and names them; the real run exits 6."""
    hide = tmp_path / "hide"
    hide.mkdir()
    for module in ("cmake", "ninja"):
        (hide / f"{module}.py").write_text("raise ImportError('hidden by the test')\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("cc", "c++", "g++"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)  # type: ignore[arg-type]
    env = {"PATH": str(bare), "PYTHONPATH": str(hide)}
    r = run_driver("--os", "linux", "--dry-run", "-v", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.output
    assert "plan: FTAPI" in r.stdout and "missing on this machine: cmake not found" in r.stdout and "missing on this machine: ninja not found" in r.stdout
    real = run_driver("--os", "linux", "--out", str(tmp_path / "o"), env=env)
    assert real.returncode == 6 and "cmake not found" in real.stderr and not (tmp_path / "o").exists()


def test_steps_carry_the_paths_planning_chose(open_inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetch and unpack steps name the files they read and write in the cache planning was given;
    the runner takes those, whatever cache the process's own environment would name."""
    from opend_build import sources

    planned, elsewhere = tmp_path / "planned", tmp_path / "elsewhere"
    inputs = resolve(options.parse(["--os", "linux"]), {"OPEND_BUILD_CACHE": str(planned)})
    fetch, unpack = inputs.prepare[0], inputs.prepare[1]
    pin = sources.load_pins()["futu"]
    assert dict(fetch.args)["dest"] == str(planned / "downloads" / pin.filename)
    assert dict(unpack.args)["archive"] == dict(fetch.args)["dest"] and dict(unpack.args)["dest"] == str(inputs.proto_dir)
    # the download is already there (from the session's cache), so nothing is fetched from the network
    (planned / "downloads").mkdir(parents=True)
    shutil.copy2(sources.download_path(pin, sources.cache_root(os.environ)), planned / "downloads" / pin.filename)
    monkeypatch.setenv("OPEND_BUILD_CACHE", str(elsewhere))
    runner.Runner(None).execute((fetch, unpack), tmp_path / "log")
    assert (inputs.proto_dir / "Qot_Sub.proto").is_file() and not elsewhere.exists()


def test_progress_names_the_protos_of_a_unity_batch(small_built: Built) -> None:
    assert runner.short("Building CXX object CMakeFiles/opend_sdk.dir/Unity/unity_batch3_cxx.cxx.o",
                        {"batch3": ["Qot_Sub", "Qot_GetKL", "Qot_GetTicker", "Qot_GetRT"]}) == "compile Qot_Sub, Qot_GetKL (+2)"
    assert runner.short("Building CXX object CMakeFiles/opend_sdk_sources.dir/Packet.cpp.o", {}) == "compile Packet.cpp"
    # the real build folder says which .proto files each batch holds, as its configure wrote it
    build_dir = Path(str(small_built.summary["log"])).with_suffix("")
    batches = runner.unity_batches(str(build_dir))
    assert sorted(p for protos in batches.values() for p in protos) == ["Common", "Qot_Common", "Qot_Sub"]


def test_inputs_runs_its_steps_through_the_runner() -> None:
    """`build.py inputs` (how CMake configured by Conan or pip gets its inputs): the runner's
    progress on stderr, only the CMake script on stdout."""
    r = run_driver("inputs", "--brand", "futu")
    assert r.returncode == 0, r.output
    assert "==> [1/4] inputs: fetch " in r.stderr
    assert all(line.startswith(("set(OPEND_", 'if("${OPEND_', "  set(OPEND_", "endif()")) for line in r.stdout.strip().splitlines()), r.stdout


def test_archive_digests_are_remembered_by_size_and_mtime(small_zip: Path, tmp_path: Path) -> None:
    """Planning an SDK archive reads it whole once (its sha256, the protobuf tarball inside it) and
    writes nothing: the plan's `remember` step keeps the digests in the cache. Later plans of the
    same file take them from there (no remember step); a touched file is read again."""
    from opend_build import sources
    from opend_build.steps import Action

    sdk = Path(shutil.copy2(small_zip, tmp_path / small_zip.name))
    env = {**os.environ, "OPEND_BUILD_CACHE": str(tmp_path / "cache")}
    memos = tmp_path / "cache" / "digests"
    opts = options.parse(["--os", "linux", "--sdk", str(sdk)], env)

    def remembered(inputs) -> int:  # type: ignore[no-untyped-def]
        steps = [s for s in inputs.prepare if s.action is Action.REMEMBER]
        return len(__import__("json").loads(dict(steps[0].args)["entries"])) if steps else 0

    first = resolve(opts, env)
    assert remembered(first) == 2 and not memos.exists()  # the archive's sha256 and its protobuf source's digest, not yet written
    runner.Runner(None, env=env).execute(first.prepare, tmp_path / "log")
    assert len(list(memos.iterdir())) == 2
    again = resolve(opts, env)
    assert remembered(again) == 0 and again.protobuf == first.protobuf
    assert dict(again.prepare[0].args)["dest"].startswith(str(sources.cache_root(env) / "sdk"))
    os.utime(sdk, (1_600_000_000, 1_600_000_000))
    third = resolve(opts, env)
    assert remembered(third) == 2 and third.protobuf == first.protobuf


STRACED = ("execve,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,"
           "truncate,chmod,fchmodat,utimensat")


@pytest.mark.build  # needs strace, a Debian package tests/run.py installs: not in the pip-only fast set
@pytest.mark.parametrize("with_sdk", [False, True], ids=["default", "sdk-archive"])
def test_dry_run_writes_nothing_and_runs_only_the_probes_it_names(with_sdk: bool, small_zip: Path, tmp_path: Path) -> None:
    """Watched by strace: a --dry-run with an empty cache creates, writes, renames and removes no
    file anywhere, and starts no process but the probes the plan's head names."""
    log = tmp_path / "strace.log"
    env = {**os.environ, "OPEND_BUILD_CACHE": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = ["--os", "linux", "--dry-run", "-v", "--out", str(tmp_path / "o"), *(["--sdk", str(small_zip)] if with_sdk else [])]
    r = subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e", f"trace={STRACED}", sys.executable, str(ROOT / "build.py"), *argv],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines() if " = -1 " not in line and "resumed>" not in line]
    calls = [c for c in calls if not c.startswith(("---", "+++"))]  # signals and exits
    opens = ("open(", "openat(")
    writes = [c for c in calls if not c.startswith("execve(") and (not c.startswith(opens) or re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", c))]
    writes = [c for c in writes if not re.search(r'"/dev/(null|tty|pts/\d+)"', c)]
    assert writes == [], writes[:5]
    started = [re.match(r'execve\("[^"]*", \[(.*?)\]', c).group(1) for c in calls if c.startswith("execve(")]  # type: ignore[union-attr]
    started = [" ".join(a.strip('"') for a in re.findall(r'"(?:[^"\\]|\\.)*"', s)) for s in started[1:]]  # the first is the driver itself
    probes = next(line for line in r.stdout.splitlines() if line.startswith("  probes run: ")).removeprefix("  probes run: ")
    assert started and all(s in probes.split("; ") for s in started), (started, probes)


SIDE_EFFECTS = {"subprocess": "import", "os.environ": "read", "os.getenv": "read", "os.putenv": "write", "shutil.which": "PATH lookup",
                "os.path.expanduser": "HOME", "Path.home": "HOME", "expanduser": "HOME"}


def test_only_the_host_boundary_reaches_processes_and_the_environment() -> None:
    """No module but host.py imports subprocess, reads os.environ, looks up PATH or HOME."""
    import ast

    found = []
    for path in sorted((ROOT / "src" / "opend_build").rglob("*.py")):
        if path.name == "host.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Attribute):
                names = [f"{ast.unparse(node.value)}.{node.attr}", node.attr]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n in SIDE_EFFECTS]  # type: ignore[attr-defined]
    assert found == []


def test_the_brand_table_has_one_home() -> None:
    """src/opend_build/inputs.json holds it (it ships with the driver, in a wheel too). The driver's BRANDS and DEFAULT_BRAND and the Conan recipe's
    brand option and default are read from there; CMake gets the library name from the driver. No
    module, recipe or CMake file of the build spells a brand or a library name as a value."""
    import ast
    import json

    from conftest import run, script

    from opend_build.sdk import BRANDS, DEFAULT_BRAND

    table = json.loads((ROOT / "src" / "opend_build" / "inputs.json").read_text())["brands"]
    assert (BRANDS, DEFAULT_BRAND) == (table["libraries"], table["default"])
    inspected = json.loads(run([script("conan"), "inspect", str(ROOT), "--format=json"], {}).stdout)
    assert inspected["options_definitions"]["brand"] == list(BRANDS) and inspected["default_options"]["brand"] == DEFAULT_BRAND
    names = {*BRANDS, *BRANDS.values()}
    spelled = []
    for path in [*sorted((ROOT / "src" / "opend_build").rglob("*.py")), ROOT / "conanfile.py", ROOT / "build.py"]:
        spelled += [f"{path.relative_to(ROOT)}:{n.lineno}: {n.value}" for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, ast.Constant) and n.value in names]
    for path in [ROOT / "CMakeLists.txt", *sorted((ROOT / "cmake").rglob("*.cmake")), *sorted((ROOT / "cmake").rglob("*.in"))]:
        spelled += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(r'"(?:%s)"' % "|".join(map(re.escape, names)), path.read_text())]
    assert spelled == []
