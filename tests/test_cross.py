"""Linux cross builds (--arch aarch64 on an x86-64 machine): the plan (two protobuf builds from one
source, the build machine's protoc generating the code, the target arch in the plan, the output
folder and the manifest), the refusals, and one real aarch64 build of a small SDK whose consumer
(test_package/, cross-compiled against the output) runs under qemu-aarch64 and, through the open
channel built for aarch64, talks to the stand-in OpenD on loopback."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, must_build, run_driver
from test_floor import elf_files, readelf_glibc

from opend_build import options
from opend_build.inputs import resolve
from opend_build.plan import Tools, make_plan
from opend_build.platforms import linux, toolchain_for

TRIPLET = "aarch64-linux-gnu"
QEMU = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
CROSS = shutil.which(f"{TRIPLET}-g++")
on_x86_64 = pytest.mark.skipif(linux.host_arch() != "x86_64", reason="the cross tests build for aarch64 on an x86-64 machine")


def plan_of(*argv: str):  # type: ignore[no-untyped-def]
    opts = options.parse(["--os", "linux", *argv])
    return make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), Tools("cmake", "ninja"), Path("/w"))


def no_cross_env(tmp_path: Path) -> dict[str, str]:
    """A PATH with no cross compiler (nor anything else): the host's g++ comes from CXX."""
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "CXX": shutil.which("g++") or "/usr/bin/g++"}


@on_x86_64
def test_cross_plan_builds_protobuf_twice_and_generates_with_the_host_protoc() -> None:
    native, cross = plan_of(), plan_of("--arch", "aarch64")
    assert plan_of("--arch", "x86_64").render() == native.render()  # this machine's arch: no change at all
    t = cross.toolchain
    assert t.cross and t.arch == "aarch64" and t.host is not None and t.host.key() == native.toolchain.key()
    assert t.key() != native.toolchain.key() and cross.protobuf_build != native.protobuf_build
    assert cross.host_protobuf_build == native.protobuf_build  # the native protobuf build is the host's: shared
    configures = [s for s in cross.steps if s.kind == "configure" and s.phase == "protobuf"]
    assert [s.build_dir for s in configures] == [str(native.protobuf_build / "tree"), str(cross.protobuf_build / "tree")]
    host_cfg, target_cfg = (s.argv for s in configures)
    assert host_cfg == next(s.argv for s in native.steps if s.kind == "configure" and s.phase == "protobuf")
    for flag in ("-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64", f"-DCMAKE_CXX_COMPILER={TRIPLET}-g++",
                 f"-DCMAKE_C_COMPILER={TRIPLET}-gcc", f"-DCMAKE_LIBRARY_ARCHITECTURE={TRIPLET}"):
        assert flag in target_cfg and flag not in host_cfg
    sdk_cfg = next(s.argv for s in cross.steps if s.kind == "configure" and s.phase == "sdk")
    assert f"-DOPEND_PROTOBUF_DIR={cross.protobuf_build / 'prefix'}" in sdk_cfg
    assert f"-DOPEND_HOST_PROTOC={native.protobuf_build / 'prefix/bin/protoc'}" in sdk_cfg
    assert "-DCMAKE_SYSTEM_PROCESSOR=aarch64" in sdk_cfg
    assert cross.out == Path("/w/out/FTAPI4CPP-linux-aarch64-gcc-protobuf3.5.1-release") and native.out == Path("/w/out/FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release")
    assert len(cross.locks) == len(native.locks) + 1
    text = cross.render()
    assert "target arch: aarch64 (cross-compiled on x86_64" in text
    assert f"host protoc: {native.protobuf_build / 'prefix/bin/protoc'}" in text
    assert "built twice: for x86_64" in text and "and for aarch64" in text
    assert "configure protobuf for this machine (x86_64" in text and "configure protobuf for aarch64" in text


@on_x86_64
def test_cross_dry_run_without_the_cross_compiler_lists_it_and_a_real_run_exits_6(tmp_path: Path) -> None:
    env = no_cross_env(tmp_path)
    r = run_driver("--os", "linux", "--arch", "aarch64", "--dry-run", "-v", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.output
    missing = [line for line in r.stdout.splitlines() if line.startswith("  missing on this machine:")]
    assert len(missing) == 1 and f"{TRIPLET}-g++" in missing[0] and "apt-get install g++-aarch64-linux-gnu" in missing[0], r.stdout
    assert "target arch: aarch64" in r.stdout and "host protoc: " in r.stdout
    assert str(tmp_path / "out" / "FTAPI4CPP-linux-aarch64-gcc-protobuf3.5.1-release") in r.stdout
    assert len(re.findall(r"^\[protobuf\] configure protobuf", r.stdout, re.M)) == 2
    real = run_driver("--os", "linux", "--arch", "aarch64", env=env, cwd=tmp_path)
    assert real.returncode == 6, real.output
    assert "apt-get install g++-aarch64-linux-gnu" in real.stderr and not (tmp_path / "out").exists()


def test_cross_refusals(tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--arch", "arm64", "--dry-run", "-v", cwd=tmp_path)
    assert r.returncode == 2 and "--arch arm64 does not apply to --os linux" in r.stderr and "x86_64 or aarch64" in r.stderr, r.output
    help_text = run_driver("--help").stdout
    assert "linux: x86_64|aarch64" in help_text
    if linux.host_arch() != "x86_64":
        return


TARGET_PROTOBUF = Path(f"/usr/lib/{TRIPLET}/libprotobuf.so")
SYSTEM_PROTOC = shutil.which("protoc")
needs_target_protobuf = pytest.mark.skipif(not (TARGET_PROTOBUF.is_file() and SYSTEM_PROTOC and Path("/usr/include/google/protobuf/message.h").is_file()),
                                           reason="needs libprotobuf-dev:arm64 and protobuf-compiler (tests/run.py installs them)")


def fake_protoc(folder: Path, says: str) -> dict[str, str]:
    """A PATH whose first protoc reports another version than the installed protobuf."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "protoc"
    exe.write_text(f"#!/bin/sh\necho '{says}'\n")
    exe.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


@on_x86_64
@needs_target_protobuf
def test_cross_system_protobuf_plan_and_refusals(tmp_path: Path) -> None:
    """--protobuf system for aarch64: the target's libprotobuf (Debian's multiarch folder), the
    headers every architecture shares, this machine's protoc generating (OPEND_HOST_PROTOC), no
    protobuf build at all; a protoc of another version, or a prefix whose library is this
    machine's, is refused before anything runs (exit 4) with what to do."""
    r = run_driver("--os", "linux", "--arch", "aarch64", "--protobuf", "system", "--dry-run", "-v", cwd=tmp_path)
    assert r.returncode == 0, r.output
    assert f"the aarch64 library {TARGET_PROTOBUF}, headers in /usr/include; this machine's protoc {SYSTEM_PROTOC} generates" in r.stdout
    configure = next(line for line in r.stdout.splitlines() if "-DOPEND_PROTOBUF_PROVIDER=installed" in line)
    assert f"-DOPEND_HOST_PROTOC={SYSTEM_PROTOC}" in configure and f"-DProtobuf_PROTOC_EXECUTABLE={SYSTEM_PROTOC}" in configure
    assert "[protobuf]" not in r.stdout  # nothing of protobuf is built, for either machine
    assert f"not needed: nothing of protobuf is built, this machine's installed protoc {SYSTEM_PROTOC} generates" in r.stdout

    old = fake_protoc(tmp_path / "old", "libprotoc 3.19.0")
    dry = run_driver("--os", "linux", "--arch", "aarch64", "--protobuf", "system", "--dry-run", cwd=tmp_path, env=old)
    assert dry.returncode == 0 and "plan: FTAPI" in dry.stdout, dry.output  # the plan, and at its top what the run stops at
    assert dry.stdout.splitlines()[1].startswith("  missing on this machine: --protobuf system --arch aarch64: this machine's protoc"), dry.stdout
    mismatch = run_driver("--os", "linux", "--arch", "aarch64", "--protobuf", "system", cwd=tmp_path, env=old)
    assert mismatch.returncode == 4 and not (tmp_path / "out").exists(), mismatch.output
    assert "this machine's protoc" in mismatch.stderr and "is protobuf 3.19.0, the aarch64 library" in mismatch.stderr, mismatch.stderr
    assert "apt-get install protobuf-compiler libprotobuf-dev:arm64" in mismatch.stderr and "Traceback" not in mismatch.output

    # A prefix: the target's library and headers in it, this machine's protoc from PATH.
    good, wrong = tmp_path / "arm-prefix", tmp_path / "x86-prefix"
    for prefix, lib in ((good, Path(f"/usr/lib/{TRIPLET}")), (wrong, Path("/usr/lib/x86_64-linux-gnu"))):
        prefix.mkdir()
        (prefix / "include").symlink_to("/usr/include")
        (prefix / "lib").mkdir()
        (prefix / "lib" / "libprotobuf.so").symlink_to(lib / "libprotobuf.so")
    p = run_driver("--os", "linux", "--arch", "aarch64", "--protobuf", str(good), "--dry-run", "-v", cwd=tmp_path)
    assert p.returncode == 0 and f"-DOPEND_PROTOBUF_PREFIX={good}" in p.stdout and f"-DOPEND_HOST_PROTOC={SYSTEM_PROTOC}" in p.stdout, p.output
    x86 = run_driver("--os", "linux", "--arch", "aarch64", "--protobuf", str(wrong), "--dry-run", "-v", cwd=tmp_path)
    assert x86.returncode == 4 and "is a x86_64 library, not aarch64" in x86.stderr, x86.output


@on_x86_64
def test_toolchain_file_cross_plan(tmp_path: Path) -> None:
    """--toolchain-file: the user's file for the target's builds only, its content in the key, the
    host's protobuf build shared with native builds."""
    tc = tmp_path / "arm.cmake"
    tc.write_text(f"set(CMAKE_SYSTEM_NAME Linux)\nset(CMAKE_SYSTEM_PROCESSOR aarch64)\nset(CMAKE_CXX_COMPILER {TRIPLET}-g++)\n")
    native, p = plan_of(), plan_of("--toolchain-file", str(tc))
    assert p.toolchain.cross and p.toolchain.arch == "aarch64" and p.host_protobuf_build == native.protobuf_build
    target_cfg = next(s.argv for s in p.steps if s.kind == "configure" and s.build_dir == str(p.protobuf_build / "tree"))
    sdk_cfg = next(s.argv for s in p.steps if s.kind == "configure" and s.phase == "sdk")
    for argv in (target_cfg, sdk_cfg):
        assert f"-DCMAKE_TOOLCHAIN_FILE={tc}" in argv and not any(a.startswith(("-DCMAKE_CXX_COMPILER=", "-DCMAKE_SYSTEM_")) for a in argv)
    assert f"-DOPEND_HOST_PROTOC={native.protobuf_build / 'prefix/bin/protoc'}" in sdk_cfg
    assert p.out == Path("/w/out/FTAPI4CPP-linux-aarch64-toolchainfile-protobuf3.5.1-release") and "CMAKE_TOOLCHAIN_FILE=" in p.render()
    before = p.protobuf_build
    tc.write_text(tc.read_text() + "set(CMAKE_CXX_FLAGS_INIT -O1)\n")
    assert plan_of("--toolchain-file", str(tc)).protobuf_build != before  # an edited file: other build folders
    bare = tmp_path / "bare.cmake"
    bare.write_text("set(CMAKE_CXX_COMPILER g++)\n")
    r = run_driver("--os", "linux", "--toolchain-file", str(bare), "--dry-run", "-v", cwd=tmp_path)
    assert r.returncode == 2 and "sets no CMAKE_SYSTEM_PROCESSOR" in r.stderr and "--arch" in r.stderr, r.output
    assert run_driver("--os", "linux", "--toolchain-file", str(tmp_path / "nope.cmake"), "--dry-run", "-v").returncode == 2


def test_vendor_linux_binaries_are_not_an_aarch64_channel() -> None:
    from opend_build.sdk import channel_for

    libs = ("Bin/Ubuntu16.04/libFTAPIChannel.so",)
    assert channel_for("linux", libs) == channel_for("linux", libs, arch="x86_64") == libs
    assert channel_for("linux", libs, arch="aarch64") == ()


# --- one real aarch64 build --------------------------------------------------------------------

CONNECT_PROTOS = ["Common.proto", "Qot_Common.proto", "Qot_Sub.proto", "GetGlobalState.proto", "Qot_UpdateBasicQot.proto"]


def elf_machine(path: Path) -> str:
    out = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    return re.search(r"Machine:\s+(.+)", out).group(1).strip()  # type: ignore[union-attr]


def archive_machines(archive: Path, tmp: Path) -> set[str]:
    dest = tmp / archive.name
    dest.mkdir()
    subprocess.run(["ar", "x", str(archive)], cwd=dest, check=True)
    objects = sorted(dest.glob("*.o"))
    assert objects, f"no objects in {archive}"
    return {elf_machine(o) for o in objects}


def cross_consumer(prefix: Path, work: Path) -> Path:
    """test_package cross-compiled for aarch64 against the output, with a small toolchain file as a
    user would write one; the consumer's path."""
    from opend_build import tools

    toolchain = work.parent / "aarch64-toolchain.cmake"
    toolchain.write_text(f"""set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER {TRIPLET}-g++)
set(CMAKE_C_COMPILER {TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE {TRIPLET})
set(CMAKE_FIND_ROOT_PATH "{prefix}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
""")
    env = {**os.environ, "PKG_CONFIG_LIBDIR": f"/usr/lib/{TRIPLET}/pkgconfig:/usr/share/pkgconfig"}
    cmake = tools.cmake(os.environ)
    c = subprocess.run([cmake, "-S", str(ROOT / "test_package"), "-B", str(work), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja(os.environ)}",
                        f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", f"-DCMAKE_PREFIX_PATH={prefix}", "-DLIB=FTAPI"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert c.returncode == 0, c.stdout + c.stderr
    b = subprocess.run([cmake, "--build", str(work)], capture_output=True, text=True, env=env, timeout=900)
    assert b.returncode == 0, b.stdout + b.stderr
    return work / "consumer"


@pytest.mark.build
@on_x86_64
@pytest.mark.skipif(CROSS is None, reason="needs g++-aarch64-linux-gnu (tests/run.py installs it)")
@needs_target_protobuf
def test_aarch64_system_protobuf_build_runs_under_qemu(small_sdk: Path, work: Path, tmp_path: Path) -> None:
    """--protobuf system for aarch64 (Debug, the small SDK): no protobuf is built for either machine;
    Debian's x86-64 protoc generates, the library links Debian's aarch64 libprotobuf, and the
    consumer, cross-compiled against the output, round-trips a message under QEMU."""
    out = work / "out" / "cross-aarch64-system"
    r = must_build("--os", "linux", "--arch", "aarch64", "--sdk", str(small_sdk), "--protobuf", "system", "--out", str(out),
                   summary=tmp_path / "s.json", timeout=1800)
    assert "[protobuf]" not in r.stdout and r.summary is not None and r.summary["phases"].get("protobuf", {}).get("steps", 0) == 0, r.stdout[-2000:]
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["inputs"]["protobuf"]["provider"] == "installed" and manifest["protobuf_version"] == "3.21.12", manifest["inputs"]["protobuf"]
    assert str(TARGET_PROTOBUF) in manifest["inputs"]["protobuf"]["origin"] and manifest["toolchain"]["arch"] == "aarch64"
    bin_dir = out / "Bin/Linux"
    assert not (bin_dir / "protoc").exists() and not (bin_dir / "libprotobuf.a").exists()  # protobuf is the system's: not shipped
    assert archive_machines(bin_dir / "libFTAPI.a", tmp_path) == {"AArch64"}
    exe = cross_consumer(out, tmp_path / "consumer")
    assert elf_machine(exe) == "AArch64"
    needed = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "libprotobuf.so.32" in needed  # Debian's aarch64 runtime, the one the code was generated for
    run = qemu(exe)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "round-trip ok" in run.stdout and "library ok" in run.stdout, run.stdout


def qemu(exe: Path, *args: str, opend: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """An aarch64 program run here: qemu-user with the cross toolchain's libc and loader (-L); the
    environment reaches the guest as it is (OPEND_TEST_OPEND: the OpenD the consumer connects to)."""
    assert QEMU, "qemu-aarch64 is needed (apt-get install qemu-user): tests/run.py installs it"
    env = {k: v for k, v in os.environ.items() if k not in ("OPEND_TEST_OPEND", "OPEND_TEST_RSA_KEY")}
    if opend:
        env["OPEND_TEST_OPEND"] = opend
    # The cross toolchain's libc first: with Debian's multiarch libc6:arm64 installed too (libssl-dev:arm64
    # pulls it in), the guest's loader from -L would otherwise load that libc.so.6, of another patch
    # level, and the two together hang in the first pthread_create.
    return subprocess.run([QEMU, "-L", f"/usr/{TRIPLET}", "-E", f"LD_LIBRARY_PATH=/usr/{TRIPLET}/lib", str(exe), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.mark.build
@on_x86_64
@pytest.mark.skipif(CROSS is None, reason="needs g++-aarch64-linux-gnu (tests/run.py installs it)")
def test_aarch64_build_runs_under_qemu(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path, tmp_path: Path) -> None:
    """The small SDK plus the two protocol files the consumer's connect path needs, built for aarch64
    (Debug): the libraries and the shipped protoc are AArch64, the code was generated by the x86-64
    protoc of the build machine's protobuf, and the consumer runs under QEMU."""
    import sdkfactory

    from opend_build.standin import StandIn

    sdk = sdkfactory.make_sdk(tmp_path / "sdk", "futu", open_inputs["futu"], protobuf_tarball, version="9.4.5418", only=CONNECT_PROTOS)
    out = work / "out" / "cross-aarch64"
    r = must_build("--os", "linux", "--arch", "aarch64", "--sdk", str(sdk), "--out", str(out), summary=tmp_path / "s.json", timeout=2400)
    print(r.stdout[-1500:])
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["toolchain"]["arch"] == "aarch64" and manifest["toolchain"]["cross"] is True
    assert manifest["toolchain"]["host_arch"] == "x86_64"

    # What was built for whom: every object of the archives and the shipped protoc are AArch64.
    bin_dir = out / "Bin/Linux"
    assert elf_machine(bin_dir / "protoc") == "AArch64"
    for lib in ("libFTAPI.a", "libprotobuf.a"):
        assert archive_machines(bin_dir / lib, tmp_path) == {"AArch64"}, lib
    # The code was generated by the build machine's protoc: the SDK's configure names it, and it is x86-64.
    cache = Path(os.environ["OPEND_BUILD_CACHE"]) if os.environ.get("OPEND_BUILD_CACHE") else None
    dry = run_driver("--os", "linux", "--arch", "aarch64", "--sdk", str(sdk), "--out", str(out), "--build-type", "Debug", "--dry-run", "-v")
    host_protoc = Path(re.search(r"^  host protoc: (.+?) \(OPEND_HOST_PROTOC", dry.stdout, re.M).group(1))  # type: ignore[union-attr]  # paths may hold spaces
    assert cache is None or host_protoc.is_relative_to(cache)
    assert elf_machine(host_protoc) == "Advanced Micro Devices X86-64"
    configure = shlex.split(re.search(r"^\[sdk\] configure FTAPI:\n(.*)$", dry.stdout, re.M).group(1))  # type: ignore[union-attr]
    sdk_build = Path(configure[configure.index("-B") + 1])
    ninja = (sdk_build / "build.ninja").read_text()
    assert str(host_protoc) in ninja and str(bin_dir / "protoc") not in ninja
    assert "libprotoc 3.5.1" in subprocess.run([str(host_protoc), "--version"], capture_output=True, text=True).stdout
    assert "libprotoc 3.5.1" in qemu(bin_dir / "protoc", "--version", timeout=60).stdout  # ...and the shipped one runs on aarch64
    # doctor --out reads them as arm64: linkable by the cross compiler (--arch aarch64), not by this machine's own.
    doc = run_driver("doctor", "--arch", "aarch64", "--out", str(out))
    assert doc.returncode == 0 and f"{TRIPLET}-g++: ELF arm64" in doc.stdout and "Bin/Linux/libFTAPI.a: ELF arm64" in doc.stdout, doc.output
    assert "link with this toolchain as they are" in doc.stdout, doc.output
    assert "needs rebuild: architecture arm64, this toolchain targets x86_64" in run_driver("doctor", "--out", str(out)).stdout
    # Where it runs: the newest GLIBC_ version the aarch64 protoc (and channel) need, as readelf reads them.
    floor = manifest["runs_on"]
    by_readelf = {p.relative_to(out).as_posix(): g for p in elf_files(out) if (g := readelf_glibc(p))}
    assert "Bin/Linux/protoc" in by_readelf and floor["files"] == by_readelf and floor["arch"] == "aarch64", floor
    assert floor["glibc"] == max(by_readelf.values(), key=lambda v: tuple(map(int, v.split("."))))
    assert f"runs on:  aarch64 Linux with glibc {floor['glibc']} or newer" in r.stdout
    assert f"runs here: not natively: it needs aarch64 Linux with glibc {floor['glibc']} or newer" in doc.stdout, doc.stdout

    # The consumer, cross-compiled against the output, runs under QEMU.
    exe = cross_consumer(out, tmp_path / "consumer")
    assert elf_machine(exe) == "AArch64"
    run = qemu(exe)
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)
    assert "round-trip ok" in run.stdout and "library ok" in run.stdout, run.stdout

    channel = manifest["channel"]
    if not linux.target_has_openssl("aarch64"):
        assert channel["kind"] == "none", channel  # auto: no aarch64 OpenSSL, no channel, and the build still succeeded
        return
    assert channel["kind"] == "open" and channel["file"] == "Bin/Linux/libFTAPIChannel.so", channel
    assert elf_machine(bin_dir / "libFTAPIChannel.so") == "AArch64"
    assert "channel: open" in run.stdout, run.stdout
    with StandIn(lifetime=120) as s:
        talk = qemu(exe, opend=f"127.0.0.1:{s.port}", timeout=100)
        seen = list(s.connections)
    print(talk.stdout, file=sys.stderr)
    assert talk.returncode == 0, talk.stdout + talk.stderr
    for line in ("connected: connID", "GetGlobalState: serverVer 1001", "push Qot_UpdateBasicQot: 00700"):
        assert line in talk.stdout, talk.stdout
    assert len(seen) == 1 and [p["proto_id"] for p in seen[0]["packets"]][:3] == [1001, 1002, 3001]
