"""The vocabulary of a plan: what a step is and which actions the runner knows. No I/O.

A step either runs a command (`configure`, `build`, `command`) or one of the runner's own
`Action`s, named by the enum, never by a string. A step the runner may skip says when
(`skip_when`), so a `--dry-run` shows the run's decisions as well as its work.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass


class Action(enum.Enum):
    """Everything the runner does in Python rather than by running a command."""

    FETCH = "fetch"  # a pinned download, verified against its sha256
    UNPACK_PIN = "unpack_pin"  # the pinned protocol files
    UNPACK_SDK = "unpack_sdk"  # an SDK archive, into the cache
    UNPACK_PROTOBUF = "unpack_protobuf"  # a protobuf source, checked against the digest it is named by
    SCCACHE_START = "sccache_start"
    SCCACHE_STATS = "sccache_stats"
    MANIFEST = "manifest"  # build-manifest.json into the staging folder
    PUBLISH = "publish"  # staging replaces the output in one rename
    CLEAR_QUARANTINE = "clear_quarantine"  # macOS: the vendor's FAQ


# Why the runner may skip a step; the plan prints these with the steps they apply to.
SKIP_CONFIGURED = "skipped when the folder's stamp says it was configured with these exact arguments and environment"
SKIP_PUBLISHED = "skipped when the output is as last published from these build folders: nothing rebuilt, inputs and files unchanged; Ninja only"
SKIP_PRESENT = "skipped when its destination exists"


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
    skip_when: str = ""

    def render(self) -> str:
        skip = f"\n    ({self.skip_when})" if self.skip_when else ""
        if self.kind == "action":
            assert self.action is not None
            detail = " ".join(f"{k}={shlex.quote(v)}" for k, v in (*self.env, ("action", self.action.value), *self.args))
            return f"[{self.phase}] {self.title}: {detail}{skip}"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        return f"[{self.phase}] {self.title}:\n    {(env + ' ') if env else ''}{shlex.join(self.argv)}{skip}"


def action_step(phase: str, title: str, action: Action, skip_when: str = "", env: tuple[tuple[str, str], ...] = (), **args: object) -> Step:
    return Step(phase, title, "action", env=env, args=tuple((k, str(v)) for k, v in args.items()), action=action, skip_when=skip_when)
