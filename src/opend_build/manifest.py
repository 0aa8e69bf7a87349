"""build-manifest.json: what went in (with sha256), what toolchain made it, what came out."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import __version__, file_api
from .sources import sha256_file

NAME = "build-manifest.json"


def _tree(root: Path) -> list[dict[str, object]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if rel != NAME:
                out.append({"path": rel, "sha256": sha256_file(p), "size": p.stat().st_size})
    return out


def build(plan, build_dir: Path, out_dir: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    inputs = plan.inputs
    files = [{"path": f"Include/{e['path']}", "sha256": e["sha256"]} for e in _tree(build_dir / "Include")]
    for src in (inputs.source_dir, inputs.channel_source_dir):
        if src is not None:
            files += [{"path": f"Src/{src.name}/{e['path']}", "sha256": e["sha256"]} for e in _tree(src)]
    version_file = build_dir / "generated" / "protobuf-version.txt"
    outputs = _tree(out_dir)
    return {
        "manifest_version": 1,
        "tool": {"name": "opend-build", "version": __version__},
        "brand": plan.brand,
        "lib": plan.lib,
        "sdk_version": plan.sdk_version,
        "protobuf_version": version_file.read_text().strip() if version_file.exists() else None,
        "os": plan.os,
        "build_type": plan.build_type,
        "inputs": {**inputs.record, "protobuf_source": inputs.protobuf.identity, "files": files},
        "toolchain": {"compiler": plan.toolchain.compiler, **file_api.toolchain_facts(build_dir, "opend_sdk"), **_arch(plan.toolchain)},
        "channel": channel_record(out_dir, plan.lib, outputs, inputs.channel, inputs.channel_why),
        "outputs": outputs,
    }


def _arch(toolchain) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Linux: the target architecture, and for a cross build the build machine's."""
    if not toolchain.arch:
        return {}
    return {"arch": toolchain.arch, "cross": toolchain.cross, **({"host_arch": toolchain.host.arch} if toolchain.host else {})}


def channel_record(out_dir: Path, lib: str, outputs: list[dict[str, object]], planned: str, why: str) -> dict[str, object]:
    """Which channel shipped (as the installed package's usage file says: open, vendor or none),
    its file and sha256, and what the plan chose and why."""
    usage_file = out_dir / "lib" / "cmake" / lib / f"{lib}Usage.json"
    usage = json.loads(usage_file.read_text(encoding="utf-8")) if usage_file.is_file() else {}
    path = f"{usage['channel_dir']}/{usage['channel']}" if usage.get("channel") else None
    sha = next((o["sha256"] for o in outputs if o["path"] == path), None)
    return {"kind": usage.get("channel_kind", "none"), "file": path, "sha256": sha, "planned": planned, "why": why}


def write(plan, build_dir: Path, out_dir: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Write the manifest into `out_dir`; what was written."""
    data = build(plan, build_dir, out_dir)
    (out_dir / NAME).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def read(out_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out_dir / NAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
