"""Where an output runs: the newest glibc symbol version its executables and shared objects need
(read by elf.py from their bytes, held against binutils' readelf on real files), recorded in the
manifest and the summary, and doctor --out's verdict against this machine's glibc."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Built, run_driver

from opend_build import doctor, elf

READELF = shutil.which("readelf")


def readelf_needs(path: Path) -> dict[str, list[str]]:
    """binutils' reading of the version-needed section: library -> versions, in file order."""
    out = subprocess.run([str(READELF), "-V", "--wide", str(path)], capture_output=True, text=True, check=True).stdout
    needs: dict[str, list[str]] = {}
    section = out.split("Version needs section", 1)[1] if "Version needs section" in out else ""
    current: list[str] = []
    for line in section.splitlines():
        if m := re.search(r"File: (\S+)\s+Cnt:", line):
            current = needs.setdefault(m.group(1), [])
        elif m := re.search(r"Name: (\S+)\s+Flags:", line):
            current.append(m.group(1))
    return needs


def readelf_glibc(path: Path) -> str | None:
    found = [v.removeprefix("GLIBC_") for vs in readelf_needs(path).values() for v in vs if re.fullmatch(r"GLIBC_[\d.]+", v)]
    return max(found, key=lambda v: tuple(map(int, v.split(".")))) if found else None


def elf_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and elf.is_elf(p))


@pytest.mark.skipif(READELF is None, reason="needs binutils' readelf (tests/run.py installs binutils)")
def test_the_elf_reader_reads_what_readelf_reads() -> None:
    """This machine's own executables and libraries, and aarch64 ones where the cross packages are
    installed: the same libraries and versions, in the same order."""
    candidates = [Path(sys.executable).resolve(), Path("/bin/ls"), Path("/usr/bin/cmake"), *Path("/usr/lib/x86_64-linux-gnu").glob("libstdc++.so.6.*"),
                  *Path("/usr/aarch64-linux-gnu/lib").glob("libstdc++.so.6.*"), Path("/usr/lib/aarch64-linux-gnu/libprotobuf.so.32")]
    checked = 0
    for path in (p for p in candidates if p.is_file()):
        mine = elf.version_needs(path.read_bytes())
        assert mine == readelf_needs(path), path
        assert mine and elf.glibc_needed(path.read_bytes()) == readelf_glibc(path), path
        checked += 1
    assert checked >= 3
    # Not dynamic, or not ELF: nothing needed.
    assert elf.version_needs(b"!<arch>\n") == {} and elf.version_needs(Path(__file__).read_bytes()) == {}


def test_runs_here_says_yes_no_and_not_natively() -> None:
    floor = {"glibc": "2.34", "glibc_needed_by": ["Bin/Linux/protoc"], "libstdcxx": "3.4.30", "arch": "x86_64"}
    yes = doctor.runs_here(floor, "linux", glibc="2.36", arch="x86_64")
    assert yes == ("runs here: yes: it needs x86_64 Linux with glibc 2.34 or newer (GLIBC_2.34: Bin/Linux/protoc), "
                   "libstdc++ GLIBCXX_3.4.30 or newer; this machine has glibc 2.36")
    assert doctor.runs_here(floor, "linux", glibc="2.31", arch="x86_64").startswith("runs here: no: ")
    assert "glibc 2.31" in doctor.runs_here(floor, "linux", glibc="2.31", arch="x86_64")
    assert doctor.runs_here(floor, "linux", glibc="2.4", arch="x86_64").startswith("runs here: no: ")  # 2.4 < 2.34: numbers, not text
    cross = doctor.runs_here({**floor, "arch": "aarch64"}, "linux", glibc="2.36", arch="x86_64")
    assert cross.startswith("runs here: not natively: ") and "qemu-aarch64" in cross
    assert doctor.runs_here({"macos": "10.15"}, "linux").startswith("runs here: no: it needs macOS 10.15 or newer")
    assert "records no system floor" in doctor.runs_here(None, "linux")


@pytest.mark.skipif(READELF is None, reason="needs binutils' readelf")
def test_a_build_records_its_glibc_floor(small_built: Built) -> None:
    """The manifest's floor is the newest GLIBC_ version readelf finds in any of the output's ELF
    files, named with the files that need it; the summary says it; doctor --out holds it against
    this machine's glibc, which built it and so runs it."""
    out = small_built.out
    floor = json.loads((out / "build-manifest.json").read_text())["runs_on"]
    by_readelf = {p.relative_to(out).as_posix(): g for p in elf_files(out) if (g := readelf_glibc(p))}
    assert "Bin/Linux/protoc" in by_readelf, by_readelf
    newest = max(by_readelf.values(), key=elf.version_key)
    assert floor["glibc"] == newest and floor["files"] == by_readelf
    assert floor["glibc_needed_by"] == sorted(f for f, v in by_readelf.items() if v == newest)
    assert floor["arch"] == "x86_64" and floor["libstdcxx"].startswith("3.4.")
    assert small_built.summary["runs_on"] == floor
    assert f"  runs on:  x86_64 Linux with glibc {newest} or newer (GLIBC_{newest}: " in small_built.result.stdout
    here = elf.this_glibc()
    assert here and elf.version_key(here) >= elf.version_key(newest)  # built here: this machine's glibc is at least the floor
    doc = run_driver("doctor", "--out", str(out))
    assert doc.returncode == 0, doc.output
    assert f"runs here: yes: it needs x86_64 Linux with glibc {newest} or newer" in doc.stdout and f"this machine has glibc {here}" in doc.stdout


def test_a_macos_plan_states_its_deployment_target_as_the_floor(tmp_path: Path) -> None:
    """No macOS machine here: the plan says the floor the configure sets, and the manifest records it."""
    from opend_build import manifest, options
    from opend_build.inputs import resolve
    from opend_build.plan import Tools, make_plan
    from opend_build.platforms import toolchain_for

    for argv, target in (([], "10.15"), (["--deployment-target", "11.0"], "11.0")):
        opts = options.parse(["--os", "macos", *argv])
        p = make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), Tools("cmake", "ninja"), Path("/w"))
        assert f"-DCMAKE_OSX_DEPLOYMENT_TARGET={target}" in next(s.argv for s in p.steps if s.kind == "configure" and s.phase == "sdk")
        assert f"deployment target {target}: runs on macOS {target} or newer" in p.render()
        floor = manifest.runs_on(p.os, tmp_path, [], p.toolchain.arch, p.toolchain.deployment_target)
        assert floor is not None and floor["macos"] == target
        assert manifest.runs_on_line(floor) == f"macOS {target} or newer (the deployment target)"
