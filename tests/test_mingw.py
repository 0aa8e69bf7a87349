"""Windows from Linux (--os windows --compiler mingw): the plan (MinGW-w64 for the target, the build
machine's protoc generating the code, shared with native builds; the vendor's Bin/Windows-x64/<Config>/
shape with MinGW's names), the refusals and what a machine without MinGW is told, and one real
build of a small SDK without a Windows channel, so that opend-build's open channel (Winsock 2 and
CNG, no OpenSSL) ships as FTAPIChannel.dll: its consumer (test_package/) runs under Wine, prints what
it prints on Linux, and talks through the DLL to the stand-in OpenD on this machine's loopback
(Wine's sockets are the host's): InitConnect, GetGlobalState and a push, plain and encrypted."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, must_build, run_driver

from opend_build import host, options
from opend_build.inputs import resolve
from opend_build.plan import Tools, make_plan
from opend_build.platforms import builds_on, toolchain_for, windows

MINGW = shutil.which(windows.MINGW_CXX)
WINE = windows.wine(host.Probe(os.environ))
PE_AMD64 = 0x8664  # IMAGE_FILE_MACHINE_AMD64, in PE and COFF headers alike


def plan_of(*argv: str):  # type: ignore[no-untyped-def]
    opts = options.parse(argv)
    return make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), Tools("cmake", "ninja"), Path("/w"))


def test_mingw_plan_is_a_cross_build_sharing_the_native_protoc() -> None:
    native, p = plan_of("--os", "linux", "--build-type", "Debug"), plan_of("--os", "windows", "--compiler", "mingw", "--build-type", "Debug")
    t = p.toolchain
    assert (t.os, t.compiler, t.arch, t.cross, t.cxx) == ("windows", "mingw", "x86_64", True, windows.MINGW_CXX)
    assert t.host is not None and t.host.key() == native.toolchain.key()
    assert p.host_protobuf_build == native.protobuf_build and p.protobuf_build != native.protobuf_build  # the host's protoc: the native build's
    assert t.bin_dir == t.channel_dir == "Bin/Windows-x64/Debug"  # no MD/MT below: MinGW has one runtime
    configures = [s for s in p.steps if s.kind == "configure" and s.phase == "protobuf"]
    assert [s.build_dir for s in configures] == [str(native.protobuf_build / "tree"), str(p.protobuf_build / "tree")]
    host_cfg, target_cfg = (s.argv for s in configures)
    assert host_cfg == next(s.argv for s in native.steps if s.kind == "configure" and s.phase == "protobuf")
    for flag in ("-DCMAKE_SYSTEM_NAME=Windows", "-DCMAKE_SYSTEM_PROCESSOR=x86_64", f"-DCMAKE_CXX_COMPILER={windows.MINGW_CXX}",
                 f"-DCMAKE_C_COMPILER={windows.MINGW_C}", "-DCMAKE_EXE_LINKER_FLAGS=-static"):
        assert flag in target_cfg and flag not in host_cfg
    assert not any(a.startswith(("-T", "-A", "-DCMAKE_MSVC_RUNTIME_LIBRARY")) for a in target_cfg)  # nothing of MSVC's
    sdk_cfg = next(s.argv for s in p.steps if s.kind == "configure" and s.phase == "sdk")
    for flag in ("-DOPEND_BIN_DIR=Bin/Windows-x64/Debug", "-DOPEND_CHANNEL_DIR=Bin/Windows-x64/Debug", "-DCMAKE_SYSTEM_NAME=Windows",
                 f"-DOPEND_HOST_PROTOC={native.protobuf_build / 'prefix/bin/protoc'}", f"-DOPEND_PROTOBUF_DIR={p.protobuf_build / 'prefix'}"):
        assert flag in sdk_cfg
    assert p.out == Path("/w/out/FTAPI4CPP-windows-x86_64-mingw-protobuf3.5.1-debug")
    text = p.render()
    assert text.startswith("plan: FTAPI (futu 10.11.7108) for windows, Debug")
    assert f"toolchain: mingw (probed on the build host) ({windows.MINGW_CXX})" in text
    assert "target arch: x86_64 (windows, mingw) (cross-compiled on " in text and "CMAKE_SYSTEM_NAME=Windows" in text
    assert "configure protobuf for windows x86_64" in text and "built twice: for " in text
    assert "channel: auto: opend-build's open channel (no SDK); on Winsock 2 and CNG (bcrypt), no OpenSSL" in text  # no OpenSSL needed
    assert "channel: open: " in plan_of("--os", "windows", "--compiler", "mingw", "--channel", "open").render()
    # MSVC keeps its own shape: the static libraries one folder below the DLL's.
    msvc = toolchain_for(options.parse(["--os", "windows", "--build-type", "Debug"]))
    assert (msvc.compiler, msvc.bin_dir, msvc.channel_dir, msvc.cross) == ("msvc", "Bin/Windows-x64/Debug/MD", "Bin/Windows-x64/Debug", False)


def test_windows_builds_on_linux_only_with_mingw() -> None:
    assert builds_on(options.parse(["--os", "windows", "--compiler", "mingw"]), "linux")
    assert not builds_on(options.parse(["--os", "windows"]), "linux")
    assert not builds_on(options.parse(["--os", "windows", "--compiler", "mingw"]), "macos")
    assert builds_on(options.parse(["--os", "windows", "--compiler", "msvc"]), "windows")


@pytest.mark.parametrize("argv,needle", [
    (["--os", "windows", "--compiler", "mingw", "--arch", "x86"], "--compiler mingw builds for Windows x64 only"),
    (["--os", "windows", "--compiler", "mingw", "--toolset", "v143"], "--compiler mingw builds for Windows x64 only"),
    (["--os", "windows", "--compiler", "mingw", "--runtime", "MT"], "--compiler mingw builds for Windows x64 only"),
    (["--os", "linux", "--compiler", "mingw"], "--compiler mingw does not apply to --os linux"),
    (["--os", "windows", "--compiler", "gcc"], "--compiler gcc does not apply to --os windows"),
])
def test_mingw_refusals(argv: list[str], needle: str, tmp_path: Path) -> None:
    r = run_driver(*argv, "--dry-run", "-v", cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr, r.output


def test_mingw_refuses_an_installed_protobuf(tmp_path: Path) -> None:
    """Debian has no MinGW protobuf, and this machine's would not link into Windows programs."""
    r = run_driver("--os", "windows", "--compiler", "mingw", "--protobuf", "system", "--dry-run", "-v", cwd=tmp_path)
    assert r.returncode == 4 and "not supported with --compiler mingw" in r.stderr and "drop --protobuf system" in r.stderr, r.output


def test_windows_without_mingw_on_linux_is_the_wrong_host(tmp_path: Path) -> None:
    if options.host_os() != "linux":
        pytest.skip("MinGW-w64 builds from a Linux machine")
    r = run_driver("--os", "windows", cwd=tmp_path)
    assert r.returncode == 12 and "--compiler mingw" in r.stderr and not (tmp_path / "out").exists(), r.output


def test_dry_run_without_mingw_lists_it_and_a_real_run_exits_6(tmp_path: Path) -> None:
    """A machine without MinGW-w64 (an empty PATH; the host's compiler through CXX): the plan still
    prints and names what is missing; a real run stops before anything with the apt-get line."""
    if options.host_os() != "linux":
        pytest.skip("MinGW-w64 builds from a Linux machine")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {"PATH": str(empty), "CXX": shutil.which("c++") or "/usr/bin/c++"}
    dry = run_driver("--os", "windows", "--compiler", "mingw", "--dry-run", "-v", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.output
    missing = [line for line in dry.stdout.splitlines() if line.startswith("  missing on this machine:")]
    assert len(missing) == 1 and windows.MINGW_CXX in missing[0] and f"apt-get install {windows.MINGW_PACKAGE}" in missing[0], dry.stdout
    assert "target arch: x86_64 (windows, mingw)" in dry.stdout and str(tmp_path / "out" / "FTAPI4CPP-windows-x86_64-mingw-protobuf3.5.1-release") in dry.stdout
    assert len(re.findall(r"^\[protobuf\] configure protobuf", dry.stdout, re.M)) == 2
    real = run_driver("--os", "windows", "--compiler", "mingw", env=env, cwd=tmp_path)
    assert real.returncode == 6, real.output
    assert f"apt-get install {windows.MINGW_PACKAGE}" in real.stderr and not (tmp_path / "out").exists()


# --- the bytes of Windows binaries ----------------------------------------------------------------


def pe_machine(path: Path) -> int:
    """The machine field of a PE file's COFF header (e_lfanew at 0x3c points at "PE\\0\\0")."""
    data = path.read_bytes()
    assert data[:2] == b"MZ", f"{path} is not a PE file"
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    assert data[pe:pe + 4] == b"PE\0\0", f"{path}: no PE signature"
    return struct.unpack_from("<H", data, pe + 4)[0]  # type: ignore[no-any-return]


def _pe_directory(path: Path, index: int) -> tuple[bytes, int, Callable[[int], int]]:
    """A PE32+ file's bytes, the file offset of its data directory `index` and an RVA-to-offset map."""
    data = path.read_bytes()
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    sections, opt_size = struct.unpack_from("<H12xH", data, pe + 6)
    opt = pe + 24
    assert struct.unpack_from("<H", data, opt)[0] == 0x20B, f"{path} is not PE32+"
    rva = struct.unpack_from("<I", data, opt + 112 + 8 * index)[0]

    def offset(rva: int) -> int:
        for i in range(sections):
            vsize, vaddr, rsize, raw = struct.unpack_from("<4I", data, opt + opt_size + 40 * i + 8)
            if vaddr <= rva < vaddr + max(vsize, rsize):
                return rva - vaddr + raw
        raise AssertionError(f"{path}: RVA {rva:#x} in no section")

    return data, offset(rva), offset


def _cstr(data: bytes, at: int) -> str:
    return data[at:data.index(b"\0", at)].decode()


def pe_imports(path: Path) -> list[str]:
    """The DLL names of a PE32+ file's import directory (data directory 1)."""
    data, at, offset = _pe_directory(path, 1)
    names = []
    while (name_rva := struct.unpack_from("<I", data, at + 12)[0]) != 0:
        names.append(_cstr(data, offset(name_rva)))
        at += 20
    return names


def pe_exports(path: Path) -> list[str]:
    """The names a PE32+ DLL exports (data directory 0: NumberOfNames at +24, AddressOfNames at +32)."""
    data, at, offset = _pe_directory(path, 0)
    count, names_rva = struct.unpack_from("<I", data, at + 24)[0], struct.unpack_from("<I", data, at + 32)[0]
    table = offset(names_rva)
    return [_cstr(data, offset(struct.unpack_from("<I", data, table + 4 * i)[0])) for i in range(count)]


def archive_machines(archive: Path) -> set[int]:
    """The COFF machine of every object in a GNU ar archive (lib*.a), read from the archive itself."""
    data = archive.read_bytes()
    assert data[:8] == b"!<arch>\n", f"{archive} is not an ar archive"
    found, at = set(), 8
    while at + 60 <= len(data):
        name, size = data[at:at + 16].decode().strip(), int(data[at + 48:at + 58].decode().strip())
        if name not in ("/", "//", "/SYM64/"):  # the symbol and long-name tables
            found.add(struct.unpack_from("<H", data, at + 60)[0])
        at += 60 + size + (size & 1)
    assert found, f"no objects in {archive}"
    return found


# --- one real build, its consumer under Wine --------------------------------------------------------

CONNECT_PROTOS = ["Common.proto", "Qot_Common.proto", "Qot_Sub.proto", "GetGlobalState.proto", "Qot_UpdateBasicQot.proto"]
needs_mingw_and_wine = pytest.mark.skipif(MINGW is None or WINE is None,
                                          reason=f"needs {windows.MINGW_PACKAGE} and {windows.WINE_PACKAGE} (tests/run.py installs them)")


class Wine:
    """Wine with a prefix of its own (made on first start) and no debug output; every run bounded."""

    def __init__(self, prefix: Path) -> None:
        self.env = {**os.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": "-all"}
        for k in ("OPEND_TEST_OPEND", "OPEND_TEST_RSA_KEY", "WINEPATH"):
            self.env.pop(k, None)

    def run(self, exe: Path, *args: str, timeout: int = 300, **env: str) -> subprocess.CompletedProcess[str]:
        assert WINE is not None
        return subprocess.run([WINE, str(exe), *args], capture_output=True, text=True, env={**self.env, **env}, timeout=timeout)

    def stop(self) -> None:
        server = shutil.which("wineserver") or "/usr/lib/wine/wineserver"
        subprocess.run([server, "-k"], env=self.env, capture_output=True, timeout=60)
        subprocess.run([server, "-w"], env=self.env, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def wine() -> Iterator[Wine]:
    prefix = Path(tempfile.mkdtemp(prefix="opend-wine-"))
    w = Wine(prefix)
    try:
        yield w
    finally:
        w.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def windows_path(path: Path) -> str:
    """A Linux path as Windows programs under Wine see it (Z: is /)."""
    return "Z:" + str(path).replace("/", "\\")


@pytest.fixture(scope="module")
def mingw_build(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path) -> dict[str, Path]:
    """The small SDK with the connection wrapper and no Windows channel (so the open one is built),
    built for Windows x64 (Debug), and test_package built against the output by MinGW-w64."""
    import sdkfactory

    from opend_build import tools

    sdk = sdkfactory.make_sdk(work / "sdk-mingw", "futu", open_inputs["futu"], protobuf_tarball, version="9.4.5418", only=CONNECT_PROTOS, conn=True)
    assert MINGW is not None
    out = work / "out" / "mingw"
    r = must_build("--os", "windows", "--compiler", "mingw", "--sdk", str(sdk), "--out", str(out), summary=work / "mingw.summary.json", timeout=2400)
    print(r.stdout[-1500:])
    consumer = work / "consumer-mingw"
    cmake = tools.cmake(os.environ)
    c = subprocess.run([cmake, "-S", str(ROOT / "test_package"), "-B", str(consumer), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja(os.environ)}",
                        "-DCMAKE_SYSTEM_NAME=Windows", "-DCMAKE_SYSTEM_PROCESSOR=x86_64", f"-DCMAKE_CXX_COMPILER={MINGW}",
                        "-DCMAKE_EXE_LINKER_FLAGS=-static", f"-DCMAKE_PREFIX_PATH={out}", "-DLIB=FTAPI"],
                       capture_output=True, text=True, timeout=600)
    assert c.returncode == 0, c.stdout + c.stderr
    b = subprocess.run([cmake, "--build", str(consumer)], capture_output=True, text=True, timeout=900)
    assert b.returncode == 0, b.stdout + b.stderr
    return {"sdk": sdk, "out": out, "exe": consumer / "consumer.exe"}


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    from Crypto.PublicKey import RSA  # pycryptodome, which the official client depends on

    return RSA.generate(1024).export_key(pkcs=1).decode()


@pytest.mark.build
@needs_mingw_and_wine
def test_mingw_build_runs_under_wine(mingw_build: dict[str, Path], wine: Wine) -> None:
    out, exe = mingw_build["out"], mingw_build["exe"]
    bin_dir = out / "Bin" / "Windows-x64" / "Debug"
    # The vendor's Windows shape with MinGW's names: the static libraries, the shipped protoc and the
    # channel (opend-build's: DLL and import library under the vendor's names, its static archive)
    # side by side; no MD/MT below, nothing of Linux's.
    assert sorted(p.name for p in bin_dir.iterdir()) == ["FTAPIChannel.dll", "FTAPIChannel.lib", "libFTAPI.a", "libFTAPIChannelStatic.a",
                                                         "libprotobuf.a", "protoc.exe"]
    assert sorted(p.name for p in (out / "Bin").iterdir()) == ["Windows-x64"]
    for lib in ("libFTAPI.a", "libprotobuf.a", "libFTAPIChannelStatic.a"):
        assert archive_machines(bin_dir / lib) == {PE_AMD64}, lib
    for binary in (bin_dir / "protoc.exe", bin_dir / "FTAPIChannel.dll", exe):
        assert pe_machine(binary) == PE_AMD64, binary
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["os"] == "windows" and manifest["build_type"] == "Debug"
    t = manifest["toolchain"]
    assert (t["compiler"], t["arch"], t["cross"], t["host_arch"]) == ("mingw", "x86_64", True, "x86_64"), t
    channel = manifest["channel"]
    assert (channel["kind"], channel["file"], channel["planned"]) == ("open", "Bin/Windows-x64/Debug/FTAPIChannel.dll", "auto"), channel
    # The DLL exports the C API only and needs nothing but Windows' own DLLs (no OpenSSL, no MinGW runtime).
    exported = pe_exports(bin_dir / "FTAPIChannel.dll")
    assert {"FTAPIChannel_InitConnect", "FTAPIChannel_SendProto", "CreateFTAPIChannel", "ReleaseFTAPIChannel"} <= set(exported), exported
    assert all(n.startswith(("FTAPIChannel_", "CreateFTAPIChannel", "ReleaseFTAPIChannel")) for n in exported), exported
    dll_imports = {n.lower() for n in pe_imports(bin_dir / "FTAPIChannel.dll")}
    assert {"ws2_32.dll", "bcrypt.dll"} <= dll_imports and not any(n.startswith(("libssl", "libcrypto", "libstdc++", "libgcc", "libwinpthread"))
                                                                 for n in dll_imports), dll_imports

    # The code was generated by the build machine's protoc (the native build's); the shipped one runs under Wine.
    dry = run_driver("--os", "windows", "--compiler", "mingw", "--sdk", str(mingw_build["sdk"]), "--out", str(out), "--build-type", "Debug", "--dry-run", "-v")
    host_protoc = Path(re.search(r"^  host protoc: (.+?) \(OPEND_HOST_PROTOC", dry.stdout, re.M).group(1))  # type: ignore[union-attr]
    native = run_driver("--os", "linux", "--sdk", str(mingw_build["sdk"]), "--build-type", "Debug", "--dry-run", "-v")
    assert f"-B {shlex.quote(str(host_protoc.parents[2] / 'tree'))} " in native.stdout  # the very protobuf build a native build makes
    configure = shlex.split(re.search(r"^\[sdk\] configure FTAPI:\n(.*)$", dry.stdout, re.M).group(1))  # type: ignore[union-attr]
    ninja = (Path(configure[configure.index("-B") + 1]) / "build.ninja").read_text()
    assert str(host_protoc) in ninja and "protoc.exe" not in ninja
    version = wine.run(bin_dir / "protoc.exe", "--version")  # first start: Wine makes its prefix
    assert version.returncode == 0 and version.stdout.strip() == "libprotoc 3.5.1", version.stdout + version.stderr

    # The consumer links the channel's import library: it imports the DLL (and, linked -static, no MinGW runtime DLL).
    imports = pe_imports(exe)
    assert "FTAPIChannel.dll" in imports and not any(n.startswith(("libstdc++", "libgcc", "libwinpthread")) for n in imports), imports
    alone = wine.run(exe, timeout=120)  # without the DLL on its path Windows' loader refuses it
    assert alone.returncode != 0 and "round-trip ok" not in alone.stdout, alone.stdout + alone.stderr
    run = wine.run(exe, timeout=120, WINEPATH=windows_path(bin_dir))
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.replace("\r\n", "\n") == ("round-trip ok: 19 bytes\nlibrary ok: stand-in FTAPI for opend-build tests\n"
                                                "channel: open (set OPEND_TEST_OPEND=host:port to connect)\n"), run.stdout  # as on Linux


@pytest.mark.build
@needs_mingw_and_wine
@pytest.mark.parametrize("mode", ["plain", "rsa-cbc", "rsa-ecb"])
def test_mingw_consumer_connects_under_wine(mode: str, mingw_build: dict[str, Path], wine: Wine, rsa_pem: str) -> None:
    """consumer.exe under Wine, through the open channel's DLL, to the stand-in OpenD on loopback: the
    SDK's own connection wrapper first, then `build.py verify`'s connect code; as on Linux (test_connect.py)."""
    from opend_build.standin import StandIn

    key = rsa_pem if mode != "plain" else None
    with StandIn(rsa_key_pem=key, aes="ecb" if mode == "rsa-ecb" else "cbc", lifetime=90) as s:
        env = {"WINEPATH": windows_path(mingw_build["out"] / "Bin" / "Windows-x64" / "Debug"), "OPEND_TEST_OPEND": f"127.0.0.1:{s.port}",
               **({"OPEND_TEST_RSA_KEY": key} if key else {})}
        r = wine.run(mingw_build["exe"], timeout=120, **env)
        seen = list(s.connections)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("sdk conn: connected, connID ", "sdk conn: GetGlobalState serverVer 1001", "sdk conn: push Qot_UpdateBasicQot 00700",
                 "connected: connID ", "GetGlobalState: serverVer 1001", "push Qot_UpdateBasicQot: 00700"):
        assert line in r.stdout, r.stdout
    assert len(seen) == 2 and all([p["proto_id"] for p in c["packets"]][:3] == [1001, 1002, 3001] for c in seen), seen
    want_aes = {"plain": None, "rsa-cbc": "cbc", "rsa-ecb": "ecb"}[mode]
    assert all(c["rsa"] is (key is not None) and c["aes"] == want_aes for c in seen), seen
