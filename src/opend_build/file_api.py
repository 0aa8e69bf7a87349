"""Reads CMake's File API replies (toolchains, codemodel) instead of guessing compiler facts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

CLIENT = "client-opend-build"


def write_query(build_dir: Path) -> None:
    q = build_dir / ".cmake" / "api" / "v1" / "query" / CLIENT / "query.json"
    q.parent.mkdir(parents=True, exist_ok=True)
    q.write_text(json.dumps({"requests": [{"kind": "codemodel", "version": 2}, {"kind": "toolchains", "version": 1}]}))


def _reply(build_dir: Path) -> tuple[Path, dict]:  # type: ignore[type-arg]
    reply = build_dir / ".cmake" / "api" / "v1" / "reply"
    index = max(reply.glob("index-*.json"))
    return reply, json.loads(index.read_text())


def toolchain_facts(build_dir: Path, target: str) -> dict[str, object]:
    """Compiler id, version and path, and the flags and defines `target` is compiled with."""
    reply, index = _reply(build_dir)
    responses = index["reply"][CLIENT]["query.json"]["responses"]
    facts: dict[str, object] = {"cmake_version": index.get("cmake", {}).get("version", {}).get("string")}
    for r in responses:
        data = json.loads((reply / r["jsonFile"]).read_text())
        if r["kind"] == "toolchains":
            for tc in data["toolchains"]:
                if tc["language"] == "CXX":
                    c = tc["compiler"]
                    facts.update(compiler_id=c.get("id"), compiler_version=c.get("version"), compiler_path=c.get("path"))
        elif r["kind"] == "codemodel":
            cfg = data["configurations"][0]
            facts["build_type"] = cfg.get("name")
            for t in cfg["targets"]:
                if t["name"] == target:
                    tj = json.loads((reply / t["jsonFile"]).read_text())
                    # the group compiling most sources (not the precompiled header's own)
                    group = max(tj["compileGroups"], key=lambda g: len(g.get("sourceIndexes", [])))
                    facts["flags"] = shlex.split(" ".join(f["fragment"] for f in group.get("compileCommandFragments", [])))
                    facts["defines"] = [d["define"] for d in group.get("defines", [])]
                    facts["cxx_standard"] = group.get("languageStandard", {}).get("standard")
                    # GCC and Clang say so in the flags (MSVC's code needs no such flag)
                    facts["position_independent"] = any(f in ("-fPIC", "-fpic", "-fPIE") for f in facts["flags"])  # type: ignore[union-attr]
    return facts
