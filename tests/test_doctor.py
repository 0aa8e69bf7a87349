"""doctor answers what the build would do: it plans with the build's own planning, so it stops where
the build stops, with the same message and exit code, and names the option the user typed; it says
what the channel needs for the target; and no file in an SDK or an output makes it fail."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_driver

from opend_build import doctor

# Files that are not the libraries their names say: truncated, garbage, or lying headers.
ODD_FILES = {
    "empty.so": b"",
    "elf4.so": b"\x7fELF",
    "elf6.so": b"\x7fELF\x02\x01",
    "elf19.so": b"\x7fELF\x02\x01\x01" + b"\x00" * 12,
    "mz.dll": b"MZ",
    "mz-far.dll": b"MZ" + b"\x00" * 58 + (0x7FFFFFFF).to_bytes(4, "little"),
    "mz-short-pe.dll": b"MZ" + b"\x00" * 58 + (64).to_bytes(4, "little") + b"PE\x00\x00\x64",
    "fat-huge.dylib": b"\xca\xfe\xba\xbe\xff\xff\xff\xff" + b"\x01" * 30,
    "macho4.dylib": b"\xcf\xfa\xed\xfe",
    "coff2.lib": b"\x64\x86",
    "ar-only.a": b"!<arch>\n",
    "ar-bad-size.a": b"!<arch>\n" + b"x.o/" + b" " * 44 + b"zz" + b" " * 8 + b"`\n",
    "ar-bsd-bad-name.a": b"!<arch>\n" + b"#1/zz".ljust(48) + b"10".ljust(10) + b"`\n" + b"a" * 10,
    "ar-huge-member.a": b"!<arch>\n" + b"x.o/".ljust(48) + b"9999999999`\n" + b"\x7fELF",
    "all-bytes.so": bytes(range(256)),
}


def odd_files(folder: Path, seed: int = 27, count: int = 300) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, data in ODD_FILES.items():
        (folder / name).write_bytes(data)
        made.append(folder / name)
    rnd = random.Random(seed)
    prefixes = [b"\x7fELF", b"MZ", b"!<arch>\n", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b""]
    for i in range(count):  # each known start followed by random bytes of random lengths
        data = rnd.choice(prefixes) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 120)))
        (folder / f"random{i}.so").write_bytes(data)
        made.append(folder / f"random{i}.so")
    return made


def test_inspect_takes_any_file(tmp_path: Path) -> None:
    local = doctor.Facts("c++", "ELF", ("x86_64",), "libstdc++ (new __cxx11 ABI)")
    for f in odd_files(tmp_path):
        facts = doctor.inspect(f)
        ok, why = doctor.verdict(facts, local)
        assert facts.format in ("ELF", "Mach-O", "COFF", "unknown"), (f.name, facts)
        assert ok is not bool(why)
    assert doctor.inspect(tmp_path / "elf4.so").format == "unknown" and doctor.inspect(tmp_path / "mz.dll").format == "unknown"
    assert len(doctor.inspect(tmp_path / "fat-huge.dylib").archs) == 1  # as many entries as the file holds, not 4 billion
    unreadable = tmp_path / "gone.so"
    unreadable.symlink_to(tmp_path / "nowhere")
    assert doctor.inspect(unreadable).stdlib.startswith("unreadable: ")


def fake_sdk(root: Path) -> Path:
    """An FTAPI4CPP folder planning accepts (one protocol file), whose Bin/ holds odd files."""
    sdk = root / "FTAPI4CPP_9.4.5418"
    (sdk / "Include" / "Proto").mkdir(parents=True)
    (sdk / "Include" / "Proto" / "Common.proto").write_text('syntax = "proto2";\npackage Common;\n')
    (sdk / "Include" / "FTAPI.h").write_text("#pragma once\n")
    bin_dir = sdk / "Bin" / "Ubuntu16.04"
    bin_dir.mkdir(parents=True)
    for name, data in ODD_FILES.items():
        (bin_dir / f"lib{name}" if name.endswith((".so", ".a")) else bin_dir / name).write_bytes(data)
    (bin_dir / "libFTAPI.a").write_bytes(b"\x7fELF")  # a truncated 4-byte library, as the issue found
    (sdk / "build-manifest.json").write_bytes(b"\xff\x00 not json")
    return sdk


def fake_output(out: Path) -> Path:
    """An output folder doctor takes for opend-build's: a manifest, and odd files in Bin/Linux."""
    odd_files(out / "Bin" / "Linux", count=40)
    (out / "build-manifest.json").write_text(json.dumps({"lib": "FTAPI"}))
    return out


def no_traceback(r) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output


def test_doctor_reads_odd_sdk_and_output_files_without_failing(tmp_path: Path) -> None:
    """--sdk A --out B: both are read (B is where the build would publish), neither fails doctor."""
    sdk, out = fake_sdk(tmp_path / "sdk"), fake_output(tmp_path / "out")
    r = run_driver("doctor", "--sdk", str(sdk), "--out", str(out))
    no_traceback(r)
    assert r.returncode == 0, r.output
    assert f"libraries of {sdk}, against the build's compiler" in r.stdout and f"libraries of {out}, against the build's compiler" in r.stdout
    assert "Bin/Ubuntu16.04/libFTAPI.a: unknown" in r.stdout and "needs rebuild: object format unknown" in r.stdout, r.stdout
    assert f"out: {out}: an opend-build output: the build replaces it" in r.stdout
    assert "runs here: the manifest records no system floor" in r.stdout
    assert "runs here: unknown: build-manifest.json does not read as JSON" in r.stdout


def test_doctor_out_is_where_the_build_would_publish(tmp_path: Path) -> None:
    """`doctor --out X` names X as the output folder (not as --sdk); a new folder is what the build creates."""
    new = tmp_path / "nonexistent"
    r = run_driver("doctor", "--out", str(new))
    no_traceback(r)
    assert r.returncode == 0 and "--sdk" not in r.output, r.output
    assert f"out: {new}: not there yet: the build creates it" in r.stdout and not new.exists()
    assert f"verdict: this machine builds the SDK: python build.py --os linux --build-type Release --out {new}" in r.stdout, r.stdout


def path_without(tmp_path: Path, *missing: str) -> dict[str, str]:
    """A PATH with this machine's compilers and binutils but not `missing`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("g++", "gcc", "c++", "cc", "clang++", "clang", "ld", "as", "ar", "aarch64-linux-gnu-g++", "aarch64-linux-gnu-gcc",
                 "x86_64-w64-mingw32-g++-posix", "x86_64-w64-mingw32-gcc-posix", "protoc"):
        found = shutil.which(name)
        if found and name not in missing:
            (bin_dir / name).symlink_to(found)
    return {"PATH": f"{bin_dir}:{Path(sys.executable).parent}"}


@pytest.mark.parametrize("case", ["windows", "aarch64-no-cross", "clang-missing", "protobuf-path", "protobuf-system", "sdk-missing", "out-not-ours",
                                  "mingw-missing"])
def test_doctor_stops_where_the_build_stops(case: str, tmp_path: Path) -> None:
    """The same planning: doctor's exit code and error are the build's (which stops before running
    anything); doctor prints what it found first, and names the option that was given."""
    env: dict[str, str] = {}
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("not ours")
    args, code, needle = {
        "windows": (["--os", "windows"], 12, "--os windows cannot be built on this linux machine"),
        "aarch64-no-cross": (["--arch", "aarch64"], 6, "--arch aarch64: no cross compiler aarch64-linux-gnu-g++ on PATH"),
        "clang-missing": (["--compiler", "clang"], 6, "no C++ compiler found (looked for clang++)"),
        "protobuf-path": (["--protobuf", str(tmp_path / "no-protobuf")], 4, f"--protobuf {tmp_path / 'no-protobuf'}"),
        "protobuf-system": (["--protobuf", "system"], 4, "--protobuf system"),
        "sdk-missing": (["--sdk", str(tmp_path / "no-sdk"), "--out", str(tmp_path / "o")], 3, f"--sdk {tmp_path / 'no-sdk'} does not exist"),
        "out-not-ours": (["--out", str(stray)], 2, f"--out {stray} exists and was not made by opend-build"),
        "mingw-missing": (["--os", "windows", "--compiler", "mingw"], 6, "x86_64-w64-mingw32-g++-posix"),
    }[case]
    if case in ("aarch64-no-cross", "clang-missing", "mingw-missing"):
        env = path_without(tmp_path, "aarch64-linux-gnu-g++", "clang++", "x86_64-w64-mingw32-g++-posix")
    if case == "protobuf-system":  # an installed protobuf whose protoc is of another version: the build refuses it
        from test_protobuf import system_like

        env = system_like(tmp_path / "usr", protoc_says="libprotoc 3.19.0")
    doc = run_driver("doctor", *args, env=env)
    no_traceback(doc)
    assert doc.returncode == code and needle in doc.stderr, doc.output
    assert "would stop here: " in doc.stdout and f"(exit {code})" in doc.stdout
    build = run_driver(*args, "--build-type", "Debug", env=env, timeout=120)  # stops in planning, or at the runner's first check (--out)
    assert (build.returncode, build.stderr) == (doc.returncode, doc.stderr), build.output
    if case in ("aarch64-no-cross", "mingw-missing", "clang-missing"):
        assert "missing on this machine: " in doc.stdout, doc.stdout


def test_openssl_found_as_cmake_would_for_the_target(tmp_path: Path) -> None:
    def lay(root: Path, *files: str) -> Path:
        for f in files:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_bytes(b"")
        return root

    debian = lay(tmp_path / "debian", "usr/include/openssl/evp.h", "usr/include/x86_64-linux-gnu/openssl/configuration.h",
                 "usr/lib/x86_64-linux-gnu/libcrypto.so")
    fedora = lay(tmp_path / "fedora", "usr/include/openssl/evp.h", "usr/lib64/libcrypto.so")
    headers_only = lay(tmp_path / "headers", "usr/include/openssl/evp.h")
    arm = lay(tmp_path / "arm", "usr/include/openssl/evp.h", "usr/include/aarch64-linux-gnu/openssl/configuration.h",
              "usr/lib/aarch64-linux-gnu/libcrypto.a")
    own = lay(tmp_path / "own", "include/openssl/evp.h", "lib/libcrypto.so")

    def found(arch: str, cross: bool, root: Path, env: dict[str, str] | None = None) -> Path | None:
        return doctor.openssl_found(arch, cross, doctor.openssl_prefixes(env or {}, cross, root))

    assert found("x86_64", False, debian) == debian / "usr/lib/x86_64-linux-gnu/libcrypto.so"
    assert found("x86_64", False, fedora) == fedora / "usr/lib64/libcrypto.so"
    assert found("x86_64", False, headers_only) is None
    assert found("aarch64", True, arm) == arm / "usr/lib/aarch64-linux-gnu/libcrypto.a"
    assert found("aarch64", True, debian) is None  # the host's OpenSSL does not link for aarch64
    assert found("aarch64", True, fedora) is None  # not in the target's multiarch folders
    assert found("x86_64", False, headers_only, {"OPENSSL_ROOT_DIR": str(own)}) == own / "lib/libcrypto.so"
    assert found("aarch64", True, headers_only, {"OPENSSL_ROOT_DIR": str(own)}) is None  # a cross build takes the target's only


def test_channel_needs_says_the_install_line() -> None:
    lib = Path("/usr/lib/x86_64-linux-gnu/libcrypto.so")
    assert doctor.channel_needs("auto", "linux", "x86_64", False, lib) == (
        "ok", f"channel: opend-build's open channel: OpenSSL's libcrypto for x86_64: {lib}")
    state, line = doctor.channel_needs("auto", "linux", "x86_64", False, None)
    assert state == "none" and line.startswith("channel: none would be shipped") and line.endswith("to have one: apt-get install libssl-dev")
    state, line = doctor.channel_needs("auto", "linux", "aarch64", True, None)
    assert state == "none" and line.endswith("dpkg --add-architecture arm64 && apt-get update && apt-get install libssl-dev:arm64")
    state, line = doctor.channel_needs("open", "linux", "aarch64", True, None)
    assert state == "fails" and "--channel open needs OpenSSL's libcrypto 3 for aarch64" in line and "libssl-dev:arm64" in line
    assert doctor.channel_needs("auto", "windows", "x86_64", True, None)[0] == "ok"  # Winsock 2 and CNG: nothing to install
    assert "nothing to install" in doctor.channel_needs("open", "windows", "x86_64", True, None)[1]
    assert doctor.channel_needs("vendor", "linux", "x86_64", False, None) == ("ok", "channel: the SDK's own (vendor): nothing to install")


@pytest.mark.parametrize("args,line", [
    ([], "channel: opend-build's open channel: OpenSSL's libcrypto for x86_64: /usr/lib/x86_64-linux-gnu/libcrypto."),
    (["--arch", "aarch64"], "channel: opend-build's open channel: OpenSSL's libcrypto for aarch64: /usr/lib/aarch64-linux-gnu/libcrypto."),
    (["--os", "windows", "--compiler", "mingw"], "channel: opend-build's open channel, on Winsock 2 and CNG (the system's): nothing to install"),
])
def test_doctor_checks_what_the_channel_needs_here(args: list[str], line: str) -> None:
    """On the suite's machine (tests/run.py installs libssl-dev and libssl-dev:arm64, the cross compilers)."""
    r = run_driver("doctor", *args)
    assert r.returncode == 0, r.output
    assert line in r.stdout, r.stdout
    assert "verdict: this machine builds the SDK: python build.py " in r.stdout, r.stdout


def test_doctor_plans_the_options_the_build_would(tmp_path: Path) -> None:
    """--cache sccache: the build's sccache is named as needed; --protobuf system: the installed one is this build's."""
    r = run_driver("doctor", "--cache", "sccache")
    assert r.returncode == 0 and "  sccache: " in r.stdout and "this build does not use it" not in r.stdout, r.output
    assert "verdict: this machine builds the SDK: python build.py --os linux --build-type Release --cache sccache" in r.stdout
    system = run_driver("doctor", "--protobuf", "system")
    assert system.returncode == 0 and "protobuf of this build: 3.21.12, installed" in system.stdout, system.output


def test_doctor_cache_sccache_without_sccache_stops_as_the_build(tmp_path: Path) -> None:
    """A Python without sccache (a venv that sees this one's packages but has no sccache script),
    and no sccache on PATH: --cache sccache stops doctor and the build alike (exit 6)."""
    from conftest import make_venv

    bin_dir = make_venv(tmp_path / "venv", system_site=True)
    env = {**path_without(tmp_path, "sccache"), "PATH": f"{tmp_path / 'bin'}:{bin_dir}"}
    driver = [str(bin_dir / "python"), str(ROOT / "build.py")]
    doc = subprocess.run([*driver, "doctor", "--cache", "sccache"], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    build = subprocess.run([*driver, "--cache", "sccache", "--build-type", "Debug"], capture_output=True, text=True, env={**os.environ, **env},
                           timeout=120)
    assert doc.returncode == 6 and "--cache sccache: sccache not found" in doc.stderr, doc.stdout + doc.stderr
    assert (build.returncode, build.stderr) == (doc.returncode, doc.stderr), build.stdout + build.stderr
    assert "sccache: not installed" in doc.stdout
