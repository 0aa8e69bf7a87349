"""The open channel library (channel/): its unit program, known answers from the official Python
client's own functions, and scenarios against the stand-in OpenD (tests/opend_standin.py).

channel/ is built twice per session, once plainly (warnings as errors) and once with
ASan+UBSan; every scenario runs against both builds except the two long timer scenarios, which
run once. Everything stays on loopback.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = ROOT / "channel"
STANDIN = Path(__file__).parent / "opend_standin.py"

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


def _build(folder: Path, sanitize: bool) -> Build:
    cmake = shutil.which("cmake")
    if not cmake:
        pytest.skip("cmake is not on PATH")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    cfg = [cmake, "-S", str(CHANNEL), "-B", str(folder), *gen, "-DOPEND_CHANNEL_TESTS=ON",
           "-DCMAKE_BUILD_TYPE=" + ("Debug" if sanitize else "RelWithDebInfo"), "-DCMAKE_CXX_FLAGS=-Werror",
           "-DOPEND_CHANNEL_SANITIZE=" + ("ON" if sanitize else "OFF")]
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


@pytest.fixture(params=["plain", "asan"])
def build(request: pytest.FixtureRequest) -> Build:
    return request.getfixturevalue("plain_build" if request.param == "plain" else "san_build")


# --- the pure parts ---------------------------------------------------------------------------------

def test_unit_program(build: Build) -> None:
    r = build.run("channel_unit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "channel_unit: all" in r.stdout and "checks passed" in r.stdout


def test_exports_only_the_c_api(plain_build: Build) -> None:
    nm = shutil.which("nm")
    if not nm:
        pytest.skip("nm is not on PATH")
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
    if importlib.util.find_spec("futu") is None:
        pytest.skip("the official client (pip install futu-api==10.11.7108) is not installed")
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


def test_header_and_sha1_match_official(plain_build: Build, official: Any) -> None:
    cases = [(1001, 1, data(n, 1)) for n in LENGTHS] + [(0xFFFFFFFF, 0xFFFFFFFE, data(3)), (3005, 77, "")]
    theirs = official([["header", p, s, body] for p, s, body in cases])
    for (proto, serial, body), want in zip(cases, theirs):
        # the official client builds a format-1 (JSON) header for bytes; same layout
        assert kat(plain_build, "header", str(proto), "1", "0", str(serial), body) == want
        head = bytes.fromhex(want)[:44].hex()
        fields = kat(plain_build, "parse", head).split()
        assert fields[:5] == [str(proto), "1", "0", str(serial), str(len(body) // 2)]
        assert fields[5] == kat(plain_build, "sha1", body) == bytes.fromhex(want)[16:36].hex()


def test_parse_rejects_bad_magic_and_oversized(plain_build: Build) -> None:
    good = kat(plain_build, "header", "1", "0", "0", "1", "")
    assert plain_build.run("channel_kat", "parse", "4754" + good[4:]).returncode == 1
    oversized = bytes.fromhex(good)
    oversized = oversized[:12] + (64 * 1024 * 1024 + 1).to_bytes(4, "little") + oversized[16:]
    r = plain_build.run("channel_kat", "parse", oversized.hex())
    assert r.returncode == 1 and "too long" in r.stderr


@pytest.mark.parametrize("mode", ["ecb", "cbc"])
def test_aes_matches_official(plain_build: Build, official: Any, mode: str) -> None:
    iv = IV if mode == "cbc" else None
    plains = [data(n, n) for n in LENGTHS]
    theirs = official([[f"{mode}-enc", KEY, iv, p] for p in plains])
    key_hex, iv_hex = KEY.encode().hex(), IV.encode().hex()
    ours = []
    for p, want in zip(plains, theirs):
        args = [key_hex, p] if mode == "ecb" else [key_hex, iv_hex, p]
        enc = kat(plain_build, f"{mode}-enc", *args)
        assert enc == want, f"{mode} encrypt of {len(p) // 2} bytes"
        dec_args = [key_hex, want] if mode == "ecb" else [key_hex, iv_hex, want]
        assert kat(plain_build, f"{mode}-dec", *dec_args) == p
        ours.append(enc)
    assert official([[f"{mode}-dec", KEY, iv, c] for c in ours]) == plains


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_rsa_round_trips_with_official(plain_build: Build, official: Any, rsa_keys: dict[str, Path], form: str) -> None:
    lengths = (*LENGTHS, 101, 250)
    plains = [data(n, 3) for n in lengths]
    key = str(rsa_keys[form])
    # ours -> theirs
    ours = [kat(plain_build, "rsa-enc", key, p) for p in plains]
    for n, c in zip(lengths, ours):
        assert len(c) // 2 == -(-n // 100) * 128
    assert official([["rsa-dec", key, c] for c in ours]) == plains
    # theirs -> ours (the official client reads the PKCS#1 form)
    theirs = official([["rsa-enc", str(rsa_keys["pkcs1"]), p] for p in plains])
    assert [kat(plain_build, "rsa-dec", key, c) for c in theirs] == plains


def test_protobuf_messages_match_official(plain_build: Build, official: Any) -> None:
    reqs = [[300, "PyNormal", False, "Python"], [100, "channel \u4e2d", True, "C++"], [-5, "", True, ""]]
    rsps = [[0, "", 7000000000000000001, "0123456789ABCDEF", 10, "iviviviviviviviv"],
            [0, "ok", 1, "0123456789ABCDEF", 30, ""], [-1, "rejected", 0, "", 0, ""]]
    theirs = official([["init-req", *r] for r in reqs] + [["init-rsp", *r] for r in rsps] + [["keepalive", 1764633600]])
    for (ver, cid, enc, lang), want in zip(reqs, theirs):
        ours = kat(plain_build, "init-req", str(ver), cid.encode().hex(), "1" if enc else "0", lang.encode().hex())
        assert ours == want, (ver, cid, enc, lang)
    for (ret, msg, conn_id, key, ka, iv), body in zip(rsps, theirs[len(reqs):]):
        fields = kat(plain_build, "init-rsp", body).split()
        assert fields == [str(ret), str(conn_id), str(ka), key.encode().hex() if key else "-",
                          iv.encode().hex() if iv else "-", msg.encode().hex() if msg else "-"]
    assert kat(plain_build, "keepalive", "1764633600") == theirs[-1]


# --- scenarios against the stand-in OpenD ------------------------------------------------------------

@pytest.fixture(scope="session")
def standin_mod() -> Any:
    if not STANDIN.exists():
        pytest.skip(f"{STANDIN} is not there")
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


def test_plain_session(standin_mod: Any, build: Build) -> None:
    r, conns = run_against(standin_mod, build)
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
def test_rsa_and_aes_session(standin_mod: Any, build: Build, rsa_keys: dict[str, Path], aes: str) -> None:
    # the stand-in reads the PKCS#1 form, the channel the PKCS#8 form of the same key
    r, conns = run_against(standin_mod, build, "--encrypt", "--rsa-key", str(rsa_keys["pkcs8"]),
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
