"""Turn a failed step's output into one line saying what is wrong. Pure."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import BuildError, DiskError, OpenDError, ProtobufSourceError, ProtoError, ToolchainError

PROTO_AT = re.compile(r"^(?P<file>[^\s:]+\.proto):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")
PROTO_FILE = re.compile(r"^(?P<file>[^\s:]+\.proto): (?P<msg>.+)$")
OUR_REFUSAL = re.compile(r"opend-build: (protobuf|toolchain): ")
REFUSALS = {"protobuf": ProtobufSourceError, "toolchain": ToolchainError}
CXX_ERROR = re.compile(r"^(?P<loc>[^\s].*?:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.+)$")


def diagnose(lines: list[str], step_title: str, returncode: int, log: Path, proto_dir: Path | None) -> OpenDError:
    where = f"full log: {log}"
    text = "\n".join(lines)
    if "No space left on device" in text:
        return DiskError(f"{step_title}: no space left on device", f"free disk space and run again; {where}")
    for line in lines:
        m = PROTO_AT.match(line) or PROTO_FILE.match(line)
        if m and not m.group("msg").startswith("warning:"):  # protoc's warnings ("Import X but not used") are not why a build failed
            name = m.group("file")
            shown = str(proto_dir / name) if proto_dir is not None and not Path(name).is_absolute() else name
            at = f":{m.group('line')}:{m.group('col')}" if "line" in m.groupdict() and m.groupdict().get("line") else ""
            return ProtoError(f"{shown}{at}: {m.group('msg')}", "fix the .proto file (protoc 3.5.1 rejects it) and run again")
    for i, line in enumerate(lines):  # our CMake code's refusals ("opend-build: <what>: ..."), which CMake wraps
        m = OUR_REFUSAL.search(line)
        if m:
            said = [line[m.end():]]
            for more in lines[i + 1 :]:
                if not more.strip() or more.startswith(("Call Stack", "CMake ", "-- ")):
                    break
                said.append(more)
            text_said = re.sub(r"\s+", " ", " ".join(s.strip() for s in said)).strip()
            message, _, hint = text_said.partition("; what to do: ")
            return REFUSALS[m.group(1)](message, hint or where)
    if "OPEND_PROTOBUF_SOURCE_DIR=" in text and "google/protobuf/message.h" in text:
        return ProtobufSourceError("the protobuf source holds no google/protobuf/message.h", "give --protobuf a protobuf-all-3.5.1 archive or folder")
    if "No CMAKE_CXX_COMPILER could be found" in text or "is not able to compile a simple test program" in text:
        return ToolchainError("the C++ compiler does not work", f"install g++ (or clang and libc++), or set CXX; {where}")
    for line in lines:
        m = CXX_ERROR.match(line)
        if m:
            return BuildError(f"{m.group('loc')}: error: {m.group('msg')}", where)
    for i, line in enumerate(lines):
        if line.startswith("CMake Error"):
            detail = next((s.strip() for s in lines[i + 1 :] if s.strip()), "")
            return BuildError(f"{step_title}: {line.strip()} {detail}".strip(), where)
    return BuildError(f"{step_title} failed (exit code {returncode})", where)
