"""Byte-for-byte reproducible outputs, and `verify --reproduce`, which rebuilds an output from the
inputs its manifest records in a fresh cache and output folder and compares every file.

Two session builds are rebuilt so, each once: the small SDK in Debug and in Release (the suite's
one optimised build). Each rebuild runs in other folders (a fresh cache and output folder), under
another HOME, another umask and another clock than the session's build: `faketime` (Debian's
libfaketime) moves its clock 400 days on (Debug) or 3 years on (Release), so anything that writes
the time or the date into an output (__DATE__ in a source, a tool stamping what it writes) shows
as a difference, not only what changes from one minute to the next. In Debug one file was edited
after the build, and the rebuild must name it and nothing else; in Release every file must match."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Built, run_driver, suite_args


def rebuild(out: Path, home: Path, umask: str, clock: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`verify --reproduce --out OUT` under HOME, umask and a clock `clock` ahead (faketime's
    offset: "+400d"). Files keep the kernel's times (NO_FAKE_STAT: with stat() faked too, Ninja sees
    CMake's files forever newer than its manifest and regenerates until it gives up) and monotonic
    clocks stay real (timeouts and lock waits keep their meaning)."""
    faketime = shutil.which("faketime")
    assert faketime, "faketime is needed (apt-get install faketime): tests/run.py installs it"
    home.mkdir(parents=True)
    full = {**os.environ, **(env or {}), "HOME": str(home), "DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1"}
    full.pop("OPEND_BUILD_CACHE", None)  # the rebuild makes its own fresh cache anyway
    full.pop("SOURCE_DATE_EPOCH", None)  # the manifest says which one the build had
    cmd = [faketime, "-f", clock, sys.executable, str(ROOT / "build.py"), *suite_args(("verify", "--reproduce", "--out", str(out)))]
    return subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "sh", *cmd], capture_output=True, text=True, env=full, timeout=1800)


def test_verify_reproduce_rebuilds_byte_for_byte_and_names_an_edited_file(small_built: Built, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "FTAPI4CPP"
    shutil.copytree(small_built.out, out, symlinks=True)
    edited = out / "Include" / "Proto" / "Qot_Sub.pb.h"
    edited.write_text(edited.read_text() + "// edited after the build\n")
    r = rebuild(out, tmp_path / "another home", "077", "+400d")
    assert r.returncode == 13, r.stdout + r.stderr
    named = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    assert named == ["Include/Proto/Qot_Sub.pb.h: differs from the rebuild (changed since it was published)"], r.stdout + r.stderr
    assert "1 of " in r.stderr and "files do not reproduce" in r.stderr


def test_release_rebuilds_byte_for_byte(small_release: Built, tmp_path: Path) -> None:
    """The Release output, rebuilt with the same CMake (Debian's 3.2x) under umask 027 and a clock
    three years on: every file, libraries, protoc, headers and the CMake package, is identical."""
    recorded = small_release.out / "build-manifest.json"
    before = recorded.read_bytes()
    r = rebuild(small_release.out, tmp_path / "third home", "027", "+1096d", env={"OPEND_BUILD_CMAKE": str(shutil.which("cmake", path="/usr/bin"))})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "files rebuilt byte for byte from the recorded inputs" in r.stdout, r.stdout
    n = int(r.stdout.split("verify: ok: all ")[1].split()[0])
    assert n >= 20 and recorded.read_bytes() == before  # the rebuild went elsewhere: the output is untouched


def test_differences_name_each_kind_of_file(tmp_path: Path) -> None:
    from opend_build.sources import sha256_file
    from opend_build.verify import differences_from

    (tmp_path / "same").write_text("a")
    (tmp_path / "edited").write_text("b")
    (tmp_path / "rebuilt-differently").write_text("c")
    same, edited, other = (sha256_file(tmp_path / n) for n in ("same", "edited", "rebuilt-differently"))
    recorded = {"same": same, "edited": "0" * 64, "rebuilt-differently": other, "gone": "1" * 64, "not-rebuilt": same}
    rebuilt = {"same": same, "edited": "0" * 64, "rebuilt-differently": "2" * 64, "gone": "1" * 64}
    assert differences_from(recorded, tmp_path, rebuilt) == [
        "edited: differs from the rebuild (changed since it was published)", "gone: missing from " + str(tmp_path),
        "not-rebuilt: not made by the rebuild", "rebuilt-differently: differs from the rebuild"]


def test_verify_reproduce_says_why_a_package_managers_tree_cannot_be_rebuilt(tmp_path: Path) -> None:
    """A pip wheel's or Conan package's tree records no argv (its configure was not the driver's):
    verify --reproduce says so and what to do, exit 13, instead of blaming an old opend-build."""
    (tmp_path / "build-manifest.json").write_text(json.dumps({"lib": "FTAPI", "outputs": [],
                                                               "reproducibility": {"argv": None, "path_maps": False, "toolchain_key": None}}))
    r = run_driver("verify", "--reproduce", "--out", str(tmp_path))
    assert r.returncode == 13, r.output
    assert "configure without the driver" in r.stderr and "python build.py" in r.stderr
