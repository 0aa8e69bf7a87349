"""The open channel library (channel/): its unit program, known answers from the official Python
client's own functions, and scenarios against the stand-in OpenD (src/opend_build/standin.py).

channel/ is built twice per session, once plainly (warnings as errors) and once with
ASan+UBSan; every scenario runs against both builds except the two long timer scenarios, which
run once. A third build by MinGW-w64 (the Windows backends: Winsock 2 and CNG) runs under Wine:
the unit program, every known-answer test (CNG's crypto equals OpenSSL's and the official
client's) and the plain and encrypted sessions. Everything stays on loopback. channel_feed runs the receive path without a socket:
hand-made streams on both builds, and hypothesis-mutated frames on the sanitized build.

The safety part (issue #28): a fourth build under ThreadSanitizer runs channel_race's lifetime
cases (so does the ASan build); encryption without a usable key is checked on the stand-in's
record (no connection at all); a server that stops reading and answering is dropped with the
queue bounded; channel_oom fails each allocation in turn; channel_pem_fuzz mutates DER keys
through the PEM/DER reader the Windows backend uses.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = ROOT / "channel"
STANDIN = ROOT / "src" / "opend_build" / "standin.py"

pytestmark = pytest.mark.build

EXPORTS = {
    "FTAPIChannel_Init", "FTAPIChannel_UnInit", "CreateFTAPIChannel", "ReleaseFTAPIChannel",
    "FTAPIChannel_SetClientInfo", "FTAPIChannel_SetProgrammingLanguage", "FTAPIChannel_SetRSAPrivateKey",
    "FTAPIChannel_InitConnect", "FTAPIChannel_GetConnectID", "FTAPIChannel_SendProto", "FTAPIChannel_Close",
    "FTAPIChannel_SetOnDisconnectCallback", "FTAPIChannel_SetOnInitConnectCallback",
    "FTAPIChannel_SetOnReplyCallback", "FTAPIChannel_SetOnPushCallback",
}
SAN_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=97",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=98",
    "TSAN_OPTIONS": "halt_on_error=1:exitcode=66:second_deadlock_stack=1",
}


# --- builds ----------------------------------------------------------------------------------------

class Build:
    def __init__(self, folder: Path, sanitize: bool) -> None:
        self.folder = folder
        self.sanitize = sanitize

    def exe(self, name: str) -> Path:
        return self.folder / name

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.sanitize:
            env.update(SAN_ENV)
        return env

    def run(self, name: str, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.exe(name)), *args], capture_output=True, text=True, timeout=timeout, env=self.env(), **kw)


class WineBuild(Build):
    """The channel built by MinGW-w64 for Windows x64; its programs run under Wine."""

    def __init__(self, folder: Path, wine: Any) -> None:
        super().__init__(folder, sanitize=False)
        self.wine = wine

    def exe(self, name: str) -> Path:
        return self.folder / (name if name.endswith(".dll") else f"{name}.exe")

    def env(self) -> dict[str, str]:
        return dict(self.wine.env)

    def run(self, name: str, *args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
        from test_mingw import WINE

        assert WINE is not None
        return subprocess.run([WINE, str(self.exe(name)), *args], capture_output=True, text=True, timeout=timeout, env=self.env(), **kw)


def _build(folder: Path, sanitize: bool, *extra: str) -> Build:
    from opend_build import tools  # PyPI's cmake and ninja, which the project depends on

    cmake = tools.cmake(os.environ)
    gen = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja(os.environ)}"]
    cfg = [cmake, "-S", str(CHANNEL), "-B", str(folder), *gen, "-DOPEND_CHANNEL_TESTS=ON",
           "-DCMAKE_BUILD_TYPE=" + ("Debug" if sanitize else "RelWithDebInfo"), "-DCMAKE_CXX_FLAGS=-Werror",
           "-DOPEND_CHANNEL_SANITIZE=" + ("ON" if sanitize else "OFF"), *extra]
    for cmd in (cfg, [cmake, "--build", str(folder), "--parallel", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return Build(folder, sanitize)


@pytest.fixture(scope="session")
def plain_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build(tmp_path_factory.mktemp("channel-build"), sanitize=False)


@pytest.fixture(scope="session")
def san_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build(tmp_path_factory.mktemp("channel-asan"), sanitize=True)


@pytest.fixture(scope="session")
def tsan_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """channel/ under ThreadSanitizer, for the race cases."""
    return Build(_build(tmp_path_factory.mktemp("channel-tsan"), False, "-DOPEND_CHANNEL_TSAN=ON").folder, sanitize=True)


@pytest.fixture(scope="session")
def mingw_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """channel/ by MinGW-w64 (CNG and Winsock 2), with a Wine prefix of its own, stopped at the end."""
    from test_mingw import MINGW, WINE, Wine

    from opend_build.platforms import windows

    if MINGW is None or WINE is None:
        pytest.skip(f"needs {windows.MINGW_PACKAGE} and {windows.WINE_PACKAGE} (tests/run.py installs them)")
    wine = Wine(tmp_path_factory.mktemp("wine-channel"))
    try:
        yield WineBuild(_build(tmp_path_factory.mktemp("channel-mingw"), False, "-DCMAKE_SYSTEM_NAME=Windows", "-DCMAKE_SYSTEM_PROCESSOR=x86_64",
                               f"-DCMAKE_CXX_COMPILER={MINGW}").folder, wine)
    finally:
        wine.stop()


@pytest.fixture(params=["plain", "asan"])
def build(request: pytest.FixtureRequest) -> Build:
    return request.getfixturevalue("plain_build" if request.param == "plain" else "san_build")


@pytest.fixture(params=["plain", "mingw"])
def kat_build(request: pytest.FixtureRequest) -> Build:
    """The known answers hold for both crypto backends: OpenSSL's (Linux) and CNG (Windows, under Wine)."""
    return request.getfixturevalue(f"{request.param}_build")


@pytest.fixture(params=["plain", "asan", "mingw"])
def session_build(request: pytest.FixtureRequest) -> Build:
    return request.getfixturevalue({"plain": "plain_build", "asan": "san_build", "mingw": "mingw_build"}[request.param])


# --- the pure parts ---------------------------------------------------------------------------------

def test_unit_program(build: Build) -> None:
    r = build.run("channel_unit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "channel_unit: all" in r.stdout and "checks passed" in r.stdout


def test_unit_program_on_windows(mingw_build: Build, rsa_keys: dict[str, Path]) -> None:
    """Under Wine, with the RSA keys given (the Windows program has no OpenSSL to make them)."""
    r = mingw_build.run("channel_unit", str(rsa_keys["pkcs1"]), str(rsa_keys["pkcs8"]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "channel_unit: all" in r.stdout and "not tested" not in r.stdout


def test_exports_only_the_c_api(plain_build: Build) -> None:
    nm = shutil.which("nm")
    assert nm, "nm (binutils, which tests/run.py installs) is needed to read the exports"
    r = subprocess.run([nm, "-D", "--defined-only", str(plain_build.exe("libFTAPIChannel.so"))], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}
    assert names == EXPORTS


# --- known answers from the official client ----------------------------------------------------------

# Runs inside a subprocess with HOME in a temporary folder: importing futu starts its logger.
OFFICIAL = r"""
import json, sys
from futu.common.utils import _joint_head
from futu.common.conn_mng import FutuConnMng
from futu.common.sys_config import SysConfig, RsaCrypt
from futu.common.constant import ProtoFMT
from futu.common.pb import InitConnect_pb2, KeepAlive_pb2

def conn(key, iv):
    FutuConnMng.remove_conn(1)
    FutuConnMng.add_conn({"conn_id": 1, "conn_key": key, "conn_iv": iv, "is_encrypt": True})

def run(op, *a):
    if op == "header":
        proto, serial, body = a
        ret, msg, data = _joint_head(proto, ProtoFMT.Json, len(bytes.fromhex(body)), bytes.fromhex(body), 0, serial, False)
        assert ret == 0, msg
        return data.hex()
    if op in ("ecb-enc", "ecb-dec", "cbc-enc", "cbc-dec"):
        key, iv, data = a
        conn(key, iv)
        f = FutuConnMng.encrypt_conn_data if op.endswith("enc") else FutuConnMng.decrypt_conn_data
        ret, msg, out = f(1, bytes.fromhex(data))
        assert ret == 0, msg
        return out.hex()
    if op in ("rsa-enc", "rsa-dec"):
        path, data = a
        SysConfig.set_init_rsa_file(path)
        f = RsaCrypt.encrypt if op == "rsa-enc" else RsaCrypt.decrypt
        return f(bytes.fromhex(data)).hex()
    if op == "init-req":
        ver, cid, enc, lang = a
        req = InitConnect_pb2.Request()
        req.c2s.clientVer = ver
        req.c2s.clientID = cid
        req.c2s.recvNotify = True
        req.c2s.packetEncAlgo = 2 if enc else -1
        req.c2s.pushProtoFmt = 0
        if lang:  # the channel leaves an empty programmingLanguage out
            req.c2s.programmingLanguage = lang
        return req.SerializeToString().hex()
    if op == "init-rsp":
        ret, msg, conn_id, key, ka, iv = a
        rsp = InitConnect_pb2.Response()
        rsp.retType = ret
        if msg:
            rsp.retMsg = msg
        if key:
            s = rsp.s2c
            s.serverVer, s.loginUserID, s.connID, s.connAESKey, s.keepAliveInterval = 1001, 20261201, conn_id, key, ka
            if iv:
                s.aesCBCiv = iv
        return rsp.SerializeToString().hex()
    if op == "keepalive":
        req = KeepAlive_pb2.Request()
        req.c2s.time = a[0]
        return req.SerializeToString().hex()
    raise ValueError(op)

print(json.dumps([run(*job) for job in json.load(sys.stdin)]))
"""


@pytest.fixture(scope="session")
def official(tmp_path_factory: pytest.TempPathFactory) -> Any:
    assert importlib.util.find_spec("futu") is not None, "the official client is a test extra: pip install -e '.[test]'"
    home = tmp_path_factory.mktemp("futu-home")

    def call(jobs: list[list[Any]]) -> list[str]:
        env = dict(os.environ, HOME=str(home), USERPROFILE=str(home))
        r = subprocess.run([sys.executable, "-c", OFFICIAL], input=json.dumps(jobs), capture_output=True, text=True,
                           timeout=120, env=env, cwd=str(home))
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    return call


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from Crypto.PublicKey import RSA

    folder = tmp_path_factory.mktemp("rsa")
    key = RSA.generate(1024)
    out = {"pkcs1": folder / "key-pkcs1.pem", "pkcs8": folder / "key-pkcs8.pem"}
    out["pkcs1"].write_bytes(key.export_key(pkcs=1))
    out["pkcs8"].write_bytes(key.export_key(pkcs=8))
    return out


LENGTHS = (0, 1, 15, 16, 17, 100)
KEY = "0123456789abcdeF"
IV = "Fedcba9876543210"


def data(n: int, seed: int = 0) -> str:
    return bytes((i * 37 + seed * 11 + 5) & 0xFF for i in range(n)).hex()


def kat(b: Build, *args: str) -> str:
    r = b.run("channel_kat", *args)
    assert r.returncode == 0, f"channel_kat {' '.join(args)}: {r.stderr}"
    return r.stdout.strip()


def kats(b: Build, *jobs: list[str]) -> list[str]:
    """Many known-answer jobs in one run of channel_kat (`batch`: one tab-separated job a line),
    their outputs in order; every job must succeed."""
    r = b.run("channel_kat", "batch", input="".join("\t".join(job) + "\n" for job in jobs))
    out = [line.strip() for line in r.stdout.splitlines()]
    assert r.returncode == 0 and len(out) == len(jobs) and "error" not in out, f"channel_kat batch: {r.stderr[-3000:]}\n{out}"
    return out


def test_header_and_sha1_match_official(kat_build: Build, official: Any) -> None:
    cases = [(1001, 1, data(n, 1)) for n in LENGTHS] + [(0xFFFFFFFF, 0xFFFFFFFE, data(3)), (3005, 77, "")]
    theirs = official([["header", p, s, body] for p, s, body in cases])
    # the official client builds a format-1 (JSON) header for bytes; same layout
    ours = kats(kat_build, *(job for (proto, serial, body), want in zip(cases, theirs)
                             for job in (["header", str(proto), "1", "0", str(serial), body], ["parse", want[:88]], ["sha1", body])))
    for i, ((proto, serial, body), want) in enumerate(zip(cases, theirs)):
        header, parsed, sha = ours[3 * i:3 * i + 3]
        assert header == want
        fields = parsed.split()
        assert fields[:5] == [str(proto), "1", "0", str(serial), str(len(body) // 2)]
        assert fields[5] == sha == bytes.fromhex(want)[16:36].hex()


def test_parse_rejects_bad_magic_and_oversized(plain_build: Build) -> None:
    good = kat(plain_build, "header", "1", "0", "0", "1", "")
    assert plain_build.run("channel_kat", "parse", "4754" + good[4:]).returncode == 1
    oversized = bytes.fromhex(good)
    oversized = oversized[:12] + (64 * 1024 * 1024 + 1).to_bytes(4, "little") + oversized[16:]
    r = plain_build.run("channel_kat", "parse", oversized.hex())
    assert r.returncode == 1 and "too long" in r.stderr


@pytest.mark.parametrize("mode", ["ecb", "cbc"])
def test_aes_matches_official(kat_build: Build, official: Any, mode: str) -> None:
    iv = IV if mode == "cbc" else None
    plains = [data(n, n) for n in LENGTHS]
    theirs = official([[f"{mode}-enc", KEY, iv, p] for p in plains])
    keys = [KEY.encode().hex()] + ([IV.encode().hex()] if mode == "cbc" else [])
    ours = kats(kat_build, *([f"{mode}-enc", *keys, p] for p in plains))
    for p, enc, want in zip(plains, ours, theirs):
        assert enc == want, f"{mode} encrypt of {len(p) // 2} bytes"
    assert kats(kat_build, *([f"{mode}-dec", *keys, want] for want in theirs)) == plains
    assert official([[f"{mode}-dec", KEY, iv, c] for c in ours]) == plains


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_rsa_round_trips_with_official(kat_build: Build, official: Any, rsa_keys: dict[str, Path], form: str) -> None:
    lengths = (*LENGTHS, 101, 250)
    plains = [data(n, 3) for n in lengths]
    key = str(rsa_keys[form])
    # ours -> theirs
    ours = kats(kat_build, *(["rsa-enc", key, p] for p in plains))
    for n, c in zip(lengths, ours):
        assert len(c) // 2 == -(-n // 100) * 128
    assert official([["rsa-dec", key, c] for c in ours]) == plains
    # theirs -> ours (the official client reads the PKCS#1 form)
    theirs = official([["rsa-enc", str(rsa_keys["pkcs1"]), p] for p in plains])
    assert kats(kat_build, *(["rsa-dec", key, c] for c in theirs)) == plains


def test_protobuf_messages_match_official(kat_build: Build, official: Any) -> None:
    reqs = [[300, "PyNormal", False, "Python"], [100, "channel \u4e2d", True, "C++"], [-5, "", True, ""]]
    rsps = [[0, "", 7000000000000000001, "0123456789ABCDEF", 10, "iviviviviviviviv"],
            [0, "ok", 1, "0123456789ABCDEF", 30, ""], [-1, "rejected", 0, "", 0, ""]]
    theirs = official([["init-req", *r] for r in reqs] + [["init-rsp", *r] for r in rsps] + [["keepalive", 1764633600]])
    ours = kats(kat_build, *(["init-req", str(ver), cid.encode().hex(), "1" if enc else "0", lang.encode().hex()] for ver, cid, enc, lang in reqs),
                *(["init-rsp", body] for body in theirs[len(reqs):-1]), ["keepalive", "1764633600"])
    for req, mine, want in zip(reqs, ours, theirs):
        assert mine == want, req
    for (ret, msg, conn_id, key, ka, iv), parsed in zip(rsps, ours[len(reqs):]):
        assert parsed.split() == [str(ret), str(conn_id), str(ka), key.encode().hex() if key else "-",
                                  iv.encode().hex() if iv else "-", msg.encode().hex() if msg else "-"]
    assert ours[-1] == theirs[-1]


# --- scenarios against the stand-in OpenD ------------------------------------------------------------

@pytest.fixture(scope="session")
def standin_mod() -> Any:
    assert STANDIN.exists(), f"{STANDIN} is missing"
    spec = importlib.util.spec_from_file_location("opend_standin_for_channel", STANDIN)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def scenario(b: Build, port: int, *args: str, host: str = "127.0.0.1", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = b.run("channel_scenario", host, str(port), *args, timeout=timeout)
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr[-4000:]
    return r


def run_against(standin_mod: Any, b: Build, *args: str, host: str = "127.0.0.1", **standin: Any) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    standin.setdefault("lifetime", 60)
    with standin_mod.StandIn(host=host, **standin) as s:
        r = scenario(b, s.port, *args, host=host)
        s.wait(lambda srv: all(c["ended"] for c in srv.connections), timeout=5)
        conns = [dict(c) for c in s.connections]
    return r, conns


def assert_ok(r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"


def test_plain_session(standin_mod: Any, session_build: Build) -> None:
    r, conns = run_against(standin_mod, session_build)
    assert_ok(r)
    assert len(conns) == 1
    c = conns[0]
    assert c["init"] == {"clientVer": 100, "clientID": "channel_scenario", "recvNotify": True, "packetEncAlgo": -1,
                         "pushProtoFmt": 0, "programmingLanguage": "C++", "aiType": None}
    assert not c["rsa"] and not c["encrypted"]
    assert f"connid={c['conn_id']} " in r.stdout
    packets = c["packets"]
    assert [p["proto_id"] for p in packets][:3] == [1001, 1002, 3001]
    assert all(p["reserved_zero"] and p["proto_fmt"] == 0 for p in packets)
    assert all(p.get("sha1_ok") for p in packets)
    serials = [p["serial"] for p in packets]
    assert serials == sorted(serials) and len(set(serials)) == len(serials) and serials[0] >= 1
    sub = packets[2]["qot_sub"]
    assert sub == {"securities": [[1, "00700"]], "subTypes": [1], "isSubOrUnSub": True}
    assert c["ended"] == "client-closed"


@pytest.mark.parametrize("aes", ["cbc", "ecb"])
def test_rsa_and_aes_session(standin_mod: Any, session_build: Build, rsa_keys: dict[str, Path], aes: str) -> None:
    # the stand-in reads the PKCS#1 form, the channel the PKCS#8 form of the same key
    r, conns = run_against(standin_mod, session_build, "--encrypt", "--rsa-key", str(rsa_keys["pkcs8"]),
                           rsa_key_pem=rsa_keys["pkcs1"].read_bytes(), aes=aes, push_notify=True)
    assert_ok(r)
    assert "push proto=1003" in r.stdout
    c = conns[0]
    assert c["rsa"] and c["encrypted"] and c["aes"] == aes
    assert c["init"]["packetEncAlgo"] == 2
    assert all(p.get("sha1_ok") for p in c["packets"]), c["errors"]


def test_rsa_key_without_encryption(standin_mod: Any, build: Build, rsa_keys: dict[str, Path]) -> None:
    # a key set: InitConnect goes out RSA-encrypted, its reply comes back plain, nothing else is encrypted
    r, conns = run_against(standin_mod, build, "--rsa-key", str(rsa_keys["pkcs1"]), rsa_key_pem=rsa_keys["pkcs1"].read_bytes())
    assert_ok(r)
    assert conns[0]["rsa"] and not conns[0]["encrypted"]


@pytest.mark.parametrize("fault", ["split", "coalesce"])
def test_stream_shapes(standin_mod: Any, build: Build, rsa_keys: dict[str, Path], fault: str) -> None:
    r, conns = run_against(standin_mod, build, "--encrypt", "--rsa-key", str(rsa_keys["pkcs1"]),
                           rsa_key_pem=rsa_keys["pkcs1"].read_bytes(), faults=[fault], push_notify=True)
    assert_ok(r)
    assert "push proto=1003" in r.stdout


FAULT_EXPECT = {
    # fault: (expected lines in order, forbidden texts)
    "reject-init": (["init err=429496729605 high=100 low=5 connid=0 desc=stand-in: InitConnect rejected"], ["reply proto=", "disconnect"]),
    "bad-sha1-init": (["init err=429496729600 high=100 low=0 connid=0"], ["reply proto=", "disconnect"]),
    "oversized": (["init err=429496729603 high=100 low=3 connid=0"], ["reply proto=", "disconnect"]),
    "garbage": (["init err=429496729603 high=100 low=3 connid=0"], ["reply proto=", "disconnect"]),
    "close-mid-request": (["init err=0 ", "reply proto=1002 type=-200 len=0", "disconnect err=47244640256 high=11 low=0"], ["type=0"]),
    "bad-sha1": (["init err=0 ", "reply proto=1002 type=-200 len=0", "disconnect err=47244640327 high=11 low=71"], ["type=0"]),
}


@pytest.mark.parametrize("fault", sorted(FAULT_EXPECT))
def test_faults(standin_mod: Any, build: Build, fault: str) -> None:
    expect, forbid = FAULT_EXPECT[fault]
    args = [a for e in expect for a in ("--expect", e)] + [a for f in forbid for a in ("--forbid", f)]
    r, conns = run_against(standin_mod, build, "--total-wait", "8000", *args, faults=[fault])
    assert_ok(r)
    assert len(conns) == 1


def test_close_while_initconnect_unanswered(standin_mod: Any, build: Build) -> None:
    # "silent": the reply never comes; Close before the 12 s timeout fires no callback
    r, conns = run_against(standin_mod, build, "--total-wait", "1000", "--expect", "initconnect rc=0",
                           "--forbid", "init err", "--forbid", "disconnect", faults=["silent"])
    assert_ok(r)
    assert [p["proto_id"] for p in conns[0]["packets"]] == [1001]


@pytest.mark.parametrize("how", ["close", "release"])
def test_close_and_release_from_a_callback(standin_mod: Any, build: Build, how: str) -> None:
    expect = "closed in callback rc=0" if how == "close" else "released in callback"
    r, _ = run_against(standin_mod, build, f"--{how}-in-callback", "--expect", "push proto=3005", "--expect", expect,
                       "--forbid", "disconnect")
    assert_ok(r)


def test_host_names_and_ipv6(standin_mod: Any, plain_build: Build) -> None:
    # "localhost" may resolve to ::1 first: the channel tries every address getaddrinfo gives
    with standin_mod.StandIn(host="127.0.0.1", lifetime=30) as s:
        assert_ok(scenario(plain_build, s.port, host="localhost"))
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    r, _ = run_against(standin_mod, plain_build, host="::1")
    assert_ok(r)


def test_connect_refused(plain_build: Build) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    r = scenario(plain_build, port, "--expect", f"high=6 low={errno.ECONNREFUSED} connid=0", "--forbid", "disconnect")
    assert_ok(r)


def test_reply_timeout_and_keepalive(standin_mod: Any, plain_build: Build) -> None:
    """The two long scenarios, side by side: a reply the stand-in holds 13 s times out at 12 s;
    a connection held 9 s sends a KeepAlive (interval 10 s -> every 8 s) whose reply is not a push."""
    results: dict[str, Any] = {}

    def timeout_case() -> None:
        results["timeout"] = run_against(standin_mod, plain_build, "--expect", "init err=0 ", "--expect",
                                         "timeout proto=1002 type=-100", "--forbid", "type=0", "--forbid", "disconnect",
                                         faults=["delay-reply"])

    t = threading.Thread(target=timeout_case)
    t.start()
    try:
        keep = run_against(standin_mod, plain_build, "--no-sub", "--hold", "9000", "--expect", "reply proto=1002 type=0",
                           "--forbid", "push proto=1004", "--forbid", "disconnect")
    finally:
        t.join(timeout=60)
    assert "timeout" in results
    r, _ = results["timeout"]
    assert_ok(r)
    r, conns = keep
    assert_ok(r)
    kas = [p for p in conns[0]["packets"] if p["proto_id"] == 1004]
    assert kas and all(p["sha1_ok"] for p in kas)


def test_initconnect_again_after_close(standin_mod: Any, build: Build) -> None:
    # no reconnect of its own: the application closes and calls InitConnect again on the same channel
    r, conns = run_against(standin_mod, build, "--reconnect", "--expect", "init err=0 ", "--expect", "push proto=3005",
                           "--expect", "close rc=0", "--expect", "initconnect rc=0", "--expect", "init err=0 ",
                           "--expect", "push proto=3005", "--forbid", "disconnect")
    assert_ok(r)
    assert len(conns) == 2 and conns[0]["conn_id"] != conns[1]["conn_id"]
    assert conns[0]["packets"][-1]["serial"] < conns[1]["packets"][0]["serial"]  # serials keep increasing


def test_burst_from_another_thread(standin_mod: Any, build: Build, rsa_keys: dict[str, Path]) -> None:
    # 300 requests from the main thread while the I/O thread runs callbacks: all answered, serials increasing
    r, conns = run_against(standin_mod, build, "--encrypt", "--rsa-key", str(rsa_keys["pkcs1"]), "--burst", "300",
                           "--expect", "push proto=3005", "--expect", "burst sent=300 replies=300 increasing=1",
                           "--forbid", "disconnect", "--forbid", "timeout", rsa_key_pem=rsa_keys["pkcs1"].read_bytes())
    assert_ok(r)
    assert sum(p["proto_id"] == 1002 for p in conns[0]["packets"]) == 301
    assert all(p.get("sha1_ok") for p in conns[0]["packets"])


# --- the receive path under mutated frames (channel_feed, no socket) -----------------------------------
#
# channel_feed runs bytes through Channel::receive(), the code the I/O thread runs on every recv,
# and checks every callback (length = the real decrypted length, under the cap, SHA-1 over exactly
# those bytes, reply only to an outstanding request, nothing after the end); exit 1 on a violation,
# 97/98 on an ASan/LSan/UBSan report. Streams are valid packets (InitConnect reply, then replies and
# pushes, plain, AES-CBC or FTAES-ECB, InitConnect optionally RSA), then mutated. A model of the
# receive path below predicts every callback as long as the InitConnect reply arrives intact.

FEED_MAX_BODY = 64 * 1024 * 1024
FEED_KEY = b"K" * 8 + bytes(range(8))
FEED_IV = bytes(range(16, 32))
FEED_INIT_OK = 0
FEED_INIT_REJECT = (100 << 32) | 5
FEED_INIT_CLOSED = (100 << 32) | 3
FEED_INIT_NO_KEY = (100 << 32) | 4  # encryption without a usable RSA key: fails before anything is sent
FEED_DISC_EPROTO = (11 << 32) | 71
FEED_DISC_PEER = 11 << 32


def _pb_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _pb_int(field: int, v: int) -> bytes:
    return _pb_varint(field << 3) + _pb_varint(v)


def _pb_bytes(field: int, v: bytes) -> bytes:
    return _pb_varint(field << 3 | 2) + _pb_varint(len(v)) + v


def feed_header(proto: int, serial: int, body_len: int, sha1: bytes) -> bytes:
    return struct.pack("<2sIBBII20s8s", b"FT", proto, 0, 0, serial, body_len, sha1, b"\0" * 8)


def feed_frame(proto: int, serial: int, plain: bytes, wire: bytes | None = None) -> bytes:
    body = plain if wire is None else wire
    return feed_header(proto, serial, len(body), hashlib.sha1(plain).digest()) + body


def _aes(mode: str) -> Any:
    from Crypto.Cipher import AES

    return AES.new(FEED_KEY, AES.MODE_CBC, iv=FEED_IV) if mode == "cbc" else AES.new(FEED_KEY, AES.MODE_ECB)


def feed_encrypt(mode: str, plain: bytes) -> bytes:
    if mode == "plain":
        return plain
    if mode == "cbc":
        pad = 16 - len(plain) % 16
        return _aes(mode).encrypt(plain + bytes([pad]) * pad)
    tail = len(plain) % 16
    return _aes(mode).encrypt(plain + b"\0" * ((16 - tail) % 16)) + b"\0" * 15 + bytes([tail])


def feed_decrypt(mode: str, wire: bytes) -> bytes | None:
    """What the channel's decrypt_body() gives, None when it fails."""
    if mode == "plain":
        return wire
    if not wire or len(wire) % 16:
        return None
    if mode == "cbc":
        plain = _aes(mode).decrypt(wire)
        pad = plain[-1]
        if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
            return None
        return plain[:-pad]
    tail = wire[-1]
    if tail > 15 or (len(wire) == 16 and tail):
        return None
    plain = _aes(mode).decrypt(wire[:-16]) if len(wire) > 16 else b""
    return plain[: len(plain) - (16 - tail)] if tail else plain


def feed_init_reply(mode: str, rsa_key: Any, reject: bool) -> bytes:
    if reject:
        body = _pb_int(1, (-1) & 0xFFFFFFFFFFFFFFFF) + _pb_bytes(2, b"fuzz says no")
    else:
        s2c = _pb_int(1, 1001) + _pb_int(2, 20261201) + _pb_int(3, 77) + _pb_bytes(4, FEED_KEY) + _pb_int(5, 10)
        if mode == "cbc":
            s2c += _pb_bytes(6, FEED_IV)
        body = _pb_int(1, 0) + _pb_bytes(4, s2c)
    wire = None
    if rsa_key is not None and mode != "plain":  # the reply is RSA-encrypted only with encryption on
        from Crypto.Cipher import PKCS1_v1_5

        cipher = PKCS1_v1_5.new(rsa_key.publickey())
        wire = b"".join(cipher.encrypt(body[i:i + 100]) for i in range(0, len(body), 100))
    return feed_frame(1001, 1, body, wire)


def feed_record(flags: int, requests: list[int], splits: list[int], stream: bytes) -> bytes:
    rec = struct.pack("<BH", flags, len(requests)) + b"".join(struct.pack("<I", r) for r in requests)
    rec += struct.pack("<H", len(splits)) + b"".join(struct.pack("<I", s) for s in splits) + stream
    return struct.pack("<I", len(rec)) + rec


def feed_model(case: dict[str, Any]) -> list[str] | None:
    """The callbacks channel_feed should print for a case, None when the InitConnect reply was
    mutated (then only the harness's own checks apply)."""
    stream, mode, close = case["stream"], case["mode"], case["close"]
    if mode != "plain" and not case["rsa"]:
        return [f"init {FEED_INIT_NO_KEY}", "end start-failed"]
    lines: list[str] = []
    pending: dict[tuple[int, int], None] = {}
    state = "initing"

    def fail(err: int) -> None:
        if state == "initing":
            lines.append(f"init {FEED_INIT_CLOSED}")
            return
        for proto, serial in sorted(pending):
            lines.append(f"reply -200 {proto} {serial} 0")
        lines.append(f"disconnect {err}")

    pos = 0
    while True:
        if len(stream) - pos < 44:
            fail(FEED_DISC_PEER)
            return lines + ["end eof"]
        _, proto, _, _, serial, blen, sha = struct.unpack("<2sIBBII20s8s", stream[pos:pos + 44])[:7]
        if stream[pos:pos + 2] != b"FT" or blen > FEED_MAX_BODY:
            fail(FEED_DISC_EPROTO)
            return lines + ["end stream"]
        if len(stream) - pos - 44 < blen:
            fail(FEED_DISC_PEER)
            return lines + ["end eof"]
        raw = stream[pos:pos + 44 + blen]
        body = raw[44:]
        pos += 44 + blen
        if state == "initing":
            if (proto, serial) != (1001, 1):
                continue
            if raw != case["init_frame"]:
                return None
            if case["reject"]:
                return lines + [f"init {FEED_INIT_REJECT}", "end stream"]
            lines.append(f"init {FEED_INIT_OK}")
            state = "ready"
            for i, p in enumerate(case["requests"]):
                pending[(p, 2 + i)] = None
            continue
        plain = feed_decrypt(mode, body)
        if plain is None or hashlib.sha1(plain).digest() != sha:
            fail(FEED_DISC_EPROTO)
            return lines + ["end stream"]
        if (proto, serial) in pending:
            del pending[(proto, serial)]
            lines.append(f"reply 0 {proto} {serial} {len(plain)}")
        else:
            lines.append(f"push {proto} {serial} {len(plain)}")
        if close:
            return lines + ["end closed"]


def _feed_body(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


BODY_LEN = st.one_of(st.integers(0, 48), st.sampled_from([15, 16, 17, 31, 32, 33, 100, 65535, 65536, 70000]))
HUGE_LENS = [0, 1, 15, 16, 17, 0x7FFFFFFF, 0xFFFFFFFF, FEED_MAX_BODY, FEED_MAX_BODY + 1, 0x10000]


@st.composite
def feed_cases(draw: Any, rsa_key: Any) -> dict[str, Any]:
    mode = draw(st.sampled_from(["plain", "cbc", "ecb"]))
    # encryption needs the key (without one it fails before a byte is read: test_feed_known_streams)
    use_rsa = rsa_key is not None and (mode != "plain" or draw(st.booleans()))
    reject = draw(st.integers(0, 15)) == 0
    close = draw(st.integers(0, 7)) == 0
    requests = draw(st.lists(st.sampled_from([3001, 3004, 1002, 2001, 1004, 1001]), max_size=4))
    init = feed_init_reply(mode, rsa_key if use_rsa else None, reject)
    frames: list[bytes] = []
    for _ in range(draw(st.integers(0, 2))):  # before the InitConnect reply: ignored
        frames.append(feed_frame(draw(st.sampled_from([1001, 3005, 1004])), draw(st.integers(0, 3)), b"early"))
    frames.append(init)
    served = 0
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["reply", "reply", "push", "dup"]))
        if kind == "push" or not requests:
            proto, serial = draw(st.sampled_from([3005, 1003, 1004, 2208, 3001])), draw(st.integers(0, 2**32 - 1))
        else:
            i = served if kind == "reply" else draw(st.integers(0, len(requests) - 1))
            i = min(i, len(requests) - 1)
            served += kind == "reply"
            proto, serial = requests[i], 2 + i
        plain = _feed_body(draw(st.integers(0, 2**16)), draw(BODY_LEN))
        frames.append(feed_frame(proto, serial, plain, feed_encrypt(mode, plain)))
    starts = []
    stream = b""
    for f in frames:
        starts.append(len(stream))
        stream += f
    init_at = starts[frames.index(init)]
    head, tail = stream[:init_at + len(init)], bytearray(stream[init_at + len(init):])
    # mutations: mostly after the InitConnect reply (the model still predicts every callback),
    # sometimes over the whole stream (only the harness's checks then)
    whole = draw(st.integers(0, 3)) == 0
    buf = bytearray(stream) if whole else tail
    base = 0 if whole else init_at + len(init)
    offsets = [s - base for s in starts if s >= base] or [0]
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "bodylen", "magic", "sha1", "lastbyte",
                                   "garbage", "duplicate", "append-frame"]))
        at = draw(st.integers(0, 2**20))
        frame_at = offsets[at % len(offsets)]
        if op == "flip" and buf:
            buf[at % len(buf)] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del buf[at % (len(buf) + 1):]
        elif op == "insert":
            buf[at % (len(buf) + 1):at % (len(buf) + 1)] = draw(st.binary(max_size=60))
        elif op == "delete" and buf:
            del buf[at % len(buf):at % len(buf) + draw(st.integers(1, 50))]
        elif op == "bodylen" and frame_at + 16 <= len(buf):
            old = int.from_bytes(buf[frame_at + 12:frame_at + 16], "little")
            new = draw(st.sampled_from([*HUGE_LENS, old - 1, old + 1, old + 16, old - 16, old * 2]))
            buf[frame_at + 12:frame_at + 16] = (new & 0xFFFFFFFF).to_bytes(4, "little")
        elif op == "magic" and frame_at + 2 <= len(buf):
            buf[frame_at + draw(st.integers(0, 1))] = draw(st.integers(0, 255))
        elif op == "sha1" and frame_at + 36 <= len(buf):
            buf[frame_at + 16 + draw(st.integers(0, 19))] ^= 0xFF
        elif op == "lastbyte" and buf:
            buf[-1] = draw(st.sampled_from([0, 1, 15, 16, 17, 255]))
        elif op == "garbage":
            buf[:] = draw(st.binary(max_size=300))
        elif op == "duplicate" and buf:
            a = at % len(buf)
            buf[a:a] = buf[a:a + draw(st.integers(1, 200))]
        elif op == "append-frame":
            buf += feed_frame(draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), b"x" * draw(st.integers(0, 40)))
    stream = bytes(buf) if whole else head + bytes(buf)
    splits = draw(st.lists(st.integers(0, len(stream)), max_size=6))
    if draw(st.integers(0, 9)) == 0 and len(stream) < 400:
        splits = list(range(len(stream)))  # byte by byte
    flags = (mode != "plain") | (use_rsa << 1) | (close << 2)
    return {"mode": mode, "rsa": use_rsa, "reject": reject, "close": close, "requests": requests,
            "init_frame": init, "stream": stream, "splits": splits, "flags": flags}


def run_feed(b: Build, cases: list[dict[str, Any]], rsa_pem: Path | None) -> list[list[str]]:
    data = b"".join(feed_record(c["flags"], c["requests"], c["splits"], c["stream"]) for c in cases)
    args = ["--rsa-key", str(rsa_pem)] if rsa_pem else []
    r = subprocess.run([str(b.exe("channel_feed")), *args], input=data, capture_output=True, timeout=120, env=b.env())
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0 and "Sanitizer" not in err and "runtime error" not in err, \
        f"channel_feed exit {r.returncode}\n{err[-6000:]}"
    out: list[list[str]] = []
    for line in r.stdout.decode().splitlines():
        if line.startswith("case "):
            out.append([])
        else:
            out[-1].append(line)
    assert len(out) == len(cases)
    return out


@pytest.fixture(scope="session")
def feed_rsa(rsa_keys: dict[str, Path]) -> tuple[Any, Path]:
    from Crypto.PublicKey import RSA

    return RSA.import_key(rsa_keys["pkcs1"].read_bytes()), rsa_keys["pkcs8"]


def test_feed_known_streams(build: Build, feed_rsa: tuple[Any, Path]) -> None:
    """Hand-made streams with known outcomes, on both builds: the model and the harness agree."""
    key, pem = feed_rsa
    cases = []
    for mode in ("plain", "cbc", "ecb"):
        init = feed_init_reply(mode, key, False)
        reply = feed_frame(3001, 2, b"hello", feed_encrypt(mode, b"hello"))
        push = feed_frame(3005, 9, b"", feed_encrypt(mode, b""))
        big = feed_frame(3004, 3, b"z" * 70000, feed_encrypt(mode, b"z" * 70000))
        base = {"mode": mode, "rsa": True, "reject": False, "close": False, "requests": [3001, 3004],
                "init_frame": init, "splits": [], "flags": (mode != "plain") | 2}
        bad_len = bytearray(push)
        bad_len[12:16] = (FEED_MAX_BODY + 1).to_bytes(4, "little")
        cases += [dict(base, stream=init + reply + push + big),
                  dict(base, stream=init + reply + push + big, splits=list(range(0, 400)) + [70000]),
                  dict(base, stream=init + reply + bytes(bad_len)),
                  dict(base, stream=init + reply[:-1]),
                  dict(base, stream=init + b"GT" + reply[2:]),
                  dict(base, stream=init + reply + push, close=True, flags=base["flags"] | 4)]
    cases.append(dict(cases[0], reject=True, init_frame=feed_init_reply("plain", None, True),
                      stream=feed_init_reply("plain", None, True) + cases[0]["stream"], flags=0, mode="plain"))
    # encryption asked, no key: OnInitConnect(100, 4) and not one byte of the stream is read
    cases.append(dict(cases[6], rsa=False, flags=1))
    got = run_feed(build, cases, pem)
    want = [feed_model(c) for c in cases]
    assert got == want
    assert got[0] == ["init 0", "reply 0 3001 2 5", "push 3005 9 0", "reply 0 3004 3 70000", f"disconnect {FEED_DISC_PEER}", "end eof"]
    assert got[2][-3:] == ["reply -200 3004 3 0", f"disconnect {FEED_DISC_EPROTO}", "end stream"]
    assert got[-1] == [f"init {FEED_INIT_NO_KEY}", "end start-failed"]


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_feed_mutated_frames(san_build: Build, feed_rsa: tuple[Any, Path], data: Any) -> None:
    """Mutated streams through the sanitized receive path: no crash, no leak, no sanitizer report,
    no bad-length callback, and the callbacks the model predicts (InitConnect reply intact)."""
    key, pem = feed_rsa
    cases = data.draw(st.lists(feed_cases(key), min_size=1, max_size=8), label="cases")
    got = run_feed(san_build, cases, pem)
    for i, (c, lines) in enumerate(zip(cases, got)):
        want = feed_model(c)
        event(f"{'predicted' if want is not None else 'InitConnect reply mutated'}: {lines[-1]}")
        event(f"callbacks: {sum(not x.startswith('end') for x in lines)}")
        if want is not None:
            assert lines == want, f"case {i}: {c['mode']} rsa={c['rsa']} requests={c['requests']} stream={c['stream'][:400].hex()}"


# --- safety: lifetime races, fail closed, bounds, allocation failure, the PEM/DER reader ------------

RACES = ["close-vs-release", "double-close", "release-while-send", "clear-callback", "close-vs-init", "cross-release"]
INIT_NO_KEY = "init err=429496729604 high=100 low=4 "


@pytest.fixture(params=["tsan", "asan"])
def race_build(request: pytest.FixtureRequest) -> Build:
    return request.getfixturevalue("tsan_build" if request.param == "tsan" else "san_build")


@pytest.fixture(scope="module")
def race_servers(standin_mod: Any) -> Iterator[tuple[int, int]]:
    """A stand-in for the sessions and one that closes the connection on the first request."""
    with standin_mod.StandIn(lifetime=600, max_conns=None) as s, \
            standin_mod.StandIn(lifetime=600, max_conns=None, faults=["close-mid-request"]) as closing:
        yield s.port, closing.port


@pytest.mark.parametrize("case", RACES)
def test_lifetime_races(race_build: Build, race_servers: tuple[int, int], case: str) -> None:
    """Each case 20 rounds; at 8fc4741 close-vs-release hung (TSan: heap-use-after-free), double-close
    and clear-callback broke their promise every round, cross-release deadlocked."""
    port, closing = race_servers
    r = race_build.run("channel_race", "127.0.0.1", str(port), case, "20", str(closing), timeout=120)
    assert r.returncode == 0 and f"ok {case} rounds=20" in r.stdout, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-6000:]}"
    assert "ThreadSanitizer" not in r.stderr and "AddressSanitizer" not in r.stderr


@pytest.mark.parametrize("key", ["none", "bad", "bad-after-good"])
def test_encryption_without_a_usable_key_sends_nothing(standin_mod: Any, build: Build, rsa_keys: dict[str, Path], key: str) -> None:
    """InitConnect(enc=1) without a key that loaded fails with (100 InitFail, 4 SendInitReqFailed)
    before connecting: the stand-in records no connection, so nothing crossed the wire in plaintext."""
    args = ["--encrypt", "--expect", INIT_NO_KEY, "--forbid", "reply proto=", "--forbid", "init err=0 "]
    if key == "bad-after-good":
        args += ["--rsa-key", str(rsa_keys["pkcs1"])]
    if key != "none":
        args += ["--bad-rsa-key"]
    r, conns = run_against(standin_mod, build, *args, rsa_key_pem=rsa_keys["pkcs1"].read_bytes())
    assert_ok(r)
    assert conns == []
    why = "no RSA private key is set" if key == "none" else "did not load"
    assert why in r.stdout


def test_bad_key_fails_without_encryption_too(standin_mod: Any, plain_build: Build) -> None:
    r, conns = run_against(standin_mod, plain_build, "--bad-rsa-key", "--expect", INIT_NO_KEY, "--forbid", "reply proto=")
    assert_ok(r)
    assert conns == []


def test_plaintext_reply_to_an_encrypted_initconnect(build: Build, feed_rsa: tuple[Any, Path]) -> None:
    """A reply carrying the AES key in clear, to an RSA-encrypted InitConnect, is a protocol error."""
    _, pem = feed_rsa
    plain_init = feed_init_reply("cbc", None, False)  # AES key and IV, not RSA-encrypted
    reply = feed_frame(3001, 2, b"hi", feed_encrypt("cbc", b"hi"))
    got = run_feed(build, [{"flags": 1 | 2, "requests": [3001], "splits": [], "stream": plain_init + reply}], pem)
    assert got == [[f"init {(100 << 32) | 0}", "end stream"]]


class StallServer:
    """Answers InitConnect (plain, keepAliveInterval 1 s), then neither reads nor answers: a
    server that stalled. Loopback only; stops by itself after `lifetime` seconds."""

    def __init__(self, lifetime: float = 40) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(lifetime)
        self.port = self.listener.getsockname()[1]
        self.lifetime = lifetime
        self.stop = threading.Event()
        self.served = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = b""
            for _ in range(1000):
                if len(data) >= 44 and len(data) >= 44 + struct.unpack("<I", data[12:16])[0]:
                    break
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            serial = struct.unpack("<I", data[8:12])[0]
            s2c = _pb_int(1, 1001) + _pb_int(2, 1) + _pb_int(3, 99) + _pb_bytes(4, b"0123456789abcdef") + _pb_int(5, 1)
            conn.sendall(feed_frame(1001, serial, _pb_int(1, 0) + _pb_bytes(4, s2c)))
            self.served.set()
            self.stop.wait(self.lifetime)  # stalled: no read, no reply

    def __enter__(self) -> StallServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.listener.close()


def test_stalled_server_is_dropped_with_memory_bounded(plain_build: Build) -> None:
    """200 requests of 1 MiB to a server that reads nothing: SendProto refuses once 64 MiB are
    queued, and with no KeepAlive answered for 3 x 1 s OnDisConnect(11 RecvFailed, ETIMEDOUT) comes,
    after OnReply(DisConnect) for each request. At 8fc4741 all 200 were queued (200 MiB) and no
    disconnect came."""
    with StallServer() as srv:
        r = scenario(plain_build, srv.port, "--no-sub", "--flood", "200", "--total-wait", "20000",
                     "--expect", "init err=0 ", "--expect", "refused=1", "--expect", "type=-200",
                     "--expect", f"disconnect err={(11 << 32) | errno.ETIMEDOUT} high=11 low={errno.ETIMEDOUT}",
                     "--forbid", "type=0 ", timeout=60)
        assert srv.served.is_set()
    assert_ok(r)
    accepted = int(r.stdout.split("flood accepted=")[1].split()[0])
    # 64 MiB of queue plus what the kernel's socket buffers took before the server stopped reading
    assert 16 <= accepted <= 64 + 16, r.stdout[-2000:]
    assert r.stdout.count("type=-200") == accepted + 1  # the GetGlobalState sent from OnInitConnect too
    peak_kb = int(r.stdout.split("vmhwm_kb=")[1].split()[0])
    assert peak_kb < 120 * 1024, f"peak RSS {peak_kb} KiB"


def test_allocation_failure_never_escapes(standin_mod: Any, san_build: Build) -> None:
    """Every allocation of a whole session failed in turn (N = 1..80): no exception leaves the
    library and every session ends with something the application sees. At 8fc4741 the first
    failing allocation in CreateFTAPIChannel's members ended the process."""
    with standin_mod.StandIn(lifetime=120, max_conns=None) as s:
        r = san_build.run("channel_oom", "127.0.0.1", str(s.port), "1", "80", timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}"
    assert "silent=0" in r.stdout
    failed = int(r.stdout.split("failed_allocs=")[1].split()[0])
    assert failed >= 20  # the failures did land inside sessions


def test_pem_der_reader_fuzzed(san_build: Build, rsa_keys: dict[str, Path], tmp_path: Path) -> None:
    """The PEM/DER reader the Windows backend uses, built on Linux under ASan+UBSan: 30000 mutated
    PKCS#1 and PKCS#8 keys (deterministic), no sanitizer report."""
    from Crypto.PublicKey import RSA

    key = RSA.import_key(rsa_keys["pkcs1"].read_bytes())
    seeds = []
    for pkcs in (1, 8):
        f = tmp_path / f"seed-pkcs{pkcs}.der"
        f.write_bytes(key.export_key(format="DER", pkcs=pkcs))
        seeds.append(str(f))
    r = san_build.run("channel_pem_fuzz", "30000", *seeds, timeout=300)
    assert r.returncode == 0 and "channel_pem_fuzz: 30000 inputs" in r.stdout, r.stderr[-4000:]


# --- one large packet's memory (channel_mem: a counting operator new) ------------------------------
# The bound: one packet costs the channel at most about 2x its body. channel_mem sends one
# 16 MiB SendProto to a peer that reads nothing (the packet stays queued), then receives one 16 MiB
# push in 64 KiB writes followed by a small one, counting every allocation the channel makes.


@pytest.mark.parametrize("mode", ["plain", "cbc", "ecb"])
def test_one_large_packet_costs_at_most_twice_its_body_and_the_reassembly_buffer_shrinks_after_it(plain_build: Build, mode: str) -> None:
    r = plain_build.run("channel_mem", mode, "16", timeout=300)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "ok", f"{r.stdout}\n{r.stderr}"
    facts = {line.split()[0]: dict(kv.split("=") for kv in line.split()[1:]) for line in r.stdout.splitlines()[:-1]}
    send, recv = ({k: int(v) for k, v in facts[w].items()} for w in ("send", "recv"))
    body = 16 << 20
    assert send["body"] == recv["body"] == body
    # sent: the queued packet is the body once (plus its header and padding), encrypted in place
    assert send["peak"] <= body + 4096 and send["held"] <= body + 4096, send
    # received: the reassembly buffer and the body handed to OnPush, nothing more
    assert recv["peak"] <= 2 * body + (256 << 10), recv  # the packet, its decrypted body, a 64 KiB read buffer
    assert recv["at_push"] <= body + (256 << 10), recv
    # after the small push the large packet's buffers are gone
    assert recv["after"] <= 256 << 10 and recv["reasm"] <= 64 << 10, recv
