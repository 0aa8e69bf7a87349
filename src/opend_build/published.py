"""The publish record: what lets a no-op run leave the output alone.

Installing lays the whole output (70 MB for futu's 184 files) out in a staging folder and swaps
it in (staging starts as hard links to the output's files, so only what changed is copied, but
every file is still listed, compared and described); when nothing was rebuilt that is most of a
no-op run. After each publish the runner
records, in the SDK's build folder, the state the output was made from and the size and mtime
of every file in it. The next run skips install and publish when both still hold: no edge ran
in the build folders since (Ninja logs every edge it runs, a reconfigure included), their CMake
caches, the inputs and the install steps are the same, and the output was not touched.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import __version__
from .steps import Published


def _stat(p: Path) -> list[int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _edges_run(ninja_log: Path) -> str | None:
    """Digest of Ninja's log of edges run, but for the glob check CMake's CONFIGURE_DEPENDS runs every time."""
    try:
        lines = ninja_log.read_bytes().splitlines()
    except OSError:
        return None
    return hashlib.sha256(b"\n".join(line for line in lines if b"cmake.verify_globs\t" not in line)).hexdigest()


def source_state(plan) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the output is made from: changes whenever a rebuild, a reconfigure or new inputs could change it."""
    folders = sorted({s.build_dir for s in plan.steps if s.kind == "build"})
    return {
        "tool": __version__,
        "inputs": plan.inputs.record,
        # The steps it skips, as data: rewording a step's title changes nothing.
        "steps": [[list(s.argv), [list(e) for e in s.env], [list(a) for a in s.args], s.action.value if s.action else s.kind]
                  for s in plan.steps if isinstance(s.skip_when, Published)],
        "build": {d: [_edges_run(Path(d) / ".ninja_log"), _stat(Path(d) / "CMakeCache.txt")] for d in folders},
        "channel_libs": {str(c): _stat(c) for c in plan.inputs.channel_libs},
    }


def out_state(out: Path) -> dict[str, list[int] | None]:
    files: dict[str, list[int] | None] = {}
    for dirpath, _, filenames in os.walk(out):
        for f in filenames:
            p = Path(dirpath) / f
            files[p.relative_to(out).as_posix()] = _stat(p)
    return files


def _record_path(plan) -> Path:  # type: ignore[no-untyped-def]
    """The record the plan's `Published` skip names."""
    skip = next(s.skip_when for s in plan.steps if isinstance(s.skip_when, Published))
    return Path(skip.record)


def up_to_date(plan) -> bool:  # type: ignore[no-untyped-def]
    if plan.toolchain.generator != "Ninja":
        return False  # only Ninja's log says whether an edge ran: MSBuild's rebuilds would go unseen
    try:
        record = json.loads(_record_path(plan).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (record.get("out") == str(plan.out) and record.get("source") == json.loads(json.dumps(source_state(plan)))
            and bool(record.get("files")) and record.get("files") == out_state(plan.out))


def remember(plan) -> None:  # type: ignore[no-untyped-def]
    path = _record_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"out": str(plan.out), "source": source_state(plan), "files": out_state(plan.out)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)


def forget(plan) -> None:  # type: ignore[no-untyped-def]
    _record_path(plan).unlink(missing_ok=True)
