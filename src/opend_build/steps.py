"""The vocabulary of a plan: what a step is and which actions the runner knows. No I/O.

A step either runs a command (`configure`, `build`, `command`) or one of the runner's own
`Action`s, named by the enum, never by a string. A step the runner may skip says when
(`skip_when`, a typed value), so a `--dry-run` shows the run's decisions as well as its work.
"""

from __future__ import annotations

import enum
import hashlib
import json
import shlex
from dataclasses import dataclass


class Action(enum.Enum):
    """Everything the runner does in Python rather than by running a command."""

    FETCH = "fetch"  # a pinned download, verified against its sha256
    UNPACK_PIN = "unpack_pin"  # the pinned protocol files
    UNPACK_SDK = "unpack_sdk"  # an SDK archive, into the cache
    UNPACK_PROTOBUF = "unpack_protobuf"  # a protobuf source, checked against the digest it is named by
    REMEMBER = "remember"  # digests planning computed, into the cache's memo (planning itself writes nothing)
    SCCACHE_START = "sccache_start"
    SCCACHE_STATS = "sccache_stats"
    LINK_OUT = "link_out"  # the output's files, hard-linked into staging: the install then copies only what changed
    PRUNE_STAGING = "prune_staging"  # what the install no longer lays out leaves staging
    MANIFEST = "manifest"  # build-manifest.json into the staging folder
    PUBLISH = "publish"  # staging replaces the output in one rename
    CLEAR_QUARANTINE = "clear_quarantine"  # macOS: the vendor's FAQ


# What a configure reads from the process environment besides its arguments: the runner passes
# these as planning saw them (and no others of these names), and the configure stamp compares them.
CONFIGURE_READS = ("PATH", "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "CMAKE_PREFIX_PATH", "CMAKE_INCLUDE_PATH",
                   "CMAKE_LIBRARY_PATH", "CMAKE_PROGRAM_PATH", "PKG_CONFIG_PATH", "Protobuf_ROOT", "OPENSSL_ROOT_DIR", "ZLIB_ROOT",
                   "SDKROOT", "MACOSX_DEPLOYMENT_TARGET")

# Why the runner may skip a step: one small value per kind, carrying what it compares. The runner
# alone decides by it (runner.skips); the plan prints its `text`; actions never skip on their own.


@dataclass(frozen=True)
class Present:
    """An unpack whose destination folder exists (folders are named by their content, and appear whole)."""

    path: str
    text = "skipped when its destination exists"


@dataclass(frozen=True)
class Verified:
    """A download already in the cache whose bytes match the pinned sha256."""

    path: str
    sha256: str
    text = "skipped when the cached download matches its sha256"


@dataclass(frozen=True)
class Configured:
    """A configure whose folder's stamp holds the digests of its arguments and environment (`args`)
    and of the variables it reads (`reads`); when only `reads` differ, it runs on a fresh cache."""

    build_dir: str
    args: str
    reads: str
    text = ("skipped when the folder's stamp matches these arguments and environment and the variables the configure reads "
            f"({', '.join(CONFIGURE_READS)}) as planned; configured afresh (CMakeCache.txt dropped) when those variables changed")

    @property
    def stamp(self) -> str:
        return f"{self.build_dir}/.opend-configure-stamp"


@dataclass(frozen=True)
class Published:
    """Install and publish when the output is as last published from these build folders (the
    record in `record`: nothing rebuilt, inputs and files unchanged). Ninja only."""

    record: str
    text = "skipped when the output is as last published from these build folders: nothing rebuilt, inputs and files unchanged; Ninja only"


Skip = Present | Verified | Configured | Published


@dataclass(frozen=True)
class Step:
    phase: str  # "inputs", "cache", "protobuf", "sdk", "install", "publish", "post"
    title: str
    kind: str  # "action" (done by the runner in Python), "configure", "build", "command"
    argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[tuple[str, str], ...] = ()
    build_dir: str = ""
    action: Action | None = None
    skip_when: Skip | None = None
    reads: tuple[tuple[str, str], ...] = ()  # configure: the CONFIGURE_READS variables, as planning saw them

    def render(self) -> str:
        skip = f"\n    ({self.skip_when.text})" if self.skip_when else ""
        if self.kind == "action":
            assert self.action is not None
            detail = " ".join(f"{k}={shlex.quote(v)}" for k, v in (*self.env, ("action", self.action.value), *self.args))
            return f"[{self.phase}] {self.title}: {detail}{skip}"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        return f"[{self.phase}] {self.title}:\n    {(env + ' ') if env else ''}{shlex.join(self.argv)}{skip}"


def configure_step(phase: str, title: str, argv: tuple[str, ...], env: tuple[tuple[str, str], ...], build_dir: str,
                   reads: tuple[tuple[str, str], ...]) -> Step:
    """A CMake configure, skipped by its folder's stamp (`Configured`)."""
    skip = Configured(build_dir, digest([argv, env]), digest(reads))
    return Step(phase, title, "configure", argv, env, build_dir=build_dir, skip_when=skip, reads=reads)


def action_step(phase: str, title: str, action: Action, skip_when: Skip | None = None, env: tuple[tuple[str, str], ...] = (), **args: object) -> Step:
    return Step(phase, title, "action", env=env, args=tuple((k, str(v)) for k, v in args.items()), action=action, skip_when=skip_when)


def digest(value: object) -> str:
    """The sha256 of `value` as JSON: what stamps and records compare."""
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()
