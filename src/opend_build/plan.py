"""Options + toolchain + inputs -> Plan: the ordered steps of a build. Pure: no I/O.

`--dry-run` prints exactly this object; the runner executes exactly this object.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import compiler_cache
from .inputs import Inputs, cmake_entries
from .options import reproducing_argv
from .platforms import Toolchain
from .protobuf import language_level
from .settings import Options
from .sources import project_root
from .steps import CONFIGURE_READS, Action, Published, Step, action_step, configure_step

__all__ = ["Plan", "Step", "Tools", "configuration", "default_out", "make_plan", "mapped", "path_maps", "staging_for"]


@dataclass(frozen=True)
class Tools:
    cmake: str
    ninja: str
    sccache: str = ""  # only with --cache sccache


@dataclass(frozen=True)
class Plan:
    os: str
    brand: str
    lib: str
    sdk_version: str
    build_type: str
    jobs: int
    toolchain: Toolchain
    inputs: Inputs
    out: Path
    configuration: str  # what changes the binary interface, as the default output folder is named (default_out)
    staging: Path
    protobuf_build: Path
    sdk_build: Path
    locks: tuple[Path, ...]
    steps: tuple[Step, ...] = field(default=())
    cache_env: tuple[tuple[str, str], ...] = ()  # --cache sccache: this build's server and base folders
    sccache: str = ""
    cache_backend: str = ""  # where sccache keeps its cache, as the environment given to planning says
    missing: tuple[str, ...] = ()  # what this machine lacks to run the plan (a --dry-run still prints it)
    source_date_epoch: str = ""  # SOURCE_DATE_EPOCH of the environment given to planning: the SBOMs' date
    reproduce: tuple[str, ...] = ()  # the driver's arguments that build these outputs again
    host_protobuf_build: Path | None = None  # cross builds: protobuf built for the build machine (its protoc generates the code)
    probes: tuple[str, ...] = ()  # the processes planning started to look at this machine (host.Probe)
    pause_before: str = ""  # OPEND_BUILD_PAUSE_BEFORE=<phase>:<file> of the environment: the test suite's fault hook
    path_maps: tuple[tuple[str, str], ...] = ()  # each folder whose path could reach the SDK's objects -> its fixed name (path_maps)

    @property
    def host_protoc(self) -> Path | None:
        """Cross builds: the protoc that runs here and generates the code."""
        return self.host_protobuf_build / "prefix" / "bin" / "protoc" if self.host_protobuf_build else None

    def _record(self) -> str:
        return next((s.skip_when.record for s in self.steps if isinstance(s.skip_when, Published)), "none")

    @property
    def log(self) -> Path:
        return self.sdk_build.with_suffix(".log")

    def _sources_lines(self) -> list[str]:
        i = self.inputs
        dirs = [d for d in (i.source_dir, i.channel_source_dir) if d is not None]
        lines = [f"  note: {n}" for n in i.notes]
        if dirs:
            lines.append(f"  sources: {', '.join(str(d) for d in dirs)} compiled into lib{self.lib}; OpenSSL (or zlib) found by CMake and "
                         "linked when they include <openssl/...> (or <zlib.h>)")
        return lines

    def _head(self, verbose: bool) -> list[str]:
        """The plan's head: what is built, how and where; `verbose` adds the folders, locks, probes and recovery."""
        t = self.toolchain
        pb = self.inputs.protobuf
        if pb.provider == "build":
            pb_line = f"  protobuf: {pb.version}, built from source: {pb.origin}; protoc built from the same source"
            folders = f"{self.protobuf_build}, {self.sdk_build}"
            if self.host_protobuf_build is not None:
                assert t.host is not None
                pb_line += (f"; built twice: for {t.host.arch} (this machine: its protoc generates the code, shared with native builds) "
                            f"and for {t.target} (libprotobuf and the protoc shipped in {t.bin_dir})")
                folders = f"{self.host_protobuf_build} ({t.host.arch}), {self.protobuf_build} ({t.target}), {self.sdk_build}"
        else:
            where = f"in {pb.prefix} (CMAKE_PREFIX_PATH)" if pb.prefix else "where CMake finds it"
            protoc = f"protoc {pb.protoc}" if pb.protoc else "its protoc"
            pb_line = (f"  protobuf: {pb.version or '(the build host tells)'}, installed, not built or shipped: {pb.origin}; "
                       f"find_package(Protobuf) {where}: its config, else CMake's FindProtobuf; {protoc}, which must report the same version")
            folders = str(self.sdk_build)
        head = [
            f"plan: {self.lib} ({self.brand} {self.sdk_version}) for {self.os}, {self.build_type}, {self.jobs} jobs",
            *(f"  missing on this machine: {m}" for m in self.missing),  # first: what the real run would stop at
            f"  toolchain: {t.compiler} {t.version} ({t.cxx}), {language_level(pb.cxx_standard, t.compiler)}, generator {t.generator}, Bin folder {t.bin_dir}",
            *(f"  note: {n}" for n in t.notes),
            *([f"  target arch: {t.arch}{f' ({t.os}, {t.compiler})' if t.os != t.host.os else ''} (cross-compiled on {t.host.arch}: {t.cross_how})",
               f"  host toolchain: {t.host.compiler} {t.host.version} ({t.host.cxx}) "
               + ("builds the protoc that runs here" if pb.provider == "build" else f"not needed: nothing of protobuf is built, this machine's installed protoc {pb.host_protoc} generates")]
              if t.host else []),
            *([f"  host protoc: {self.host_protoc} (OPEND_HOST_PROTOC: generates the code; {t.bin_dir}/protoc is the {t.target} one)"]
              if self.host_protoc else []),
            f"  inputs: {self.inputs.origin}",
            *self._sources_lines(),
            pb_line,
            f"  channel: {self.inputs.channel}: {self.inputs.channel_why}",
            f"  out: {self.out} (checked first: new, empty, or made by opend-build of this configuration; else exit 2 before anything runs)",
            f"  log: {self.log}",
        ]
        if self.sccache:
            head.append(f"  compiler cache: sccache, backend {self.cache_backend}; this build's server, stopped when the run ends")
        if not verbose:
            return head
        head += [
            f"  build folders: {folders}",
            f"  locks: {', '.join(str(p) for p in self.locks)} (waits for another run on the same folders)",
            f"  probes run: {'; '.join(self.probes) if self.probes else 'none'}",
            f"  before the steps: what an interrupted run left is recovered ({old_for(self.out).name} back to {self.out.name} if that is gone; "
            f"{self.staging.name} and {old_for(self.out).name} removed); after them {self.staging.name} is removed, whatever happened",
            "  each configure: a CMake File API query is placed in its build folder first (the manifest's toolchain facts), "
            "its stamp written when it succeeds",
            f"  publish record: {self._record()} (read by the skips below; rewritten after a publish, dropped before one)",
            *([f"  paused before {self.pause_before.partition(':')[0]} until {self.pause_before.partition(':')[2]} exists "
               "(OPEND_BUILD_PAUSE_BEFORE: the test suite's fault hook)"] if self.pause_before else []),
        ]
        return head

    def render(self, verbose: bool = True, decisions: Sequence[str] | None = None) -> str:
        """The plan as --dry-run prints it. `decisions` are what this run would do with each step
        ("run", or "skip: up to date (...)": the runner's own skip checks, evaluated read-only);
        without them each step states its skip rule. `verbose` (-v) gives every command with its
        environment, unwrapped; otherwise each line is wrapped to WIDTH columns."""
        head = self._head(verbose)
        if verbose:
            steps = [s.render() + (f"\n    this run: {d}" if decisions else "") for s, d in zip(self.steps, decisions or [""] * len(self.steps))]
            lines = head + steps
        else:
            lines = [*(wrap(line) for line in head), "steps:",
                     *(wrap(f"  [{s.phase}] {s.title}: {d}") for s, d in zip(self.steps, decisions or [_rule(s) for s in self.steps]))]
        return "\n".join([*lines, self._closing(verbose, decisions)])

    def _closing(self, verbose: bool, decisions: Sequence[str] | None) -> str:
        n = len(self.steps)
        if decisions is None:
            return f"end of plan: {n} steps"
        run = sum(1 for d in decisions if d.startswith("run"))
        more = "" if verbose else "; -v shows each command and its environment"
        return wrap(f"end of plan: {n} steps, {run} would run and {n - run} are up to date; nothing was run (--dry-run){more}")


WIDTH = 110


def wrap(line: str) -> str:
    """One plan line wrapped to WIDTH columns, its continuation lines indented under its text."""
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _rule(step: Step) -> str:
    return f"run ({step.skip_when.text})" if step.skip_when else "run"


# Ninja prints each edge as [done/total]: the runner's progress reads it.
PROGRESS = (("NINJA_STATUS", "[%f/%t] "),)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def path_maps(folders: Mapping[Path, str]) -> tuple[tuple[str, str], ...]:
    """-ffile-prefix-map pairs (folder, fixed name), a folder inside another after it: GCC applies
    the last map that matches (Clang the longest), so a build folder inside the cache, or a cache
    inside the checkout, gets its own name either way."""
    return tuple(sorted(((str(f), name) for f, name in folders.items()), key=lambda m: len(m[0])))


def mapped(text: str, maps: tuple[tuple[str, str], ...]) -> str:
    """`text` (a flag) with each mapped folder's path written as its fixed name, as the objects see it."""
    for folder, name in reversed(maps):
        text = text.replace(folder, name)
    return text


def default_out(lib: str, target_os: str, arch: str, toolchain: str, protobuf: str, build_type: str, channel: str = "") -> Path:
    """out/<Lib>4CPP-<os>-<arch>-<toolchain>-protobuf<version>-<build type>[-channel-<kind>]: one
    folder per configuration, named by what changes the binary interface (see `toolchain_tag`); the
    channel only when it is not the one the inputs would choose by themselves."""
    parts = [f"{lib}4CPP", target_os, arch, toolchain, f"protobuf{protobuf}", build_type.lower(), *([f"channel-{channel}"] if channel else [])]
    return Path("out") / "-".join(p for p in parts if p)


def toolchain_tag(compiler: str, stdlib: str = "", cxx11_abi: int | None = None, runtime: str = "", toolchain_file: bool = False) -> str:
    """The compiler family and what of its ABI differs from its default: clang-libcxx (Linux clang
    with libc++), gcc-abi0 (_GLIBCXX_USE_CXX11_ABI=0), msvc-md / msvc-mt (the C runtime), mingw,
    appleclang; a toolchain file's compiler is the file's own (toolchainfile)."""
    tag = "toolchainfile" if toolchain_file else compiler
    if stdlib == "libc++" and compiler == "clang":
        tag += "-libcxx"
    if cxx11_abi == 0:
        tag += "-abi0"
    if runtime:
        tag += f"-{runtime.lower()}"
    return tag


def arch_tag(t: Toolchain) -> str:
    """The target processor as the folder names it: macOS universal2 for both, MSVC x86/x64."""
    if t.osx_architectures:
        return {"arm64;x86_64": "universal2", "x86_64;arm64": "universal2"}.get(t.osx_architectures, t.osx_architectures)
    if t.compiler == "msvc":
        return "x86" if t.platform == "Win32" else "x64"
    return t.arch


def configuration(lib: str, options: Options, toolchain: Toolchain, inputs: Inputs) -> str:
    """The name of this build's configuration: its default output folder's."""
    t = toolchain
    return default_out(lib, options.os, arch_tag(t), toolchain_tag(t.compiler, t.stdlib, t.cxx11_abi, t.runtime, bool(t.toolchain_file)),
                       inputs.protobuf.version or "system", options.build_type, "open" if inputs.vendor_channel_skipped else "").name


def published_record(sdk_build: Path, out: Path) -> Path:
    """Where the publish record of `out`, made from `sdk_build`, is kept (published.py)."""
    return sdk_build / ".opend-published" / (hashlib.sha256(str(out).encode()).hexdigest()[:16] + ".json")


def old_for(out: Path) -> Path:
    """Where a non-atomic publish keeps the previous output for a moment."""
    return out.with_name(f".{out.name}.old")


def staging_for(out: Path) -> Path:
    return out.with_name(f".{out.name}.staging")


def make_plan(options: Options, toolchain: Toolchain, inputs: Inputs, cache: Path, tools: Tools, cwd: Path,
              env: Mapping[str, str] | None = None, project: Path | None = None, missing: tuple[str, ...] = (), probes: tuple[str, ...] = ()) -> Plan:
    """The whole build as steps. `tools` are cmake and ninja; `cwd` resolves a relative --out;
    `env` is the environment the run will have (sccache's settings); `project` the checkout."""
    reproduce = tuple(reproducing_argv(options))  # the command line that makes this output again (the manifest's)
    env_in = dict(env or {})
    project = project or project_root()
    cmake = tools.cmake
    config = configuration(inputs.lib, options, toolchain, inputs)
    out = options.out or (cwd / "out" / config)
    staging = staging_for(out)
    # Keyed by the checkout too: two checkouts may differ in their CMake code, and CMake refuses a
    # build folder configured from another source folder.
    pb = inputs.protobuf
    pb_key = _key("protobuf", pb.identity, toolchain.key(), options.build_type, cmake, str(project))
    sdk_key = _key("sdk", inputs.identity, pb_key)
    pb_build = cache / "build" / f"protobuf-{pb_key}"
    host_pb_build: Path | None = None
    if toolchain.host is not None and pb.provider == "build":
        # The build machine's protobuf, keyed exactly as a native build's: a native build before
        # (or after) this one shares it.
        host_pb_build = cache / "build" / f"protobuf-{_key('protobuf', pb.identity, toolchain.host.key(), options.build_type, cmake, str(project))}"
    sdk_build = cache / "build" / f"{inputs.lib}-{sdk_key}"
    pb_prefix = pb_build / "prefix"
    step_env = toolchain.env
    common = ["-G", toolchain.generator, f"-DCMAKE_BUILD_TYPE={options.build_type}", *toolchain.cmake_args]
    # Where the cache, this checkout, the sources and the build folders are (their names carry a
    # hash of the checkout's and CMake's paths) never reaches the outputs: each is mapped to a fixed
    # name. A protobuf build folder is shared by every SDK build of its source and toolchain, so its
    # maps name only what its key covers. Not with sccache: the maps name the cache's path, which
    # would enter every cache key and keep two build roots from sharing hits (sccache's base
    # folders strip paths, not flags); objects shared through the cache are identical anyway.
    shared = {cache: "/opend-build/cache", project: "/opend-build/src",
              **{d: f"/opend-build/{what}-src" for d, what in ((pb.src, "protobuf"), (pb.abseil, "abseil"), (pb.utf8_range, "utf8_range")) if d}}
    sdk_maps = path_maps({**shared, **({inputs.include_dir.parent: "/opend-build/sdk-src"} if inputs.include_dir else {}),
                          pb_build: "/opend-build/build/protobuf", sdk_build: "/opend-build/build/sdk"})

    def maps_entry(maps: tuple[tuple[str, str], ...]) -> str:
        return "" if options.cache == "sccache" else ";".join(f"{folder}={name}" for folder, name in maps)

    def pb_maps(build: Path) -> str:
        return f"-DOPEND_PATH_MAPS={maps_entry(path_maps({**shared, build: '/opend-build/build/protobuf'}))}"

    cache_env: tuple[tuple[str, str], ...] = ()
    if options.cache == "sccache":
        # Paths under these folders leave the cache key (the longest that matches), so machines
        # whose home, checkout or tools sit elsewhere - and whose build folders are therefore
        # named differently - share hits.
        bases = [Path(folder) for folder, _ in reversed(sdk_maps)]  # the folders the maps name
        cache_env = compiler_cache.server_env(sdk_key, bases, options.os, Path(env_in.get("TMPDIR") or "/tmp"))
        step_env = step_env + cache_env
        common.append(f"-DCMAKE_CXX_COMPILER_LAUNCHER={tools.sccache}")
    if toolchain.generator == "Ninja":
        common.append(f"-DCMAKE_MAKE_PROGRAM={tools.ninja}")
    launcher = [a for a in common if a.startswith(("-DCMAKE_CXX_COMPILER_LAUNCHER=", "-DCMAKE_MAKE_PROGRAM="))]
    jobs = str(options.jobs)
    reads = tuple((k, env_in[k]) for k in CONFIGURE_READS if k in env_in)
    config_args = ("--config", options.build_type)  # multi-config generators (Visual Studio) need it; Ninja ignores it

    steps: list[Step] = list(inputs.prepare)
    if cache_env:
        steps.append(action_step("cache", "start this build's sccache server (one a killed run left is stopped first)", Action.SCCACHE_START, env=cache_env, sccache=tools.sccache))

    entries = {**cmake_entries(inputs), "OPEND_BIN_DIR": toolchain.bin_dir, "OPEND_CHANNEL_DIR": toolchain.channel_dir, "OPEND_PATH_MAPS": maps_entry(sdk_maps)}
    if pb.provider == "build":
        # Built once per source and toolchain into a prefix that every SDK build of both shares.
        pb_tree = str(pb_build / "tree")
        pb_defs = [f"-D{k}={entries[k]}" for k in ("OPEND_PROTOBUF_SOURCE_DIR", "OPEND_ABSEIL_SOURCE_DIR", "OPEND_UTF8_RANGE_SOURCE_DIR", "OPEND_CXX_STANDARD",
                                                   "OPEND_PROTOBUF_VERSION")]
        if host_pb_build is not None:
            assert toolchain.host is not None
            host = toolchain.host
            host_tree = str(host_pb_build / "tree")
            host_common = ["-G", host.generator, f"-DCMAKE_BUILD_TYPE={options.build_type}", *host.cmake_args, *launcher]
            host_env = host.env + cache_env
            steps += [
                configure_step("protobuf", f"configure protobuf for this machine ({host.arch}: the protoc that generates the code)",
                               (cmake, "-S", str(project / "cmake" / "protobuf"), "-B", host_tree, *host_common, *pb_defs, pb_maps(host_pb_build)), host_env, host_tree, reads),
                Step("protobuf", f"build protobuf for {host.arch}", "build", (cmake, "--build", host_tree, *config_args, "--parallel", jobs), host_env + PROGRESS,
                     build_dir=host_tree),
                Step("protobuf", f"install protobuf for {host.arch} into its shared prefix", "command",
                     (cmake, "--install", host_tree, *config_args, "--prefix", str(host_pb_build / "prefix")), host_env),
            ]
        target = f" for {toolchain.target}" if host_pb_build is not None else ""
        steps += [
            configure_step("protobuf", f"configure protobuf{target} (libprotobuf, protoc with the C++ generator)",
                           (cmake, "-S", str(project / "cmake" / "protobuf"), "-B", pb_tree, *common, *pb_defs, pb_maps(pb_build)), step_env, pb_tree, reads),
            Step("protobuf", f"build protobuf{target}", "build", (cmake, "--build", pb_tree, *config_args, "--parallel", jobs), step_env + PROGRESS, build_dir=pb_tree),
            Step("protobuf", f"install protobuf{target} into the shared prefix", "command", (cmake, "--install", pb_tree, *config_args, "--prefix", str(pb_prefix)), step_env),
        ]
        entries.update({"OPEND_PROTOBUF_SOURCE_DIR": "", "OPEND_ABSEIL_SOURCE_DIR": "", "OPEND_UTF8_RANGE_SOURCE_DIR": "", "OPEND_PROTOBUF_DIR": str(pb_prefix)})
        if host_pb_build is not None:
            entries["OPEND_HOST_PROTOC"] = str(host_pb_build / "prefix" / "bin" / "protoc")
    if pb.provider == "installed" and pb.protoc is not None:
        # The protoc planning found (and the plan names): a configure cached from an earlier run
        # would otherwise keep the one it found then, whatever PATH says now.
        entries["Protobuf_PROTOC_EXECUTABLE"] = str(pb.protoc)
    sdk_defs = [f"-D{k}={v}" for k, v in entries.items()]
    published = Published(str(published_record(sdk_build, out)))
    steps += [
        configure_step("sdk", f"configure {inputs.lib}", (cmake, "-S", str(project), "-B", str(sdk_build), *common, *sdk_defs), step_env, str(sdk_build), reads),
        Step("sdk", "generate protocol classes and compile the library", "build", (cmake, "--build", str(sdk_build), *config_args, "--parallel", jobs), step_env + PROGRESS,
             build_dir=str(sdk_build)),
        *([action_step("cache", "compiler cache statistics", Action.SCCACHE_STATS, env=cache_env, sccache=tools.sccache)] if cache_env else []),
        action_step("install", f"hard-link {out.name}'s files into staging (the install replaces what changed)", Action.LINK_OUT, published, out=out, staging=staging),
        Step("install", "install into staging", "command", (cmake, "--install", str(sdk_build), *config_args, "--prefix", str(staging)), step_env, skip_when=published),
        action_step("install", "remove from staging what the install did not lay out", Action.PRUNE_STAGING, published, staging=staging, build=sdk_build),
        action_step("install", "write build-manifest.json", Action.MANIFEST, published, dir=staging, build=sdk_build),
        action_step("publish", f"replace {out.name} atomically", Action.PUBLISH, published, staging=staging, out=out),
    ]
    if options.os == "macos":
        # The vendor's FAQ: downloaded dylibs carry com.apple.quarantine and will not load until cleared.
        steps.append(action_step("post", "clear com.apple.quarantine where present", Action.CLEAR_QUARANTINE, published,
                                 folder=out / toolchain.bin_dir))
    return Plan(
        os=options.os,
        brand=inputs.brand,
        lib=inputs.lib,
        sdk_version=inputs.version,
        build_type=options.build_type,
        jobs=options.jobs,
        toolchain=toolchain,
        inputs=inputs,
        out=out,
        configuration=config,
        staging=staging,
        protobuf_build=pb_build,
        sdk_build=sdk_build,
        locks=(*([host_pb_build.with_suffix(".lock")] if host_pb_build else []), pb_build.with_suffix(".lock"), sdk_build.with_suffix(".lock"),
               out.with_name(f".{out.name}.lock")),
        steps=tuple(steps),
        cache_env=cache_env,
        sccache=tools.sccache if cache_env else "",
        cache_backend=compiler_cache.backend(env_in) if cache_env else "",
        missing=missing,
        source_date_epoch=env_in.get("SOURCE_DATE_EPOCH", ""),
        reproduce=reproduce,
        host_protobuf_build=host_pb_build,
        probes=probes,
        pause_before=env_in.get("OPEND_BUILD_PAUSE_BEFORE", ""),
        path_maps=sdk_maps,
    )
