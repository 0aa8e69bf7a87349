"""Entry point: argv -> Options -> Plan -> (print | run) -> summary, and exit codes."""

from __future__ import annotations

import signal
import sys
import time
import traceback
from collections.abc import Mapping
from types import FrameType

from . import host, manifest, sources, tools
from . import inputs as inputs_mod
from .errors import HostMismatchError, Interrupted, OpenDError, ProtobufSourceError, ToolchainError, UsageError
from .options import Options, host_os, parse, prog_name
from .plan import Plan, Tools, make_plan
from .platforms import builds_on, toolchain_for
from .runner import Runner, write_json
from .summary import Summary


def build_plan(options: Options, env: Mapping[str, str]) -> Plan:
    """The plan for `options` in the environment `env`: the machine is looked at through one
    `host.Probe` (none for a --dry-run of what this machine cannot build), whose processes the
    plan's head names."""
    this_os = host_os()
    here = builds_on(options, this_os)
    if not here and not options.dry_run:
        raise HostMismatchError(
            f"--os {options.os} cannot be built on this {this_os} machine",
            f"run on a {options.os} machine (or a CI runner), or add --dry-run to see the plan"
            + (" (Windows from Linux: --os windows --compiler mingw)" if options.os == "windows" and this_os == "linux" else ""),
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

    probe = host.Probe(env if here else None)
    inputs = inputs_mod.resolve(options, env, probe)
    if inputs.protobuf.missing:
        missing.append(inputs.protobuf.missing)
    toolchain = or_missing(lambda: toolchain_for(options, probe), lambda: toolchain_for(options, host.Probe(None)))
    if toolchain.compiler == "mingw" and inputs.protobuf.provider == "installed":
        raise ProtobufSourceError(
            f"--protobuf {options.protobuf}: an installed protobuf is not supported with --compiler mingw yet: "
            "its library would have to be a MinGW build (Debian has none) and its protoc this machine's",
            f"drop --protobuf {options.protobuf} (or pass a version or a protobuf source): protobuf is then built for both from one source",
        )
    sccache = "" if options.cache != "sccache" else (or_missing(lambda: tools.sccache(env), lambda: "sccache") if here else "sccache")
    found = Tools(or_missing(lambda: tools.cmake(env), lambda: "cmake"), or_missing(lambda: tools.ninja(env), lambda: "ninja"), sccache)
    return make_plan(options, toolchain, inputs, sources.cache_root(env), found, host.cwd(),
                     env=env, missing=tuple(missing), probes=tuple(probe.ran))


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted("stopped by SIGTERM")


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_doctor(options: Options, env: Mapping[str, str]) -> int:
    """What `python build.py` with these options would do here, planned by the build's own
    planning: where it would stop, with its message and exit code (doctor's too); what the channel
    needs; and how the SDK's and the output's prebuilt libraries compare with the build's compiler."""
    from dataclasses import replace

    from . import archives, doctor, sdk
    from .runner import check_out_is_ours

    as_build = replace(options, command="build", dry_run=False)
    plan, stop = None, None
    try:
        plan = build_plan(as_build, env)
        check_out_is_ours(plan.out)
    except OpenDError as exc:
        stop = exc
    shown, missing = plan, ()
    if stop is not None:  # the rest of what is missing, as a --dry-run lists it
        try:
            shown = build_plan(replace(as_build, dry_run=True), env)
            missing = shown.missing
        except OpenDError:
            shown = None
    probe = host.Probe(env)
    channel = doctor.machine(shown, env, probe) if shown is not None else "ok"
    for m in missing:
        print(f"  missing on this machine: {m}")
    if plan is not None:
        local = doctor.local_facts(plan.toolchain.cxx, list(plan.toolchain.cxx_flags))
        if options.sdk is not None:  # an archive is unpacked as a build would unpack it (into the cache, once), by the runner
            cache = sources.cache_root(env)
            digests = sources.Digests(cache)
            root, sha, unpack = inputs_mod.sdk_location(options.sdk, sdk.open_sdk(options.sdk, options.brand, archives.limits(env)), cache, digests)
            Runner(None, options.verbose, options.lock_timeout, env=env).execute((*unpack, *digests.steps()),
                                                                                cache / "logs" / f"doctor-{sha[:12] or 'folder'}.log")
            doctor.report(root, plan.os, local, env)
        if (plan.out / manifest.NAME).is_file():
            doctor.report(plan.out, plan.os, local, env)
    args = " ".join(["python build.py", *options_argv(options)])
    if stop is not None:
        print(f"verdict: {args} would stop here: {stop.kind} (exit {stop.exit_code}), as below")
        raise stop
    if channel == "fails":
        # what the build's configure would stop with (CMakeLists.txt: "opend-build: toolchain: the open channel needs ...")
        raise ToolchainError("--channel open: the open channel needs OpenSSL's libcrypto 3 for the target, which is not installed",
                             "install what the channel line above names, or drop --channel open")
    print(f"verdict: this machine builds the SDK{' without a channel (see the channel line)' if channel == 'none' else ''}: {args}")
    return 0


def options_argv(options: Options) -> list[str]:
    """The build's command line for what doctor was asked: the reproducing options, and where it goes."""
    from .options import reproducing_argv

    return [*reproducing_argv(options), *(["--out", str(options.out)] if options.out else []),
            *(["--cache", options.cache] if options.cache != "none" else [])]


def run_inputs(options: Options, env: Mapping[str, str]) -> int:
    """Prepare the inputs (fetch, verify, unpack) and print them as a CMake script of cache
    entries: how the CMake project gets the driver's inputs when it is configured by something
    else (an IDE preset, Conan, scikit-build-core)."""
    import hashlib

    resolved = inputs_mod.resolve(options, env)
    # Progress on stderr: stdout is the script CMake reads.
    log = sources.cache_root(env) / "logs" / f"inputs-{hashlib.sha256(resolved.identity.encode()).hexdigest()[:12]}.log"
    Runner(None, options.verbose, options.lock_timeout, stream=sys.stderr, env=env).execute(resolved.prepare, log)
    for key, value in inputs_mod.cmake_entries(resolved).items():
        print(f'set({key} [==[{value}]==] CACHE STRING "from opend-build inputs" FORCE)')
    # Where the SDK's shape puts the libraries for this OS, build type, arch and runtime; a value the
    # configure was given (Conan's, a preset's) stays.
    toolchain = toolchain_for(options)
    for key, value in (("OPEND_BIN_DIR", toolchain.bin_dir), ("OPEND_CHANNEL_DIR", toolchain.channel_dir)):
        print(f'if("${{{key}}}" STREQUAL "")\n  set({key} [==[{value}]==] CACHE STRING "from opend-build inputs" FORCE)\nendif()')
    return 0


def run_verify(options: Options, env: Mapping[str, str]) -> int:
    from dataclasses import replace

    from . import verify

    # Without --out: the folder the build of these options publishes to (planned as a dry run would).
    out = options.out or build_plan(replace(options, command="build", dry_run=True), env).out
    if not (out / manifest.NAME).is_file():
        raise UsageError(f"{out} holds no opend-build output ({manifest.NAME} missing)", "build first, or point --out at a built folder")
    if options.reproduce:
        verify.reproduce(out, env, from_clone=options.from_clone)
    elif options.opend:
        verify.connect(out, options.opend, options.rsa_key, env, None if options.no_subscribe else options.security or verify.DEFAULT_SECURITY)
    else:
        verify.verify(out, env)
    return 0


def run(options: Options, env: Mapping[str, str]) -> int:
    """One subcommand, in the environment `env` (read once, by main)."""
    if options.command == "verify":
        return run_verify(options, env)
    if options.command == "presets":
        from . import presets

        print(presets.render(), end="")
        return 0
    if options.command == "doctor":
        return run_doctor(options, env)
    if options.command == "inputs":
        return run_inputs(options, env)
    plan = build_plan(options, env)
    if options.dry_run:
        from .runner import check_out_is_ours, decisions

        print(plan.render(options.verbose, decisions(plan)))
        check_out_is_ours(plan.out, plan.configuration)  # read-only: a dry run reports the folder the real run would refuse
        if options.summary_json:
            print(f"note: --summary-json {options.summary_json} not written: a dry run builds nothing to summarise")
        return 0
    started = time.monotonic()
    report = Runner(plan, options.verbose, options.lock_timeout, env=env).run()
    summary = Summary.of(plan, report, time.monotonic() - started)
    print(summary.render())
    sys.stdout.flush()
    if options.summary_json:
        write_json(options.summary_json, summary.as_dict())
    return 0


def main(argv: list[str] | None = None) -> int:
    prog = prog_name(sys.argv[0])
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Our own, always: a driver started in the background (`&`, nohup, a CI step) inherits SIGINT
    # as ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, _on_sigint)
    options: Options | None = None
    try:
        env = host.environ()
        options = parse(argv, env, prog)
        return run(options, env)
    except BrokenPipeError:
        # The reader went away (`| head`): a quiet exit, and no second error when Python flushes
        # stdout at exit. A plan or a report was read as far as wanted (0); a build stopped
        # half-way is not a success: 141, as a program that SIGPIPE ends.
        host.silence_stdout()
        return 141 if options is not None and options.command == "build" and not options.dry_run else 0
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
