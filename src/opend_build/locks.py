"""Exclusive locks on build folders and output folders, naming their owner while held."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import LockedError


def _owner() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})


if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


def _read(fd: int) -> str:
    os.lseek(fd, 1, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace")


def _write(fd: int, text: str) -> None:
    # The owner is written after byte 0 on Windows too: msvcrt locks byte 0 and blocks its reads.
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b" " + text.encode())


def _describe(text: str) -> str:
    try:
        o = json.loads(text)
        return f"pid {o['pid']} on {o['host']} since {o['since']}"
    except (ValueError, KeyError, TypeError):
        return "another opend-build run"


@contextlib.contextmanager
def hold(paths: tuple[Path, ...], timeout: float, say: Callable[[str], None]) -> Iterator[None]:
    """Take every lock in order (a fixed order avoids deadlock), waiting up to `timeout` seconds each."""
    held: list[int] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + timeout
            told = False
            while not _try_lock(fd):
                owner = _describe(_read(fd).strip())
                if time.monotonic() >= deadline:
                    os.close(fd)  # not ours: leave its owner's note as it is
                    raise LockedError(f"{path} is held by {owner}", "wait for that run to finish, or raise --lock-timeout") from None
                if not told:
                    say(f"waiting for {owner}, which holds {path}")
                    told = True
                time.sleep(0.5)
            held.append(fd)
            os.ftruncate(fd, 0)
            _write(fd, _owner())
        yield
    finally:
        for fd in reversed(held):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing releases the flock
