"""Pinned open inputs: fetched once into the user cache, verified against sha256 on every use."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from . import archives, host
from .errors import DiskError, DownloadError
from .steps import Action, Present, Step, Verified, action_step

T = TypeVar("T")

DEFAULT_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class Pin:
    project: str
    version: str
    filename: str
    sha256: str
    subdir: str
    src_digest: str = ""  # protobuf only: protobuf_src's digest of the C++ sources inside
    protobuf_version: str = ""  # protobuf only: the version of those sources
    layout: str = ""  # protobuf only: "" (src/ alone) or "bundle" (protobuf, abseil-cpp, utf8_range: 22 and later)


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def load_pins(path: Path | None = None) -> dict[str, Pin]:
    """The pins of inputs.json (beside this module) by name: 'futu' and 'moomoo' (protocol files),
    'protobuf-X.Y.Z' for each protobuf source, and 'protobuf' for the default one."""
    data = json.loads((path or Path(__file__).resolve().parent / "inputs.json").read_text(encoding="utf-8"))
    fields = Pin.__dataclass_fields__

    def pin(p: dict[str, str]) -> Pin:
        return Pin(**{k: v for k, v in p.items() if k in fields})

    pins = {brand: pin(p) for brand, p in data["protos"].items()}
    pb = data["protobuf"]
    pins.update({f"protobuf-{version}": pin(p) for version, p in pb["versions"].items()})
    pins["protobuf"] = pins[f"protobuf-{pb['default']}"]
    return pins


def protobuf_versions(pins: dict[str, Pin]) -> list[str]:
    """The protobuf versions with a pinned source, oldest first."""
    found = [name.removeprefix("protobuf-") for name in pins if name.startswith("protobuf-")]
    return sorted(found, key=lambda v: [int(x) for x in v.split(".")])


def cache_root(env: Mapping[str, str]) -> Path:
    """The user cache of downloads, sources and builds, as the environment `env` places it."""
    if env.get("OPEND_BUILD_CACHE"):
        return host.expand(Path(env["OPEND_BUILD_CACHE"]), env).resolve()
    base = env.get("XDG_CACHE_HOME") or (host.home(env) / ".cache")
    return (Path(base) / "opend-build").resolve()


def index_url(env: Mapping[str, str]) -> str:
    return (env.get("OPEND_BUILD_INDEX_URL") or env.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


class Digests:
    """Digests of large files (an SDK archive, the protobuf tarball inside it), remembered in the
    cache by the file's path, size and mtime, so a --dry-run or a no-op run plans without reading
    the archive again. Planning reads the memo and computes what it lacks, writing nothing: what
    it computed is in `new`, and the plan's `remember` step (`steps()`) writes it."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.new: dict[str, object] = {}  # memo file -> value

    def get(self, path: Path, kind: str, compute: Callable[[], T]) -> T:
        """`compute()` over `path`, or what the memo holds for it. The value must survive JSON."""
        st = path.stat()
        key = hashlib.sha256(json.dumps([str(path.absolute()), st.st_size, st.st_mtime_ns, kind]).encode()).hexdigest()[:32]
        memo = str(self.cache / "digests" / f"{key}.json")
        if memo in self.new:
            return self.new[memo]  # type: ignore[return-value]
        try:
            return json.loads(Path(memo).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError):
            pass
        value = compute()
        self.new[memo] = json.loads(json.dumps(value))  # as a later run will read it back
        return value

    def steps(self) -> tuple[Step, ...]:
        if not self.new:
            return ()
        return (action_step("inputs", f"remember {len(self.new)} archive digest(s) in the cache", Action.REMEMBER,
                            entries=json.dumps(self.new, sort_keys=True)),)


def remember(entries: str) -> None:
    """Write the memo files `entries` (JSON: file -> value); a cache that cannot be written only
    costs the time to compute them again."""
    for memo, value in json.loads(entries).items():
        try:
            path = Path(memo)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(value), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fetch_step(name: str, pin: Pin, cache: Path) -> Step:
    """The step that fetches pin `name` into `cache`, verified; it carries the path it writes."""
    dest = download_path(pin, cache)
    return action_step("inputs", f"fetch {pin.filename}", Action.FETCH, Verified(str(dest), pin.sha256), pin=name, dest=dest)


def unpack_pin_step(name: str, pin: Pin, cache: Path, suffix: str = "") -> Step:
    """The step that unpacks pin `name`'s files (ending in `suffix`) from its download in `cache`."""
    dest = extracted_path(pin, cache)
    return action_step("inputs", f"unpack {pin.subdir}/*{suffix}", Action.UNPACK_PIN, Present(str(dest)), pin=name, suffix=suffix,
                       archive=download_path(pin, cache), dest=dest)


def download_path(pin: Pin, cache: Path) -> Path:
    return cache / "downloads" / pin.filename


def extracted_path(pin: Pin, cache: Path) -> Path:
    return cache / "sources" / f"{pin.filename}-{pin.sha256[:16]}"


def _find_file_url(pin: Pin, index: str) -> str:
    """The download address of the pinned file, read from the index's simple page (PEP 503/691)."""
    page = f"{index}/{pin.project}/"
    req = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read().decode("utf-8", "replace")
        ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == pin.filename:
                return urllib.parse.urljoin(page, f["url"])
    else:
        import re

        for href in re.findall(r'href="([^"]+)"', body):
            if PurePosixPath(urllib.parse.urlparse(href).path).name == pin.filename:
                return urllib.parse.urljoin(page, href)
    raise DownloadError(f"{pin.filename} is not listed on {page}", "check OPEND_BUILD_INDEX_URL points at a PyPI mirror")


def fetch(pin: Pin, dest: Path, index: str) -> Path:
    """Download the pinned file from the package index `index` into `dest`, verified (a file
    there, truncated or tampered, is replaced)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    try:
        url = _find_file_url(pin, index)
        with urllib.request.urlopen(url, timeout=120) as resp, open(part, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"cannot download {pin.filename} from {index}: {getattr(exc, 'reason', exc)}",
            "check the network or OPEND_BUILD_INDEX_URL; a build with a filled cache works offline",
        ) from exc
    except OSError as exc:
        part.unlink(missing_ok=True)
        if exc.errno == 28:
            raise DiskError(f"no space left to download {pin.filename} into {dest.parent}", "free disk space and run again") from exc
        raise
    got = sha256_file(part)
    if got != pin.sha256:
        part.unlink()
        raise DownloadError(
            f"{pin.filename} has sha256 {got}, expected {pin.sha256}",
            "the index served a different file; check the mirror, or report it if it is PyPI itself",
        )
    os.replace(part, dest)
    return dest


def unpack_pin(pin: Pin, archive: Path, dest: Path, suffix: str = "", limits: archives.Limits = archives.LIMITS) -> Path:
    """The pin's `subdir` unpacked (files ending in `suffix` only) from `archive` into `dest`."""
    prefix = PurePosixPath(pin.subdir)
    n = len(prefix.parts)

    def select(p: PurePosixPath) -> PurePosixPath | None:
        if p.parts[:n] == prefix.parts and len(p.parts) > n and p.name.endswith(suffix):
            return PurePosixPath(*p.parts[n:])
        return None

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        archives.extract(archive, dest, select, limits)
    except OSError as exc:
        raise DiskError(f"cannot unpack {archive.name} into {dest}: {exc}", "check free space and permissions of the cache") from exc
    return dest
