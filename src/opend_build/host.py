"""The one boundary to the machine we run on: its environment, PATH lookups, processes, probes.

No other module imports `subprocess` or reads `os.environ` (tests/test_design.py holds it). The
command line reads the environment here once (`environ()`) and hands it on as a value; planning
gets what it needs of the machine through a `Probe`, which names every process it starts so the
plan's head can list them; the runner, doctor and verify start their processes through `run` and
`stream`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TimeoutExpired = subprocess.TimeoutExpired
Completed = subprocess.CompletedProcess


def environ() -> dict[str, str]:
    """A copy of this process's environment: the one read of it."""
    return dict(os.environ)


def which(name: str, env: Mapping[str, str]) -> str | None:
    """`name` as a shell would find it on the PATH of `env`, or None."""
    return shutil.which(name, path=env.get("PATH", os.defpath))


def home(env: Mapping[str, str]) -> Path:
    """The home folder `env` names (HOME, USERPROFILE on Windows)."""
    value = env.get("HOME") or env.get("USERPROFILE")
    return Path(value) if value else Path(os.path.expanduser("~"))


def expand(path: Path, env: Mapping[str, str]) -> Path:
    """`~` and `~/...` against the home of `env`, then absolute."""
    parts = path.parts
    if parts and parts[0] == "~":
        path = home(env).joinpath(*parts[1:])
    return path.absolute()


def cwd() -> Path:
    return Path.cwd()


def cpu_count() -> int:
    return os.cpu_count() or 1


def memory_gib() -> float:
    """Physical memory (8 GiB where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return 8.0


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float | None = None, check: bool = False,
        cwd: Path | None = None) -> Completed[str]:
    """Run `argv` to its end, its output captured as text. `env` replaces the environment when given."""
    return subprocess.run(list(argv), env=None if env is None else dict(env), capture_output=True, text=True, timeout=timeout, check=check,
                          cwd=cwd)


@contextmanager
def stream(argv: Sequence[str], env: Mapping[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Start `argv` with stdout and stderr on one pipe, read line by line by the caller; on leaving,
    a process still running is terminated (killed after 10 s)."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(env), text=True, errors="replace", bufsize=1)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# --- probes: what planning and doctor learn of this machine by running something ------------------


@dataclass
class Probe:
    """Looks at this machine for planning, in the environment planning is given; every process it
    starts is listed in `ran`, which the plan's head prints. `Probe(None)` stands for a machine
    that is not this one (another OS's --dry-run): it finds nothing and runs nothing."""

    env: Mapping[str, str] | None
    ran: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.env is not None

    def which(self, name: str) -> str | None:
        return which(name, self.env) if self.env is not None else None

    def _run(self, argv: list[str], timeout: float = 60) -> Completed[str]:
        assert self.env is not None, "a probe of another machine runs nothing"
        self.ran.append(" ".join(argv))
        return run(argv, env=self.env, timeout=timeout)  # in the environment it was given, as the build runs

    def compiler_version(self, cxx: str) -> str:
        """gcc's and clang's own version number (-dumpfullversion, falling back to -dumpversion)."""
        return self._run([cxx, "-dumpfullversion", "-dumpversion"]).stdout.strip() or "unknown"

    def version_line(self, exe: str) -> str:
        """The first line `exe --version` prints, on stdout or else stderr ("" when nothing)."""
        r = self._run([exe, "--version"])
        lines = (r.stdout or r.stderr).strip().splitlines()
        return lines[0] if lines else ""

    def compiles(self, cxx: str, flags: Sequence[str], source: str) -> bool:
        """Whether `cxx` compiles and links `source` with `flags` (in a scratch folder, then gone)."""
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.cpp"
            src.write_text(source)
            return self._run([cxx, *flags, str(src), "-o", str(Path(tmp) / "probe")]).returncode == 0

    def vswhere(self) -> list[dict[str, str]]:
        """Visual Studio's installs, as its vswhere lists them (none when vswhere is absent)."""
        if self.env is None:
            return []
        exe = Path(self.env.get("ProgramFiles(x86)", r"C:\Program Files (x86)")) / "Microsoft Visual Studio" / "Installer" / "vswhere.exe"
        if not exe.is_file():
            return []
        return json.loads(self._run([str(exe), "-all", "-products", "*", "-format", "json"]).stdout or "[]")  # type: ignore[no-any-return]


def has_xattr(path: Path, name: str) -> bool:
    """macOS: whether `path` carries the extended attribute `name`."""
    return run(["xattr", "-p", name, str(path)]).returncode == 0


def remove_xattr(path: Path, name: str) -> None:
    run(["xattr", "-r", "-d", name, str(path)], check=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone (a closed pipe), and what is still buffered
    must not fail again when Python flushes it at exit."""
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
