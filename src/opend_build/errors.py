"""Every failure the user can cause or fix has its own class and a stable exit code.

The message is one line saying what is wrong; `hint` says what to do. The CLI prints both and a
traceback only with -v. The table in the README is generated from EXIT_CODES' order and must
stay stable: scripts and CI pipelines branch on these numbers.
"""

from __future__ import annotations


class OpenDError(Exception):
    exit_code = 1
    kind = "internal error"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(OpenDError):
    exit_code = 2
    kind = "bad option"


class SdkError(OpenDError):
    exit_code = 3
    kind = "SDK not usable"


class ProtobufSourceError(OpenDError):
    exit_code = 4
    kind = "protobuf source not usable"


class ProtoError(OpenDError):
    exit_code = 5
    kind = "protocol file error"


class ToolchainError(OpenDError):
    exit_code = 6
    kind = "toolchain missing"


class DownloadError(OpenDError):
    exit_code = 7
    kind = "download failed"


class BuildError(OpenDError):
    exit_code = 8
    kind = "build failed"


class UnsafeArchiveError(OpenDError):
    exit_code = 9
    kind = "unsafe archive"


class LockedError(OpenDError):
    exit_code = 10
    kind = "in use"


class DiskError(OpenDError):
    exit_code = 11
    kind = "disk error"


class HostMismatchError(OpenDError):
    exit_code = 12
    kind = "wrong host"


class VerifyError(OpenDError):
    exit_code = 13
    kind = "verification failed"


class Interrupted(OpenDError):
    exit_code = 130
    kind = "interrupted"


EXIT_CODES: list[type[OpenDError]] = [
    OpenDError,
    UsageError,
    SdkError,
    ProtobufSourceError,
    ProtoError,
    ToolchainError,
    DownloadError,
    BuildError,
    UnsafeArchiveError,
    LockedError,
    DiskError,
    HostMismatchError,
    VerifyError,
    Interrupted,
]
