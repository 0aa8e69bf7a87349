#!/usr/bin/env python3
"""opend-build against the vendor's manual path, measured side by side on this machine in one run.

    python bench/run.py                        # the default inputs: futu's 184 protocol files
    python bench/run.py --sdk FTAPI4CPP.zip    # a vendor SDK (its protobuf-all tarball's own cmake/ is used)
    python bench/run.py --quick                # a dozen protocol files: checks the harness in minutes

Scenarios, each for the manual path and for build.py: a cold build; a no-op rebuild; one .proto
touched (its mtime changed: the manual path runs protoc on it again and `make`); one .proto edited
(a field added to Qot_Sub.proto); and, for build.py, a cold build against the installed protobuf
(--protobuf system: Debian's libprotobuf-dev and protoc 3.21.12, nothing of protobuf built) and a
cold build in a fresh build root with a warm compiler cache (--cache sccache, after a cold build
that filled it). The system row is compared with the same manual cold build (the FAQ's route, which
builds protobuf 3.5.1 itself): it answers how long a user of the installed protobuf waits against
the vendor's instructions.

What a row needs is checked before anything is built: the manual path needs make and c++, the
system row and the sccache rows are planned by the driver (--dry-run), which refuses a missing
protobuf or sccache with its one-line error; a row that cannot run is left out with that line.

Measured for each: wall time; CPU time of the whole machine (from /proc/stat, so the compiles
that sccache's server runs count too); peak memory, the sum of the resident memory of every
process started during the run, sampled every 0.1 s (shared pages count once per process, so
this errs high). The floor is the CPU time of the compiles and links build.py's cold build ran
(from Ninja's logs) divided by the cores: the wall time of a machine busy with nothing else.

The manual path follows the FAQ (Q1/Q7): protobuf with its own cmake/ and the default generator,
plain `make`; `protoc -I=Include/Proto --cpp_out=...` once per file; a plain CMake build of the
library, plain `make`. Both sides build Release (CMAKE_BUILD_TYPE=Release on the manual path's
two CMake steps: the FAQ's lines leave it unset, which builds unoptimized), -std=gnu++11.
The table is printed and written as JSON (bench/results/latest.json and a dated copy).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402

build.load(ROOT)  # this checkout's package, even when an editable install of another one is active

from opend_build import archives, errors, runner, sources, tools  # noqa: E402
from opend_build.sdk import BRANDS, DEFAULT_BRAND, import_closure, open_sdk  # noqa: E402

OPTIONAL_ROWS = ("system", "sccache")
QUICK_PROTOS = ["InitConnect.proto", "Qot_Sub.proto", "Trd_PlaceOrder.proto", "Qot_GetIpoList.proto"]
TOUCHED = "Qot_Sub.proto"
TARGETS = {  # from the issues: ratios from one run on this 2-core machine
    "cold": ("ours/manual wall", 0.25),
    "cold_floor": ("ours cold / floor", 1.05),
    "system": ("ours system cold/manual cold", 0.15),
    "noop": ("ours wall seconds", 2.0),
    "touch": ("ours wall seconds", 15.0),
    "edit": ("ours/manual wall", 1.0),
    "warm_cache": ("ours warm / ours cold wall", 0.25),
    "peak_memory": ("GiB, ours cold", 4.0),
}


# --- measuring ---------------------------------------------------------------------------------


def _busy_seconds() -> float:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def _rss(pid: int, page: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * page
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class Measure:
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0

    @property
    def peak_gib(self) -> float:
        return self.peak_rss / 1024**3


def measured(argv: list[str], env: dict[str, str | None] | None = None, cwd: Path | None = None, log: Path | None = None) -> Measure:
    """Run one command to the end and measure it (see the module's docstring). In `env`, None
    removes a variable."""
    full = {**os.environ, **{k: v for k, v in (env or {}).items() if v is not None}}
    for k in [k for k, v in (env or {}).items() if v is None]:
        full.pop(k, None)
    before = _pids() | {os.getpid()}
    page = os.sysconf("SC_PAGE_SIZE")
    m = Measure()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = sum(_rss(p, page) for p in _pids() - before)
            m.peak_rss = max(m.peak_rss, total)
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    cpu0, t0 = _busy_seconds(), time.monotonic()
    sampler.start()
    out = open(log, "a", encoding="utf-8") if log else subprocess.DEVNULL
    try:
        if log:
            out.write(f"\n$ {' '.join(argv)}\n")  # type: ignore[union-attr]
            out.flush()  # type: ignore[union-attr]
        r = subprocess.run(argv, env=full, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    finally:
        m.wall = time.monotonic() - t0
        m.cpu = _busy_seconds() - cpu0
        stop.set()
        sampler.join()
        if log:
            out.close()  # type: ignore[union-attr]
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])}... failed ({r.returncode}); see {log}")
    return m


def add(a: Measure, b: Measure) -> Measure:
    return Measure(a.wall + b.wall, a.cpu + b.cpu, max(a.peak_rss, b.peak_rss))


def ninja_floor(build_dirs: list[Path], cores: int) -> tuple[float, int]:
    """(seconds, edges): compile and link edges of the last build in these Ninja logs, / cores."""
    total, edges = 0.0, 0
    for d in build_dirs:
        log = d / ".ninja_log"
        if not log.is_file():
            continue
        for line in log.read_text().splitlines()[1:]:
            start, end, _mtime, target, _hash = line.split("\t")
            if target.endswith((".o", ".obj", ".gch", ".a", ".lib")) or "/protoc" in target or target == "protoc":
                total += (int(end) - int(start)) / 1000
                edges += 1
    return total / cores, edges


# --- inputs ------------------------------------------------------------------------------------


def default_sdk(dest: Path, brand: str, quick: bool) -> Path:
    """An SDK folder from the pinned open inputs: Include/Proto/*.proto and an unpacked protobuf."""
    pins = sources.load_pins()
    protos = runner.prepared(brand, sources.cache_root(os.environ), ".proto")
    pb = runner.prepared("protobuf", sources.cache_root(os.environ))
    lib = BRANDS[brand]
    root = dest / f"{lib}4CPP_{pins[brand].version}"
    (root / "Include" / "Proto").mkdir(parents=True)
    names = import_closure(protos, QUICK_PROTOS) if quick else sorted(p.name for p in protos.glob("*.proto"))
    for n in names:
        shutil.copy2(protos / n, root / "Include" / "Proto" / n)
    shutil.copytree(pb, root / "Src" / "protobuf-3.5.1" / "src")
    return root


def given_sdk(path: Path, dest: Path) -> Path:
    if path.is_dir():
        shutil.copytree(path, dest / path.name, symlinks=True)
        unpacked = dest / path.name
    else:
        archives.extract(path, dest / "unpacked")
        unpacked = dest / "unpacked"
    tree = open_sdk(unpacked)
    return unpacked / tree.root if tree.root else unpacked


def edit_proto(sdk_root: Path) -> None:
    """Add a field to Qot_Sub.C2S: a real edit, which changes the generated code."""
    p = sdk_root / "Include" / "Proto" / TOUCHED
    text = p.read_text(encoding="utf-8")
    new, n = re.subn(r"(message\s+C2S\s*\{)", r"\1\n\toptional int32 benchTouched = 900;", text, count=1)
    if n != 1:
        raise SystemExit(f"bench: no message C2S in {p}")
    p.write_text(new, encoding="utf-8")


# --- the two paths -------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    manual: Measure | None
    ours: Measure | None
    detail: dict[str, object] = field(default_factory=dict)


class Manual:
    """The FAQ's steps, by hand, with the default generator and plain `make`."""

    def __init__(self, sdk_root: Path, work: Path, log: Path) -> None:
        self.sdk, self.work, self.log = sdk_root, work, log
        self.cmake = tools.cmake(os.environ)
        self.proto_dir = sdk_root / "Include" / "Proto"
        self.lib = open_sdk(sdk_root).lib

    def _protobuf_root(self) -> tuple[Path, Measure]:
        """The protobuf release folder (unpacked from Src/protobuf-all-*.tar.gz, as a user does)."""
        tree = open_sdk(self.sdk)
        if tree.protobuf is None:
            raise SystemExit("bench: the SDK has no protobuf source")
        given = self.sdk / tree.protobuf
        if given.is_dir():
            return (given.parent if given.name == "src" else given), Measure()
        dest = self.work / "protobuf"
        m = measured([sys.executable, "-c", "import sys; from pathlib import Path; from opend_build import archives; archives.extract(Path(sys.argv[1]), Path(sys.argv[2]))",
                      str(given), str(dest)], env={"PYTHONPATH": str(ROOT / "src")}, log=self.log)
        inner = [p for p in dest.iterdir() if p.is_dir()]
        return (inner[0] if len(inner) == 1 else dest), m

    def cold(self) -> Measure:
        pb_root, total = self._protobuf_root()
        pb_src = pb_root / "src"
        upstream = pb_root / "cmake" / "CMakeLists.txt"
        self.real_cmake = upstream.is_file() and "libprotobuf" in upstream.read_text(errors="replace")
        flags = ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_FLAGS=-std=gnu++11"]
        if self.real_cmake:  # CMake 4 refuses 3.5.1's cmake_minimum_required(3.1.3) without this
            pb_cfg = [self.cmake, "-S", str(pb_root / "cmake"), "-B", str(self.work / "pb"), "-Dprotobuf_BUILD_TESTS=OFF", "-DCMAKE_POLICY_VERSION_MINIMUM=3.5", *flags]
        else:
            pb_cfg = [self.cmake, "-S", str(ROOT / "bench" / "manual" / "protobuf"), "-B", str(self.work / "pb"), f"-DPROTOBUF_SRC={pb_src}", *flags]
        total = add(total, measured(pb_cfg, log=self.log))
        total = add(total, measured(["make"], cwd=self.work / "pb", log=self.log))
        self.protoc = self.work / "pb" / "protoc"
        for proto in sorted(self.proto_dir.glob("*.proto")):
            total = add(total, self.generate(proto))
        src = self.sdk / "Src" / self.lib
        total = add(total, measured([self.cmake, "-S", str(ROOT / "bench" / "manual" / "library"), "-B", str(self.work / "lib"), *flags,
                                     f"-DLIB={self.lib}", f"-DSDK_INCLUDE={self.sdk / 'Include'}", f"-DSDK_SOURCES={src if src.is_dir() else ''}",
                                     f"-DPROTOBUF_SRC={pb_src}"], log=self.log))
        return add(total, measured(["make"], cwd=self.work / "lib", log=self.log))

    def generate(self, proto: Path) -> Measure:
        return measured([str(self.protoc), f"-I={self.proto_dir}", f"--cpp_out={self.proto_dir}", str(proto)], log=self.log)

    def noop(self) -> Measure:
        return add(measured(["make"], cwd=self.work / "pb", log=self.log), measured(["make"], cwd=self.work / "lib", log=self.log))

    def touch(self) -> Measure:
        os.utime(self.proto_dir / TOUCHED)
        return add(self.generate(self.proto_dir / TOUCHED), measured(["make"], cwd=self.work / "lib", log=self.log))

    def edit(self) -> Measure:
        edit_proto(self.sdk)
        return add(self.generate(self.proto_dir / TOUCHED), measured(["make"], cwd=self.work / "lib", log=self.log))


class Ours:
    def __init__(self, sdk_root: Path, work: Path, log: Path, downloads: Path) -> None:
        self.sdk, self.work, self.log, self.downloads = sdk_root, work, log, downloads

    def root(self, name: str) -> Path:
        """A fresh build root (OPEND_BUILD_CACHE), with the verified downloads copied in."""
        r = self.work / name
        if r.exists():
            shutil.rmtree(r)
        if self.downloads.is_dir():
            shutil.copytree(self.downloads, r / "downloads")
        return r

    def build(self, root: Path, *extra: str, env: dict[str, str | None] | None = None) -> tuple[Measure, dict]:  # type: ignore[type-arg]
        # One output per cache root, so a row of another configuration (--protobuf system) never
        # publishes over the pinned build's output, which the driver refuses.
        summary = self.work / "summary.json"
        summary.unlink(missing_ok=True)
        m = measured([sys.executable, str(ROOT / "build.py"), "--os", "linux", "--sdk", str(self.sdk), "--out", str(self.work / f"out-{root.name}"),
                      "--summary-json", str(summary), *extra], env={"OPEND_BUILD_CACHE": str(root), **(env or {})}, log=self.log)
        return m, json.loads(summary.read_text())


def counts(summary: dict) -> dict[str, int]:  # type: ignore[type-arg]
    phases = summary["phases"]
    return {"compiled": sum(p["compiled"] for p in phases.values()), "generated": sum(p["generated"] for p in phases.values())}


# --- report -------------------------------------------------------------------------------------


def fmt_row(r: Row) -> str:
    def cell(m: Measure | None) -> str:
        return f"{m.wall:8.1f} {m.cpu:8.1f} {m.peak_gib:6.2f}" if m else f"{'-':>8} {'-':>8} {'-':>6}"

    ratio = f"{r.ours.wall / r.manual.wall:6.2f}x" if r.ours and r.manual and r.manual.wall > 0 else f"{'-':>7}"
    return f"{r.scenario:<36} {cell(r.manual)}   {cell(r.ours)}   {ratio}"


def verdicts(rows: dict[str, Row], floor: float) -> list[tuple[str, float, float, bool]]:
    cold, warm, system = rows["cold"], rows.get("warm_cache"), rows.get("system")
    out = []
    if cold.manual and cold.ours:
        out.append(("cold", cold.ours.wall / cold.manual.wall, TARGETS["cold"][1]))
    if cold.ours and floor > 0:
        out.append(("cold_floor", cold.ours.wall / floor, TARGETS["cold_floor"][1]))
    if system and system.ours and cold.manual:
        out.append(("system", system.ours.wall / cold.manual.wall, TARGETS["system"][1]))
    for name in ("noop", "touch"):
        if name in rows and rows[name].ours:
            out.append((name, rows[name].ours.wall, TARGETS[name][1]))
    edit = rows.get("edit")
    if edit and edit.ours and edit.manual:
        out.append(("edit", edit.ours.wall / edit.manual.wall, TARGETS["edit"][1]))
    if warm and warm.ours and cold.ours:
        out.append(("warm_cache", warm.ours.wall / cold.ours.wall, TARGETS["warm_cache"][1]))
    if cold.ours:
        out.append(("peak_memory", cold.ours.peak_gib, TARGETS["peak_memory"][1]))
    return [(name, value, target, value <= target) for name, value, target in out]


def cold_manual_wall(rows: dict[str, Row]) -> float:
    m = rows["cold"].manual
    return m.wall if m else 0.0


def tool_versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    def sccache() -> str:
        try:
            return first_line([tools.sccache(os.environ), "--version"])
        except errors.ToolchainError:
            return "not installed"

    return {"cxx": first_line(["c++", "--version"]), "cmake": first_line([tools.cmake(os.environ), "--version"]),
            "ninja": first_line([tools.ninja(os.environ), "--version"]), "sccache": sccache(), "protoc": first_line(["protoc", "--version"])}


def refusal(returncode: int, stdout: str, stderr: str) -> str | None:
    """What a --dry-run says stops its build: its one-line error, or the plan's "missing on this
    machine" lines; None when nothing does."""
    if returncode != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ["no message"]
        return f"{lines[0]} (exit {returncode})"
    missing = [line.split("missing on this machine: ", 1)[1] for line in stdout.splitlines() if "missing on this machine: " in line]
    return "; ".join(missing) or None


def why_not(argv: list[str], env: dict[str, str]) -> str | None:
    """Why the driver would not build `argv` here (planned with --dry-run), or None."""
    r = subprocess.run([sys.executable, str(ROOT / "build.py"), *argv, "--dry-run"], env={**os.environ, **env}, capture_output=True, text=True)
    return refusal(r.returncode, r.stdout, r.stderr)


def missing_for_manual() -> str | None:
    absent = [exe for exe in ("make", "c++") if shutil.which(exe) is None]
    return f"{', '.join(absent)} not on PATH" if absent else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sdk", type=Path, help="a vendor SDK folder or archive (default: the open inputs from PyPI)")
    p.add_argument("--brand", choices=sorted(BRANDS), default=DEFAULT_BRAND)
    p.add_argument("--quick", action="store_true", help="a dozen protocol files instead of all: to check the harness")
    p.add_argument("--skip-manual", action="store_true", help="only build.py's scenarios (ratios to the manual path are left out)")
    p.add_argument("--without", action="append", choices=OPTIONAL_ROWS, default=[], help="leave out these rows of build.py's (repeatable)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "opend-bench", help="scratch folder (emptied first)")
    p.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    a = p.parse_args()

    work = a.work.absolute()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log = work / "bench.log"
    cores = os.cpu_count() or 1
    print(f"bench: {cores} cores, work in {work}, log {log}", flush=True)

    inputs = work / "inputs"
    sdk_manual = given_sdk(a.sdk.absolute(), inputs / "manual") if a.sdk else default_sdk(inputs / "manual", a.brand, a.quick)
    sdk_ours = given_sdk(a.sdk.absolute(), inputs / "ours") if a.sdk else default_sdk(inputs / "ours", a.brand, a.quick)
    n_protos = len(list((sdk_ours / "Include" / "Proto").glob("*.proto")))
    print(f"bench: {n_protos} protocol files from {a.sdk or 'the pinned PyPI inputs'}", flush=True)

    # What each row needs, checked before anything is built.
    left_out = {name: "--without" for name in a.without}
    if not a.skip_manual and (why := missing_for_manual()):
        left_out["manual"] = why
    check = ["--os", "linux", "--sdk", str(sdk_ours), "--out", str(work / "out-check")]
    check_env = {"OPEND_BUILD_CACHE": str(work / "root-check")}
    if why := why_not(check, check_env):
        raise SystemExit(f"bench: build.py cannot build here: {why}")
    for name, extra in (("system", ["--protobuf", "system"]), ("sccache", ["--cache", "sccache"])):
        if name not in left_out and (why := why_not([*check, *extra], check_env)):
            left_out[name] = why
    for name, why in left_out.items():
        print(f"bench: leaving out {name}: {why}", flush=True)

    rows: dict[str, Row] = {}
    manual = None if a.skip_manual or "manual" in left_out else Manual(sdk_manual, work / "manual", log)
    ours = Ours(sdk_ours, work / "ours", log, sources.cache_root(os.environ) / "downloads")

    def run(name: str, label: str, fm, fo) -> None:  # type: ignore[no-untyped-def]
        print(f"bench: {label} ...", flush=True)
        mm = fm() if fm else None
        if mm:
            print(f"    manual   {mm.wall:7.1f}s wall {mm.cpu:7.1f}s CPU {mm.peak_gib:5.2f} GiB", flush=True)
        mo, detail = fo() if fo else (None, {})
        if mo:
            print(f"    build.py {mo.wall:7.1f}s wall {mo.cpu:7.1f}s CPU {mo.peak_gib:5.2f} GiB {detail}", flush=True)
        rows[name] = Row(label, mm, mo, detail)

    root_cold = ours.root("root-cold")

    def ours_cold() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        m, s = ours.build(root_cold)
        return m, counts(s)

    def ours_again() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        m, s = ours.build(root_cold)
        return m, counts(s)

    def ours_touch() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        os.utime(sdk_ours / "Include" / "Proto" / TOUCHED)
        return ours_again()

    def ours_edit() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        edit_proto(sdk_ours)
        return ours_again()

    run("cold", "cold build", manual.cold if manual else None, ours_cold)
    floor, edges = ninja_floor(sorted((root_cold / "build").glob("protobuf-*/tree")) + sorted(p for p in (root_cold / "build").iterdir() if p.is_dir() and not p.name.startswith("protobuf-")), cores)
    run("noop", "no-op rebuild", manual.noop if manual else None, ours_again)
    run("touch", f"one .proto touched ({TOUCHED})", manual.touch if manual else None, ours_touch)
    run("edit", f"one .proto edited ({TOUCHED})", manual.edit if manual else None, ours_edit)

    def ours_system() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        m, s = ours.build(ours.root("root-system"), "--protobuf", "system")
        return m, counts(s)

    if "system" not in left_out:
        run("system", "cold build, --protobuf system", None, ours_system)

    # A local cache that starts empty: the bench must not read someone's shared one.
    scc_env: dict[str, str | None] = {v: None for v in os.environ if v.startswith("SCCACHE_")}
    scc_env.update({"SCCACHE_DIR": str(work / "sccache"), "SCCACHE_CACHE_SIZE": "10G"})

    def ours_fill() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        m, s = ours.build(ours.root("root-fill"), "--cache", "sccache", env=scc_env)
        return m, {**counts(s), "sccache": s["compiler_cache"]}

    def ours_warm() -> tuple[Measure, dict]:  # type: ignore[type-arg]
        m, s = ours.build(ours.root("root-warm"), "--cache", "sccache", env=scc_env)
        return m, {**counts(s), "sccache": s["compiler_cache"]}

    if "sccache" not in left_out:
        run("fill_cache", "cold build, empty sccache", None, ours_fill)
        run("warm_cache", "cold build, warm sccache", None, ours_warm)

    head = f"{'scenario':<36} {'manual: wall':>8} {'CPU s':>8} {'GiB':>6}   {'build.py: wall':>8} {'CPU s':>8} {'GiB':>6}   {'ratio':>7}"
    lines = [head, "-" * len(head), *(fmt_row(r) for r in rows.values())]
    lines += [f"left out: {name}: {why}" for name, why in left_out.items()]
    if "system" in rows and cold_manual_wall(rows):
        lines.append(f"system: build.py --protobuf system cold / the manual path's cold build (which builds protobuf 3.5.1) = {rows['system'].ours.wall / cold_manual_wall(rows):.2f}x")  # type: ignore[union-attr]
    cold = rows["cold"].ours
    assert cold is not None
    lines.append(f"floor: {floor:.1f}s ({edges} compile/link edges of build.py's cold build / {cores} cores); build.py cold is {cold.wall / floor:.2f}x the floor")
    checks = verdicts(rows, floor)
    for name, value, target, ok in checks:
        lines.append(f"target {name:<12} {TARGETS[name][0]:<30} {value:8.2f} <= {target:<6} {'ok' if ok else 'MISSED'}")
    print("\n" + "\n".join(lines))

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "machine": {"cores": cores, "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1), **tool_versions()},
        "inputs": {"sdk": str(a.sdk) if a.sdk else "pypi", "brand": a.brand, "protos": n_protos,
                   "manual_protobuf_cmake": ("upstream cmake/" if getattr(manual, "real_cmake", False) else "bench/manual/protobuf (model of upstream's)") if manual else None},
        "rows": {k: {"scenario": r.scenario, "manual": asdict(r.manual) if r.manual else None, "ours": asdict(r.ours) if r.ours else None, "detail": r.detail} for k, r in rows.items()},
        "floor_seconds": round(floor, 1),
        "left_out": left_out,
        "targets": [{"name": n, "value": round(v, 3), "target": t, "ok": ok} for n, v, t, ok in checks],
        "table": lines,
    }
    a.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (a.results / ("quick-latest.json" if a.quick else "latest.json")).write_text(text)
    (a.results / f"{stamp}{'-quick' if a.quick else ''}.json").write_text(text)
    print(f"\nbench: written to {a.results / ('quick-latest.json' if a.quick else 'latest.json')}")
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
