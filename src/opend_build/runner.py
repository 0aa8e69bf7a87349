"""Executes a Plan: the only place with side effects. Progress, logs, timings, locks, atomic publish."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import os
import re
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import archives, compiler_cache, file_api, host, locks, manifest, protobuf_src, published, sbom, sources
from .diagnose import diagnose
from .errors import DiskError, ToolchainError, UsageError
from .plan import Plan, old_for
from .steps import CONFIGURE_READS, Action, Configured, Present, Published, Step, Verified

NINJA_STATUS = re.compile(r"^\[(\d+)/(\d+)\] (.*)$")


@dataclass
class PhaseStats:
    seconds: float = 0.0
    steps: int = 0  # build edges Ninja ran
    compiled: int = 0  # C++ translation units compiled
    generated: int = 0  # .proto files run through protoc


@dataclass
class Report:
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    log: str = ""
    notes: list[str] = field(default_factory=list)
    cache: compiler_cache.Stats | None = None
    up_to_date: bool = False  # the output already held this build: install and publish skipped
    manifest: dict | None = None  # type: ignore[type-arg]  # the build-manifest.json this run wrote

    def phase(self, name: str) -> PhaseStats:
        return self.phases.setdefault(name, PhaseStats())


class Progress:
    """One line per step, and done/total while a build runs (rewritten in place on a terminal)."""

    def __init__(self, stream: TextIO, verbose: bool) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty()
        self.last = 0.0
        self.last_pct = -100

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, step: Step, index: int, total: int) -> None:
        self.say(f"==> [{index}/{total}] {step.phase}: {step.title}")
        self.last_pct = -100

    def build(self, label: str, done: int, total: int, what: str, batches: Mapping[str, list[str]] | None = None) -> None:
        pct = done * 100 // max(total, 1)
        now = time.monotonic()
        line = f"    {label}: {done}/{total} ({pct}%) {short(what, batches)}"
        if self.tty:
            if now - self.last > 0.2 or done == total:
                self.stream.write("\r" + line[: shutil.get_terminal_size().columns - 1] + "\x1b[K")
                if done == total:
                    self.stream.write("\n")
                self.stream.flush()
                self.last = now
        elif pct >= self.last_pct + 10 or done == total or now - self.last > 15:
            # On CI: every 10 %, and at least every 15 s while slow compiles run.
            self.say(line)
            self.last_pct = pct - pct % 10
            self.last = now


UNITY_FILE = re.compile(r"unity_(batch\d+)_cxx\.cxx")


def short(what: str, batches: Mapping[str, list[str]] | None = None) -> str:
    """'Building CXX object CMakeFiles/x.dir/a/b/Qot_Sub.pb.cc.o' -> 'compile Qot_Sub.pb.cc'; a unity
    batch by the .proto files in it: 'compile Qot_Sub, Qot_GetKL (+2)'."""
    if what.startswith("Building CXX object "):
        name = Path(what.split()[-1]).name.removesuffix(".o")
        m = UNITY_FILE.fullmatch(name)
        protos = (batches or {}).get(m.group(1), []) if m else []
        if protos:
            more = f" (+{len(protos) - 2})" if len(protos) > 2 else ""
            return f"compile {', '.join(protos[:2])}{more}"
        return "compile " + name
    if what.startswith("protoc "):
        return what
    return what.split(" ")[0].lower() if what else ""


# --- actions: the non-command steps --------------------------------------------------------




def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def unity_batches(build_dir: str) -> dict[str, list[str]]:
    """The .proto files of each unity batch, as the configure step wrote them (none without batches)."""
    try:
        lines = (Path(build_dir) / "opend-unity-batches.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return {parts[0]: parts[1:] for parts in (line.split() for line in lines) if parts}


def recover(out: Path, staging: Path) -> None:
    """Undo what an interrupted run left: a half-made staging folder, or a publish cut in half."""
    old = old_for(out)
    if old.exists() and not out.exists():
        os.replace(old, out)  # killed between the two renames of a non-atomic publish
    for leftover in (staging, old):
        if leftover.exists():
            shutil.rmtree(leftover)


def check_out_is_ours(out: Path, configuration: str = "") -> None:
    """Refuse an --out this build must not replace: not made by opend-build, or made by another
    configuration (its manifest says which): a consumer's CMAKE_PREFIX_PATH would silently switch
    ABI or protobuf. Read-only."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / manifest.NAME).is_file())):
        raise UsageError(
            f"--out {out} exists and was not made by opend-build (it has no {manifest.NAME})",
            "choose a new or empty folder; nothing in it was touched",
        )
    theirs = other_configuration(out, configuration)
    if theirs:
        raise UsageError(
            f"--out {out} holds the output of another configuration ({theirs}), not this build's ({configuration})",
            f"leave --out out to get this configuration's own folder (out/{configuration}), or remove {out} first; nothing in it was touched",
        )


def other_configuration(out: Path, configuration: str) -> str:
    """The configuration recorded in `out`'s manifest when it is not `configuration` ("" when the
    same, or when nothing says: no manifest, or one made without the driver)."""
    try:
        theirs = str(manifest.read(out).get("configuration") or "")
    except (OSError, ValueError, AttributeError):
        return ""
    return theirs if configuration and theirs and theirs != configuration else ""


def _described(rel: str) -> bool:
    """The files the manifest step writes afresh in staging (never linked: it writes in place)."""
    return rel == manifest.NAME or rel.startswith(sbom.PREFIX)


def _act_link_out(out: str, staging: str) -> None:
    """Staging starts as hard links to the output's files, so `cmake --install` finds the files it
    laid out last time up to date (same mtime) and copies only what changed. CMake unlinks a file
    before it writes it, so the published output is never written through a link; the manifest's
    files are not linked because the manifest step rewrites them in place."""
    o, s = Path(out), Path(staging)
    if not o.is_dir():
        return
    for dirpath, _dirs, files in os.walk(o):
        for f in files:
            src = Path(dirpath) / f
            rel = src.relative_to(o).as_posix()
            if _described(rel) or src.is_symlink() or not src.is_file():
                continue
            dest = s / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dest)
            except OSError:
                return  # no hard links here (another file system, say): the install copies the rest


def _act_prune_staging(staging: str, build: str) -> None:
    """Remove from staging the linked files the install did not lay out this time (install_manifest.txt)."""
    s = Path(staging)
    installed = {Path(line).relative_to(s).as_posix() for line in (Path(build) / "install_manifest.txt").read_text(encoding="utf-8").splitlines()
                 if line and Path(line).is_relative_to(s)}
    for dirpath, dirs, files in os.walk(s, topdown=False):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(s).as_posix()
            if rel not in installed and not _described(rel):
                p.unlink()
        if not dirs and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()


def _act_publish(staging: str, out: str) -> None:
    s, o = Path(staging), Path(out)
    o.parent.mkdir(parents=True, exist_ok=True)
    if o.exists() and _renameat2_exchange(s, o):
        shutil.rmtree(s)  # now holds the previous output
        return
    old = old_for(o)
    if o.exists():
        os.replace(o, old)
    os.replace(s, o)
    if old.exists():
        shutil.rmtree(old)


# --- the runner ----------------------------------------------------------------------------


class Runner:
    def __init__(self, plan: Plan | None, verbose: bool = False, lock_timeout: float = 1800.0, stream: TextIO = sys.stdout,
                 env: Mapping[str, str] | None = None) -> None:
        """`plan` is the build being run; None for a subcommand that runs steps of its own (inputs).
        `env` is the environment the commands run in (the one planning was given)."""
        self.plan = plan
        self.env = dict(host.environ() if env is None else env)
        self.limits = archives.limits(self.env)
        self.up_to_date: bool | None = None  # the Published skip, decided once per run
        self.verbose = verbose
        self.lock_timeout = lock_timeout
        self.progress = Progress(stream, verbose)
        self.report = Report()
        self.log_path = Path(os.devnull)  # the log of the steps running (execute sets it)
        self.paused = False
        self.cache_server: tuple[str, dict[str, str]] | None = None  # (sccache, env) while ours runs

    def run(self) -> Report:
        plan = self.plan
        assert plan is not None
        check_out_is_ours(plan.out, plan.configuration)
        with locks.hold(plan.locks, self.lock_timeout, self.progress.say):
            recover(plan.out, plan.staging)
            try:
                self.execute(plan.steps, plan.log)
            finally:
                if plan.staging.exists():
                    shutil.rmtree(plan.staging, ignore_errors=True)
        return self.report

    def execute(self, steps: tuple[Step, ...], log_path: Path) -> None:
        """Run `steps` in order, logged to `log_path`, applying each step's skip condition as the
        plan states it. Every subcommand's side effects go through here."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.report.log = str(log_path)
        try:
            with open(log_path, "w", encoding="utf-8", errors="replace") as log:
                for i, step in enumerate(steps, 1):
                    if isinstance(step.skip_when, Published) and self.skips(step):
                        continue  # said once, below
                    self._maybe_pause(step)
                    self.progress.step(step, i, len(steps))
                    started = time.monotonic()
                    if self.skips(step):
                        self.progress.say("    up to date")
                        log.write(f"\n===== {step.render()}\n    skipped: {step.skip_when.text if step.skip_when else ''}\n")
                    else:
                        self._run_step(step, log)
                    self.report.phase(step.phase).seconds += time.monotonic() - started
                if self.up_to_date is False:
                    published.remember(self.plan)
        except OSError as exc:
            if exc.errno == 28:
                raise DiskError(f"no space left on device ({exc.filename or 'writing'})", "free disk space and run again") from exc
            raise
        finally:
            self._stop_cache_server()

    def skips(self, step: Step) -> bool:
        """Whether `step` is skipped, decided by its skip condition (`holds`); the publish record's
        verdict once per run, the record dropped when it no longer holds."""
        if isinstance(step.skip_when, Published):
            if self.up_to_date is None:
                self.up_to_date = self.report.up_to_date = holds(step, self.plan)
                if self.up_to_date:
                    self.progress.say("==> the output is up to date: nothing to install or publish")
                else:
                    published.forget(self.plan)
            return self.up_to_date
        return holds(step, self.plan)

    def _maybe_pause(self, step: Step) -> None:
        """Fault-injection hook for the test suite: OPEND_BUILD_PAUSE_BEFORE=<phase>:<file> stops
        before the first step of <phase> until <file> exists (or the process is killed)."""
        spec = self.env.get("OPEND_BUILD_PAUSE_BEFORE", "")
        phase, _, release = spec.partition(":")
        if phase != step.phase or self.paused:
            return
        self.paused = True
        self.progress.say(f"paused before {phase} (pid {os.getpid()})")
        deadline = time.monotonic() + 3600  # bounded: a test that forgets to release it does not hold a machine for ever
        while not (release and Path(release).exists()) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _run_step(self, step: Step, log: TextIO) -> None:
        log.write(f"\n===== {step.render()}\n")
        log.flush()
        if step.kind == "action":
            assert step.action is not None
            ACTIONS[step.action](self, step, log)
            return
        if isinstance(step.skip_when, Configured):
            self._configure(step, step.skip_when, log)
            return
        self._command(step, log)

    def _configure(self, step: Step, w: Configured, log: TextIO) -> None:
        """A configure the stamp did not skip: from a fresh cache when what it reads of the
        environment changed (CMake keeps what it found - compilers, protoc, packages - in
        CMakeCache.txt); the File API query first, the stamp after it succeeds."""
        build = Path(step.build_dir)
        stamp = Path(w.stamp)
        want = {"args": w.args, "reads": w.reads}
        have = _stamp(w)
        if have and have.get("reads") != want["reads"]:
            self.progress.say("    the environment the configure reads changed: configuring afresh")
            # What `cmake --fresh` drops (3.24+): the cache and the compiler checks; objects stay.
            (build / "CMakeCache.txt").unlink(missing_ok=True)
            for checks in (build / "CMakeFiles").glob("[0-9]*"):
                shutil.rmtree(checks, ignore_errors=True)
        file_api.write_query(build)
        stamp.unlink(missing_ok=True)
        self._command(step, log, reads=step.reads)
        stamp.write_text(json.dumps(want))

    def _start_cache_server(self, sccache: str, env: dict[str, str], log: TextIO) -> None:
        full = {**self.env, **env}
        # A server of ours left by a killed run would keep its counters (and its old settings).
        host.run([sccache, "--stop-server"], env=full)
        r = host.run([sccache, "--start-server"], env=full)
        log.write(r.stdout + r.stderr)
        if r.returncode != 0:
            last = ((r.stderr or r.stdout).strip().splitlines() or ["no output"])[-1]
            raise ToolchainError(f"sccache could not start: {last}",
                                 "check the SCCACHE_* settings of the backend (or run without --cache); the log has sccache's output")
        self.cache_server = (sccache, full)

    def _cache_stats(self) -> compiler_cache.Stats:
        assert self.cache_server is not None
        sccache, env = self.cache_server
        r = host.run([sccache, "--show-stats", "--stats-format=json"], env=env, check=True)
        return compiler_cache.parse_stats(r.stdout)

    def _stop_cache_server(self) -> None:
        if self.cache_server is not None:
            sccache, env = self.cache_server
            host.run([sccache, "--stop-server"], env=env)
            self.cache_server = None

    def _command(self, step: Step, log: TextIO, reads: tuple[tuple[str, str], ...] | None = None) -> None:
        env = dict(self.env)
        if reads is not None:  # a configure sees these variables as planned, and none of them otherwise
            env = {k: v for k, v in env.items() if k not in CONFIGURE_READS} | dict(reads)
        env = {**env, **dict(step.env)}
        tail: deque[str] = deque(maxlen=4000)
        stats = self.report.phase(step.phase)
        label = step.phase
        batches = unity_batches(step.build_dir) if step.kind == "build" else {}
        with host.stream(step.argv, env) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip("\n")
                tail.append(line)
                m = NINJA_STATUS.match(line) if step.kind == "build" else None
                if m:
                    done, total, what = int(m.group(1)), int(m.group(2)), m.group(3)
                    stats.steps += 1
                    if what.startswith("Building CXX object"):
                        stats.compiled += 1
                    elif what.startswith("protoc "):
                        stats.generated += 1
                    if not self.verbose:
                        self.progress.build(label, done, total, what, batches)
                if self.verbose:
                    self.progress.say("    " + line)
            rc = proc.wait()
        log.flush()
        if rc != 0:
            raise diagnose(list(tail), step.title, rc, self.log_path, self.plan.inputs.proto_dir if self.plan else None)


def holds(step: Step, plan: Plan | None) -> bool:
    """Whether `step`'s skip condition holds now: the one decision the runner and a dry run
    share. Read-only."""
    w = step.skip_when
    if isinstance(w, Present):
        return Path(w.path).is_dir()
    if isinstance(w, Verified):
        return Path(w.path).is_file() and sources.sha256_file(Path(w.path)) == w.sha256
    if isinstance(w, Configured):
        return _stamp(w) == {"args": w.args, "reads": w.reads} and (Path(w.build_dir) / "build.ninja").is_file()
    if isinstance(w, Published):
        return plan is not None and published.up_to_date(plan)
    return False


SKIPPED_BECAUSE = {Present: "unpacked already", Verified: "the cached download matches its sha256",
                   Configured: "configured already with these arguments, environment and variables",
                   Published: "the output is as last published from these build folders"}


def decisions(plan: Plan) -> list[str]:
    """What a run would do with each step of `plan` now, in words, for --dry-run: the runner's
    own checks (`holds`), evaluated read-only, in order."""
    out = []
    published_now = None
    for step in plan.steps:
        w = step.skip_when
        if isinstance(w, Published):
            published_now = holds(step, plan) if published_now is None else published_now
            out.append(f"skip: up to date ({SKIPPED_BECAUSE[Published]}, unless the build above compiles something)" if published_now else "run")
        elif w is not None and holds(step, plan):
            out.append(f"skip: up to date ({SKIPPED_BECAUSE[type(w)]})")
        elif isinstance(w, Configured) and _stamp(w):
            out.append("run (afresh: the variables the configure reads changed)" if _stamp(w).get("reads") != w.reads else "run (its arguments changed)")
        elif step.kind == "build" and (Path(step.build_dir) / "build.ninja").is_file():
            out.append("run (Ninja compiles only what changed, if anything)")
        else:
            out.append("run")
    return out


def _stamp(w: Configured) -> dict[str, str]:
    try:
        return json.loads(Path(w.stamp).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: object) -> None:
    """A JSON report (--summary-json) where the user asked for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def clear_quarantine(folder: str) -> list[str]:
    """`xattr -r -d com.apple.quarantine` on each file under `folder` that carries the attribute."""
    cleared = []
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file() and host.has_xattr(f, "com.apple.quarantine"):
            host.remove_xattr(f, "com.apple.quarantine")
            cleared.append(str(f))
    return cleared


# --- the action registry: one handler per Action, one signature -------------------------------

Handler = Callable[["Runner", Step, TextIO], None]


def _args(step: Step) -> dict[str, str]:
    return dict(step.args)


def _do_sccache_start(r: Runner, step: Step, log: TextIO) -> None:
    r._start_cache_server(_args(step)["sccache"], dict(step.env), log)


def _do_sccache_stats(r: Runner, step: Step, log: TextIO) -> None:
    r.report.cache = r._cache_stats()
    r.progress.say(f"    sccache: {r.report.cache.line()}")


def _do_manifest(r: Runner, step: Step, log: TextIO) -> None:
    a = _args(step)
    r.report.manifest = manifest.write(r.plan, Path(a["build"]), Path(a["dir"]))


def _do_clear_quarantine(r: Runner, step: Step, log: TextIO) -> None:
    cleared = clear_quarantine(_args(step)["folder"])
    r.report.notes.append(f"cleared com.apple.quarantine from {len(cleared)} file(s)")
    r.progress.say(f"    {r.report.notes[-1]}")


def _do_fetch(r: Runner, step: Step, log: TextIO) -> None:
    a = _args(step)
    sources.fetch(sources.load_pins()[a["pin"]], Path(a["dest"]), sources.index_url(r.env))


def _do_unpack_pin(r: Runner, step: Step, log: TextIO) -> None:
    a = _args(step)
    sources.unpack_pin(sources.load_pins()[a["pin"]], Path(a["archive"]), Path(a["dest"]), a["suffix"], r.limits)


def _do_unpack_sdk(r: Runner, step: Step, log: TextIO) -> None:
    a = _args(step)
    Path(a["dest"]).parent.mkdir(parents=True, exist_ok=True)
    archives.extract(Path(a["archive"]), Path(a["dest"]), limits=r.limits)


def _do_unpack_protobuf(r: Runner, step: Step, log: TextIO) -> None:
    protobuf_src.unpack(**_args(step), limits=r.limits)


def _plain(fn: Callable[..., object]) -> Handler:
    """A handler for an action that needs nothing of the run but its arguments."""

    def handler(r: Runner, step: Step, log: TextIO) -> None:
        fn(**_args(step))

    return handler


ACTIONS: dict[Action, Handler] = {
    Action.FETCH: _do_fetch,
    Action.UNPACK_PIN: _do_unpack_pin,
    Action.UNPACK_SDK: _do_unpack_sdk,
    Action.UNPACK_PROTOBUF: _do_unpack_protobuf,
    Action.REMEMBER: _plain(sources.remember),
    Action.SCCACHE_START: _do_sccache_start,
    Action.SCCACHE_STATS: _do_sccache_stats,
    Action.LINK_OUT: _plain(_act_link_out),
    Action.PRUNE_STAGING: _plain(_act_prune_staging),
    Action.MANIFEST: _do_manifest,
    Action.PUBLISH: _plain(_act_publish),
    Action.CLEAR_QUARANTINE: _do_clear_quarantine,
}
assert set(ACTIONS) == set(Action), "every Action has its handler"


def prepared(name: str, cache: Path, suffix: str = "", env: Mapping[str, str] | None = None) -> Path:
    """Fetch and unpack pin `name` into `cache` by the build's own steps (the test suite's and the
    bench's inputs), skipped as a build skips them; its folder."""
    pin = sources.load_pins()[name]
    steps = (sources.fetch_step(name, pin, cache), sources.unpack_pin_step(name, pin, cache, suffix))
    Runner(None, stream=io.StringIO(), env=env).execute(steps, cache / "logs" / f"prepared-{name}.log")
    return sources.extracted_path(pin, cache)
