"""The end of a run, typed: what was built, where, and how long each phase took. Made from the
Plan, the Runner's Report and the manifest the run wrote (or, when the output was already up to
date, the one it left in place); printed, and written with --summary-json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import manifest
from .plan import Plan, wrap
from .runner import PhaseStats, Report


@dataclass(frozen=True)
class Summary:
    lib: str
    brand: str
    sdk_version: str
    protobuf_version: str | None
    os: str
    build_type: str
    compiler: str
    out: str
    binaries: list[str]
    include: list[str]  # what Include/ holds, in words
    cmake_package: str
    seconds: float
    phases: dict[str, dict[str, float | int]]
    log: str
    notes: list[str]
    compiler_cache: dict[str, object] | None
    out_up_to_date: bool
    runs_on: dict[str, object] | None = None  # the manifest's: the oldest system the outputs load on
    channel: dict[str, object] = field(default_factory=dict)  # channel_summary: kind, file, or why none and the install line

    @classmethod
    def of(cls, plan: Plan, report: Report, seconds: float) -> Summary:
        data = report.manifest or manifest.read(plan.out)
        tc = data["toolchain"]
        return cls(
            lib=plan.lib,
            brand=plan.brand,
            sdk_version=plan.sdk_version,
            protobuf_version=data.get("protobuf_version"),
            os=plan.os,
            build_type=plan.build_type,
            compiler=f"{tc.get('compiler_id')} {tc.get('compiler_version')}",
            out=str(plan.out),
            binaries=sorted(o["path"] for o in data["outputs"] if o["path"].startswith(plan.toolchain.bin_dir + "/")),
            include=include_parts([o["path"] for o in data["outputs"]]),
            cmake_package=f"lib/cmake/{plan.lib}",
            seconds=round(seconds, 2),
            phases={k: _phase(v) for k, v in report.phases.items()},
            log=report.log,
            notes=list(report.notes),
            compiler_cache=report.cache.as_dict() if report.cache else None,
            out_up_to_date=report.up_to_date,
            runs_on=data.get("runs_on"),
            channel=channel_summary(data.get("channel") or {}, plan.os, plan.toolchain.arch, plan.toolchain.cross),
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def render(self) -> str:
        def fmt(name: str, p: dict[str, float | int]) -> str:
            extra = [f"{p['generated']} generated"] if p["generated"] else []
            if p["steps"] or name in ("protobuf", "sdk"):
                extra.append(f"{p['compiled']} compiled")
            return f"{name} {p['seconds']:.1f}s" + (f" ({', '.join(extra)})" if extra else "")

        lines = [
            f"\nBuilt {self.lib} ({self.brand} {self.sdk_version}, protobuf {self.protobuf_version}) for {self.os}, {self.build_type}, "
            f"{self.compiler} in {self.seconds:.1f}s",
            f"  out:      {self.out}",
            *(f"            {b}" for b in self.binaries),
            f"            Include/ ({', '.join(self.include)})",
            *([f"  runs on:  {line}"] if (line := manifest.runs_on_line(self.runs_on)) else []),
            f"  channel:  {channel_line(self.channel)}",
            f"  CMake:    find_package({self.lib} CONFIG REQUIRED) with CMAKE_PREFIX_PATH={self.out}",
            "  phases:   " + " | ".join(fmt(k, v) for k, v in self.phases.items()) + (" | out already up to date" if self.out_up_to_date else ""),
        ]
        if self.compiler_cache:
            c = self.compiler_cache
            lines.append(f"  sccache:  {c['hits']}/{c['hits'] + c['misses']} compiles from cache ({c['hit_rate']}%), {c['location']}")  # type: ignore[operator]
        lines += [f"  post:     {note}" for note in self.notes]
        lines.append(f"  log:      {self.log}")
        if self.channel.get("implicit"):  # asked for by default and not built: said last, where it is read
            lines.append("\n" + wrap(f"note: this output has no channel library, so a program built with it cannot connect to OpenD: {self.channel['why']} "
                                     f"(--channel auto builds it only then); install it ({self.channel['install']}) and run again, "
                                     "or pass --channel open to make a missing OpenSSL an error"))
        return "\n".join(lines)


def no_channel_reason(target_os: str, arch: str, cross: bool) -> tuple[str, str]:
    """Why the open channel was not built (CMake found no OpenSSL libcrypto 3 for the target) and
    the install line that fixes it."""
    if target_os == "linux":
        from .platforms.linux import openssl_install

        if cross:
            return f"no {arch} OpenSSL libcrypto 3 was found", openssl_install(arch, cross)
        return "OpenSSL's libcrypto 3 was not found", f"Debian/Ubuntu: {openssl_install(arch, cross)}"
    if target_os == "macos":
        return "OpenSSL's libcrypto 3 was not found", "brew install openssl@3, and OPENSSL_ROOT_DIR=$(brew --prefix openssl@3)"
    return "no channel was built", "see the log"


def channel_summary(record: dict[str, object], target_os: str, arch: str, cross: bool) -> dict[str, object]:
    """The summary's channel from the manifest's record: its kind (open, vendor) and file, or none
    with why and the install line; `implicit` when it was not asked for (--channel auto) and is missing."""
    kind = str(record.get("kind") or "none")
    if kind != "none":
        return {"kind": kind, "file": record.get("file"), "why": "", "install": "", "implicit": False}
    why, install = no_channel_reason(target_os, arch, cross)
    return {"kind": "none", "file": None, "why": why, "install": install, "implicit": record.get("planned", "auto") == "auto"}


def channel_line(c: dict[str, object]) -> str:
    if c.get("kind", "none") == "none":
        return f"none: {c.get('why')}; install it: {c.get('install')}, then run again"
    who = "opend-build's open channel" if c["kind"] == "open" else "the SDK's own"
    return f"{c['kind']}, {c['file']} ({who})"


def include_parts(paths: list[str]) -> list[str]:
    """What the output's Include/ holds, from its files: the SDK's headers, the generated classes,
    protobuf's headers (only when protobuf ships), abseil's (protobuf 22 and later)."""
    inc = [p.removeprefix("Include/") for p in paths if p.startswith("Include/")]
    parts = [("SDK headers", any("/" not in p for p in inc)), ("Proto/*.pb.h", any(p.startswith("Proto/") and p.endswith(".pb.h") for p in inc)),
             ("google/protobuf", any(p.startswith("google/protobuf/") for p in inc)), ("absl", any(p.startswith("absl/") for p in inc))]
    return [name for name, present in parts if present]


def _phase(p: PhaseStats) -> dict[str, float | int]:
    return {"seconds": round(p.seconds, 2), "steps": p.steps, "compiled": p.compiled, "generated": p.generated}
