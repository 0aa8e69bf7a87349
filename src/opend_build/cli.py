"""Entry point: argv -> Options -> Plan -> (print | run) -> summary, and exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from . import inputs as inputs_mod
from . import manifest, sources, tools
from .errors import HostMismatchError, Interrupted, OpenDError, ToolchainError, UsageError
from .options import Options, host_os, parse
from .plan import Plan, Tools, make_plan
from .platforms import toolchain_for
from .runner import Report, Runner, write_json
from .sdk import BRANDS


def build_plan(options: Options) -> Plan:
    host = host_os()
    if options.os != host and not options.dry_run:
        raise HostMismatchError(
            f"--os {options.os} cannot be built on this {host} machine",
            f"run on a {options.os} machine (or a CI runner), or add --dry-run to see the plan",
        )
    missing: list[str] = []

    def or_missing(find, fallback):  # type: ignore[no-untyped-def]
        """What the run needs from this machine; a --dry-run prints the plan without it and says so."""
        try:
            return find()
        except ToolchainError as exc:
            if not options.dry_run:
                raise
            missing.append(f"{exc.message} ({exc.hint})" if exc.hint else exc.message)
            return fallback()

    toolchain = or_missing(lambda: toolchain_for(options, probe=options.os == host), lambda: toolchain_for(options, probe=False))
    env = dict(os.environ)
    inputs = inputs_mod.resolve(options, env)
    sccache = "" if options.cache != "sccache" else (or_missing(tools.sccache, lambda: "sccache") if options.os == host else "sccache")
    return make_plan(options, toolchain, inputs, sources.cache_root(), Tools(tools.cmake(), tools.ninja(), sccache), Path.cwd(),
                     env=env, missing=tuple(missing))


def summarize(plan: Plan, report: Report, seconds: float) -> dict[str, object]:
    data = json.loads((plan.out / manifest.NAME).read_text(encoding="utf-8"))
    bin_files = sorted(o["path"] for o in data["outputs"] if o["path"].startswith(plan.toolchain.bin_dir + "/"))
    return {
        "lib": plan.lib,
        "brand": plan.brand,
        "sdk_version": plan.sdk_version,
        "protobuf_version": data.get("protobuf_version"),
        "os": plan.os,
        "build_type": plan.build_type,
        "compiler": f"{data['toolchain'].get('compiler_id')} {data['toolchain'].get('compiler_version')}",
        "out": str(plan.out),
        "binaries": bin_files,
        "cmake_package": f"lib/cmake/{plan.lib}",
        "seconds": round(seconds, 2),
        "phases": {k: {"seconds": round(v.seconds, 2), "steps": v.steps, "compiled": v.compiled, "generated": v.generated} for k, v in report.phases.items()},
        "log": report.log,
        "notes": report.notes,
        "compiler_cache": report.cache.as_dict() if report.cache else None,
        "out_up_to_date": report.up_to_date,
    }


def print_summary(s: dict[str, object]) -> None:
    phases = s["phases"]
    assert isinstance(phases, dict)

    def fmt(name: str, p: dict[str, float]) -> str:
        extra = [f"{p['generated']} generated"] if p["generated"] else []
        if p["steps"] or name in ("protobuf", "sdk"):
            extra.append(f"{p['compiled']} compiled")
        return f"{name} {p['seconds']:.1f}s" + (f" ({', '.join(extra)})" if extra else "")

    print(f"\nBuilt {s['lib']} ({s['brand']} {s['sdk_version']}, protobuf {s['protobuf_version']}) for {s['os']}, {s['build_type']}, {s['compiler']} in {s['seconds']:.1f}s")
    print(f"  out:      {s['out']}")
    for b in s["binaries"]:  # type: ignore[attr-defined]
        print(f"            {b}")
    print("            Include/ (SDK headers, Proto/*.pb.h, google/protobuf)")
    print(f"  CMake:    find_package({s['lib']} CONFIG REQUIRED) with CMAKE_PREFIX_PATH={s['out']}")
    print("  phases:   " + " | ".join(fmt(k, v) for k, v in phases.items()) + (" | out already up to date" if s["out_up_to_date"] else ""))
    if s["compiler_cache"]:
        c = s["compiler_cache"]
        print(f"  sccache:  {c['hits']}/{c['hits'] + c['misses']} compiles from cache ({c['hit_rate']}%), {c['location']}")  # type: ignore[index]
    for note in s["notes"]:  # type: ignore[attr-defined]
        print(f"  post:     {note}")
    print(f"  log:      {s['log']}")
    sys.stdout.flush()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted("stopped by SIGTERM")


def run_doctor(options: Options) -> int:
    from . import doctor, sdk
    from .platforms import linux

    target = options.sdk or options.out
    host = host_os()
    env = dict(os.environ)
    if target is None:  # this machine alone: can it build the SDK, and against which protobuf?
        if not doctor.machine(host, options.compiler, env):
            raise ToolchainError("this machine cannot build the SDK yet", "install what the verdict above names")
        return 0
    # The probe compiles as a build would: the toolchain's compiler and flags.
    toolchain = toolchain_for(options, probe=False)
    cxx = linux._find(toolchain.compiler) if host == "linux" else (doctor.default_cxx() or "c++")
    flags = list(toolchain.cxx_flags)
    # An archive is unpacked as a build would unpack it (into the cache, once), by the runner.
    root, sha, unpack = inputs_mod.sdk_location(target, sdk.open_sdk(target, options.brand))
    Runner(None, options.verbose, options.lock_timeout).execute(unpack, sources.cache_root() / "logs" / f"doctor-{sha[:12] or 'folder'}.log")
    doctor.report(root, host, cxx, flags, env)
    return 0


def run_inputs(options: Options) -> int:
    """Prepare the inputs (fetch, verify, unpack) and print them as a CMake script of cache
    entries: how the CMake project gets the driver's inputs when it is configured by something
    else (an IDE preset, Conan, scikit-build-core)."""
    import hashlib

    resolved = inputs_mod.resolve(options, dict(os.environ))
    # Progress on stderr: stdout is the script CMake reads.
    log = sources.cache_root() / "logs" / f"inputs-{hashlib.sha256(resolved.identity.encode()).hexdigest()[:12]}.log"
    Runner(None, options.verbose, options.lock_timeout, stream=sys.stderr).execute(resolved.prepare, log)
    for key, value in inputs_mod.cmake_entries(resolved).items():
        print(f'set({key} [==[{value}]==] CACHE STRING "from opend-build inputs" FORCE)')
    return 0


def run_verify(options: Options) -> int:
    from . import verify
    from .plan import default_out

    out = options.out or Path.cwd() / default_out(BRANDS[options.brand or "futu"], options.os, options.build_type)
    if not (out / manifest.NAME).is_file():
        raise UsageError(f"{out} holds no opend-build output ({manifest.NAME} missing)", "build first, or point --out at a built folder")
    verify.verify(out)
    return 0


def run(options: Options) -> int:
    if options.command == "verify":
        return run_verify(options)
    if options.command == "presets":
        from . import presets

        print(presets.render(), end="")
        return 0
    if options.command == "doctor":
        return run_doctor(options)
    if options.command == "inputs":
        return run_inputs(options)
    plan = build_plan(options)
    if options.dry_run:
        from .runner import check_out_is_ours

        print(plan.render())
        check_out_is_ours(plan.out)  # read-only: a dry run reports the folder the real run would refuse
        return 0
    started = time.monotonic()
    report = Runner(plan, options.verbose, options.lock_timeout).run()
    summary = summarize(plan, report, time.monotonic() - started)
    print_summary(summary)
    if options.summary_json:
        write_json(options.summary_json, summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(parse(argv))
    except OpenDError as exc:
        sys.stdout.flush()
        if verbose:
            traceback.print_exc()
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  what to do: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print("error: interrupted; the previous output is unchanged", file=sys.stderr)
        return Interrupted.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if verbose:
            traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  what to do: run again with -v and report the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
