"""Byte-for-byte reproducible outputs, and `verify --reproduce`, which rebuilds an output from the
inputs its manifest records in a fresh cache and output folder and compares every file.

One rebuild of the small SDK (Debug) serves both facts: it runs under another HOME, another
umask and another cache and output folder than the session's build, at another time, and every
file but the one the test edited comes out byte-identical; the edited one is named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Built, suite_args


def test_verify_reproduce_rebuilds_byte_for_byte_and_names_an_edited_file(small_built: Built, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "FTAPI4CPP"
    shutil.copytree(small_built.out, out, symlinks=True)
    edited = out / "Include" / "Proto" / "Qot_Sub.pb.h"
    edited.write_text(edited.read_text() + "// edited after the build\n")
    home = tmp_path / "another home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("OPEND_BUILD_CACHE", None)  # the rebuild makes its own fresh cache anyway
    cmd = [sys.executable, str(ROOT / "build.py"), *suite_args(("verify", "--reproduce", "--out", str(out)))]
    r = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", *cmd], capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 13, r.stdout + r.stderr
    named = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    assert named == ["Include/Proto/Qot_Sub.pb.h: differs from the rebuild (changed since it was published)"], r.stdout
    assert "1 of " in r.stderr and "files do not reproduce" in r.stderr


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
