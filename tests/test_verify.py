"""verify: C++ and Python agree on every message of every .proto, both brands; and it can fail."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import Built, run_driver


@pytest.mark.parametrize("brand", ["futu", "moomoo"])
def test_verify_default_outputs(brand: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(f"default_{brand}")
    r = run_driver("verify", "--out", str(built.out))
    assert r.returncode == 0, r.output
    m = re.search(r"ok: (\d+) files, (\d+) messages, (\d+) fields", r.stdout)
    assert m and int(m.group(1)) == 184 and int(m.group(2)) > 900 and int(m.group(3)) > 20000, r.stdout


def test_verify_names_the_mismatch(small_built: Built, tmp_path: Path) -> None:
    """The library was built from one Qot_Sub.proto; Python reads another: verify must say where."""
    out = tmp_path / "out"
    shutil.copytree(small_built.out, out)
    proto = out / "Include/Proto/Qot_Sub.proto"
    proto.write_text(proto.read_text(encoding="utf-8").replace("optional bool isFirstPush = 6;", "optional int32 isFirstPush = 6;"), encoding="utf-8")
    r = run_driver("verify", "--out", str(out))
    assert r.returncode == 13, r.output
    assert "Qot_Sub.C2S" in r.stderr and "isFirstPush" in r.stderr and "Traceback" not in r.output
