#!/usr/bin/env python3
"""The whole test suite in one command: `python tests/run.py [pytest arguments]`.

The suite builds with real toolchains and starts real servers, so it needs a few Debian packages
besides Python's. As root (a container, CI) they are installed with apt-get when missing; as anyone
else the command names the one `apt-get install` line to run and stops (exit 2). Then it runs
pytest over the whole suite and exits with pytest's code (no test run at all counts as a failure).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the suite uses, and why:
DEBIAN_PACKAGES = (
    "g++", "binutils",  # the C++ compiler, and nm to read built archives
    "clang", "libc++-dev", "libc++abi-dev",  # clang with libc++: the macOS-like toolchain
    "cmake",  # Debian's CMake 3.25: the suite builds with CMake 3.2x besides PyPI's 4.x
    "libprotobuf-dev", "protobuf-compiler",  # Debian's protobuf 3.21.12: --protobuf system
    "libssl-dev",  # OpenSSL: the 10.x shape's channel source includes it
    "redis-server",  # the shared compiler cache of the sccache tests
    "git",  # the packaging tests copy the project's files as git lists them
    "faketime",  # test_reproducible.py: the rebuilds run with the clock moved on
    "strace",  # test_design.py: a --dry-run is watched to write no file and start only the probes it names
    # test_cross.py: an aarch64 build (the cross g++), its consumer run under QEMU, the aarch64
    # OpenSSL its open channel links and the aarch64 protobuf of the --protobuf system cross build
    # (Debian multiarch: needs the arm64 architecture added)
    "g++-aarch64-linux-gnu", "qemu-user", "libssl-dev:arm64", "libprotobuf-dev:arm64",
    # test_mingw.py: a Windows x64 build with MinGW-w64 (the posix threads variant), its consumer run under Wine
    "g++-mingw-w64-x86-64-posix", "wine64",
)


def missing(packages: tuple[str, ...]) -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []  # not a Debian system: nothing to check here; a missing tool fails its test by name
    # ${binary:Package} names a foreign-architecture package as dpkg does (libssl-dev:arm64); a native
    # one bare, or (a Multi-Arch: same one, once a foreign architecture is added) with the native suffix.
    out = subprocess.run(["dpkg-query", "-W", "-f", "${binary:Package} ${Status}\n", *packages], capture_output=True, text=True).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    installed |= {f"{p}:{native}" for p in installed if ":" not in p} | {p.removesuffix(f":{native}") for p in installed}
    return [p for p in packages if p not in installed]


def foreign_architectures(packages: list[str]) -> list[str]:
    """The dpkg architectures `packages` name (libssl-dev:arm64 -> arm64) that dpkg does not know yet."""
    wanted = sorted({p.partition(":")[2] for p in packages if ":" in p})
    if not wanted:
        return []
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    known = set(subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()) | {native}
    return [a for a in wanted if a not in known]


def install(packages: list[str]) -> int:
    line = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    # An :arm64 package needs dpkg to know the architecture first (and apt-get update after that);
    # only then, and only for the architectures dpkg does not know yet, is it added.
    add_archs = [["dpkg", "--add-architecture", a] for a in foreign_architectures(packages)]
    as_root: list[str] = []
    if os.geteuid() != 0:
        # A CI runner's user may use sudo without a password; anyone else is asked to, once.
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            as_root = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
        else:
            print(f"error: the test suite needs these Debian packages: {' '.join(packages)}", file=sys.stderr)
            steps = [*(shlex.join(a) for a in add_archs), *(["apt-get update"] if add_archs else []), shlex.join(line)]
            print(f"  what to do: {' && '.join('sudo ' + c for c in steps)}   (then run this command again)", file=sys.stderr)
            return 2
    print(f"installing the Debian packages the suite needs: {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (*([*as_root, *a] for a in add_archs), [*as_root, "apt-get", "update", "-qq"], [*as_root, *line, "-qq"]):
        if subprocess.run(argv, env=env).returncode != 0:
            print(f"error: {shlex.join(argv)} failed", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str]) -> int:
    need = missing(DEBIAN_PACKAGES)
    if need and (rc := install(need)) != 0:
        return rc
    rc = subprocess.run([sys.executable, "-m", "pytest", *argv], cwd=ROOT).returncode
    return 1 if rc == 5 else rc  # pytest's 5: no test was collected, which is no pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
