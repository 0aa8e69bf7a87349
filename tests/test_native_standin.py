"""The native stand-in OpenD (bench/channel/standin/opend_standin.cpp, the server of the channel
bench) against the vendor's official Python client, futu-api 10.11.7108, the way
tests/test_standin.py validates the Python stand-in: the same client scenarios (plain, RSA-1024 +
AES-CBC, RSA-1024 + FTAES-ECB), the same checks of the client's results and of the server's
per-connection log; then raw sockets for what the client cannot show, with every reply decoded by
the vendor's generated messages (the stand-in encodes its protobuf by hand)."""

from __future__ import annotations

import json
import selectors
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from opend_build import standin as st  # noqa: E402
from test_standin import FULL, Raw, assert_record, assert_scenario, rsa_pem, run_client  # noqa: E402

pytestmark = pytest.mark.build

SOURCE = HERE.parent / "bench" / "channel" / "standin" / "opend_standin.cpp"


@pytest.fixture(scope="module")
def standin_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built with the compiler directly (one file, seconds), warnings as errors, C++11 like the channel, and under
    AddressSanitizer and UBSan: a length from the wire that is trusted too far fails every test here, not only one."""
    cxx = shutil.which("c++") or shutil.which("g++")
    assert cxx, "a C++ compiler is needed"
    exe = tmp_path_factory.mktemp("native-standin") / "opend_standin"
    r = subprocess.run([cxx, "-std=c++11", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                        "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(SOURCE), "-lcrypto", "-pthread"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe


class Native:
    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def records(self, rc_wait: float = 20) -> list[dict[str, Any]]:
        """Waits for the server to leave by itself (it must: --max-conns), then reads its log."""
        assert self.proc.wait(timeout=rc_wait) == 0
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@contextmanager
def native(exe: Path, tmp_path: Path, *args: str, max_conns: int = 1, lifetime: float = 30) -> Iterator[Native]:
    log = tmp_path / f"native-{len(list(tmp_path.glob('native-*')))}.jsonl"
    proc = subprocess.Popen([str(exe), "--max-conns", str(max_conns), "--lifetime", str(lifetime), "--log", str(log), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=20), "no port line"
        first = proc.stdout.readline()
        assert first.startswith("port=") and first.endswith("\n"), first
        yield Native(proc, int(first[len("port="):]), log)
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child, by its handle; only when a test failed before it left
            proc.wait(10)


def assert_native(rec: dict[str, Any]) -> None:
    assert rec["server"] == "native" and rec["packets_total"] == len(rec["packets"]) and rec["sent_total"] == len(rec["sent"])
    for k in ("work_us", "service_us"):  # every request after InitConnect was answered and timed
        assert rec[k]["n"] == len(rec["packets"]) - 1 and 0 < rec[k]["p50"] <= rec[k]["p99"] <= rec[k]["max"]


# --- the official client, plain and encrypted -------------------------------------------------------

def test_plain_official_client_state_notify_subscribe_and_quote_push(standin_exe: Path, tmp_path: Path) -> None:
    with native(standin_exe, tmp_path, "--push-notify") as s:
        result = run_client(tmp_path, "client", {"port": s.port, **FULL})
        (rec,) = s.records()
        assert s.proc.stdout is not None and s.proc.stdout.read() == ""  # exactly one stdout line
    assert_scenario(result)
    assert result["init_results"] == [[0, ""]]
    assert_record(rec)
    assert_native(rec)
    assert rec["rsa"] is False and rec["encrypted"] is False and rec["aes"] is None
    assert rec["init"]["packetEncAlgo"] == -1 and rec["conn_id"] != 0


def test_rsa_and_aes_cbc_official_client_and_a_push_burst(standin_exe: Path, tmp_path: Path) -> None:
    _, pem_file = rsa_pem(tmp_path)
    burst = 150
    with native(standin_exe, tmp_path, "--rsa-key", pem_file, "--push-notify", "--push-burst", str(burst)) as s:
        spec = {"port": s.port, "rsa_file": pem_file, **FULL, "want_quotes": burst + 1, "push_wait": 20}
        result = run_client(tmp_path, "client", spec)
        (rec,) = s.records()
    assert_scenario(result)
    assert len(result["quotes"]) == burst + 1 and all(q == result["quotes"][0] for q in result["quotes"])  # every push parsed
    assert_record(rec)
    assert_native(rec)
    assert rec["rsa"] is True and rec["encrypted"] is True and rec["aes"] == "cbc" and rec["init"]["packetEncAlgo"] == 2
    assert len(rec["aes_cbc_iv"]) == 16 and len(rec["conn_aes_key"]) == 16
    assert rec["packets"][0]["body_len"] % 128 == 0  # RSA blocks of a 1024-bit key
    reply = next(x for x in rec["sent"] if x["proto_id"] == 1001)
    assert reply["body_len"] % 128 == 0 and reply["body_len"] != reply["plain_len"]
    later = [x for x in rec["sent"] if x["proto_id"] != 1001]
    assert later and all(x["body_len"] % 16 == 0 and x["body_len"] > x["plain_len"] for x in later)  # CBC, PKCS#7
    (b,) = rec["bursts"]
    assert (b["count"], b["first_serial"]) == (burst, max(x["serial"] for x in rec["sent"] if x["kind"] == "push") + 1)
    assert b["bytes"] == burst * (44 + b["body_len"]) and b["send_s"] is not None


def test_rsa_pkcs8_key_and_ftaes_ecb_official_client_falls_back_without_iv(standin_exe: Path, tmp_path: Path) -> None:
    from Crypto.PublicKey import RSA

    pem, pem_file = rsa_pem(tmp_path)
    pkcs8 = tmp_path / "conn_key_pkcs8.pem"
    pkcs8.write_bytes(RSA.import_key(pem).export_key(pkcs=8))  # the server reads either form; the client gets PKCS#1
    with native(standin_exe, tmp_path, "--rsa-key", str(pkcs8), "--aes", "ecb", "--push-notify") as s:
        result = run_client(tmp_path, "client", {"port": s.port, "rsa_file": pem_file, **FULL})
        (rec,) = s.records()
    assert_scenario(result)
    assert_record(rec)
    assert_native(rec)
    assert rec["rsa"] is True and rec["encrypted"] is True and rec["aes"] == "ecb"
    assert rec["init"]["packetEncAlgo"] == 2 and rec["aes_cbc_iv"] is None  # asked CBC, got no IV
    later = [x for x in rec["sent"] if x["proto_id"] != 1001]
    assert later and all(x["body_len"] == -(-x["plain_len"] // 16) * 16 + 16 for x in later)  # zero-padded + the tail block


# --- raw sockets: the hand-encoded messages, decoded by the vendor's classes ----------------------

def test_raw_replies_parse_as_the_vendors_messages(standin_exe: Path, tmp_path: Path) -> None:
    with native(standin_exe, tmp_path, "--push-notify", "--push-burst", "3") as s:
        raw = Raw(s.port)
        try:
            raw.init_connect(serial=10)
            head, body = raw.packet()
            init = st.PB["InitConnect"].Response.FromString(body)
            note_head, note_body = raw.packet()
            raw.send(9999, 11, body=b"")  # an empty body and an unknown protoID
            unknown = raw.packet()
            ka = st.PB["KeepAlive"].Request()
            ka.c2s.time = 1
            raw.send(1004, 12, ka)
            alive = raw.packet()
            raw.send(1002, 13, body=bytes.fromhex("0a020800"))
            state, note2 = raw.packet(), raw.packet()
            sub = st.PB["Qot_Sub"].Request()
            for market, code in ((11, "AAPL"), (1, "00700")):
                sec = sub.c2s.securityList.add()
                sec.market, sec.code = market, code
            sub.c2s.subTypeList.append(1)
            sub.c2s.isSubOrUnSub = True
            raw.send(3001, 14, sub)
            sub_reply = raw.packet()
            pushes = [raw.packet() for _ in range(4)]
        finally:
            raw.close()
        (rec,) = s.records()
    assert (head["proto_id"], head["serial"], init.retType) == (1001, 10, 0)
    s2c = init.s2c
    assert (s2c.serverVer, s2c.loginUserID, s2c.connID, s2c.keepAliveInterval) == (st.SERVER_VER, st.LOGIN_USER_ID, rec["conn_id"], 10)
    assert len(s2c.connAESKey) == 16 and s2c.connAESKey.isalnum() and not s2c.HasField("aesCBCiv")  # no encryption asked
    assert (note_head["proto_id"], note_head["serial"]) == (1003, 1)
    note = st.PB["Notify"].Response.FromString(note_body)
    assert (note.retType, note.s2c.type, note.s2c.event.eventType, note.s2c.event.desc) == (0, 1, 0, st.NOTIFY_DESC)
    err = st.PB["InitConnect"].Response.FromString(unknown[1])
    assert (unknown[0]["proto_id"], unknown[0]["serial"], err.retType) == (9999, 11, -1) and "9999" in err.retMsg
    assert (alive[0]["proto_id"], alive[0]["serial"]) == (1004, 12) and st.PB["KeepAlive"].Response.FromString(alive[1]).s2c.time > 1
    g = st.PB["GetGlobalState"].Response.FromString(state[1])
    assert (state[0]["proto_id"], state[0]["serial"], g.retType) == (1002, 13, 0)
    assert {n: getattr(g.s2c, n) for n in st.MARKET_STATES} == st.MARKET_STATES
    assert (g.s2c.qotLogined, g.s2c.trdLogined, g.s2c.serverVer, g.s2c.serverBuildNo, g.s2c.connID) == (
        True, True, st.SERVER_VER, st.SERVER_BUILD_NO, rec["conn_id"])
    assert g.s2c.time > 1_700_000_000 and abs(g.s2c.localTime - g.s2c.time) < 2
    assert (note2[0]["proto_id"], note2[0]["serial"]) == (1003, 2)
    assert (sub_reply[0]["proto_id"], sub_reply[0]["serial"]) == (3001, 14)
    q = st.PB["Qot_Sub"].Response.FromString(sub_reply[1])
    assert q.retType == 0 and q.HasField("s2c")
    assert [(h["proto_id"], h["serial"]) for h, _ in pushes] == [(3005, 3), (3005, 4), (3005, 5), (3005, 6)]
    for _, body in pushes:
        push = st.PB["Qot_UpdateBasicQot"].Response.FromString(body)
        assert push.retType == 0 and push.IsInitialized()  # every required field of BasicQot is there
        assert [(x.security.market, x.security.code, x.name, x.curPrice, x.volume) for x in push.s2c.basicQotList] == [
            (11, "AAPL", "STAND-IN AAPL", 400.2, 123456), (1, "00700", "STAND-IN 00700", 400.2, 123456)]
    assert rec["init"] == {"clientVer": 1, "clientID": "raw", "recvNotify": True, "packetEncAlgo": -1, "pushProtoFmt": None,
                           "programmingLanguage": "C++", "aiType": None}
    assert [p["proto_id"] for p in rec["packets"]] == [1001, 9999, 1004, 1002, 3001] and rec["ended"] == "client-closed"
    assert rec["packets"][4]["body_len"] == len(sub.SerializeToString()) and rec["bursts"][0]["count"] == 3


def test_packed_sub_types_and_a_sub_without_securities(standin_exe: Path, tmp_path: Path) -> None:
    # subTypeList packed (as a proto3-minded client may write it): c2s{securityList{1,"00700"}, subTypeList=[1,4] packed, isSubOrUnSub}
    packed = bytes.fromhex("0a110a09080112053030373030120201041801")
    unsub = bytes.fromhex("0a021800")  # c2s{isSubOrUnSub=false}: a reply, no push
    with native(standin_exe, tmp_path) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect()
            raw.packet()
            raw.send(3001, 2, body=packed)
            got = [raw.packet(), raw.packet()]
            raw.send(3001, 3, body=unsub)
            raw.send(3001, 4, body=b"\x0a\x05\x0a\x03\x08")  # a Security cut short: an error reply, the connection stays
            raw.send(1004, 5, body=bytes.fromhex("0a020801"))
            got += [raw.packet(), raw.packet(), raw.packet()]
        finally:
            raw.close()
        (rec,) = s.records()
    assert [(h["proto_id"], h["serial"]) for h, _ in got] == [(3001, 2), (3005, 1), (3001, 3), (3001, 4), (1004, 5)]
    assert st.PB["Qot_UpdateBasicQot"].Response.FromString(got[1][1]).s2c.basicQotList[0].security.code == "00700"
    assert st.PB["Qot_Sub"].Response.FromString(got[2][1]).retType == 0
    bad = st.PB["Qot_Sub"].Response.FromString(got[3][1])
    assert bad.retType == -1 and "does not parse" in bad.retMsg
    assert rec["errors"] == [] and rec["ended"] == "client-closed"


def test_every_size_and_digest_from_the_wire_is_checked(standin_exe: Path, tmp_path: Path) -> None:
    with native(standin_exe, tmp_path, max_conns=5) as s:
        raw = Raw(s.port)  # 1: the first packet is not InitConnect
        raw.send(1002, 1, body=b"")
        head, body = raw.packet()
        first_eof = raw.read(1) == b"" and raw.eof
        raw.close()
        raw = Raw(s.port)  # 2: a bodyLen over the 16 MiB cap, nothing after it
        raw.sock.sendall(st.pack_header(1001, 1, 16 * 1024 * 1024 + 1, b"\x00" * 20))
        big_eof = raw.read(1) == b"" and raw.eof
        raw.close()
        raw = Raw(s.port)  # 3: not an OpenD header
        raw.sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        http_eof = raw.read(1) == b"" and raw.eof
        raw.close()
        raw = Raw(s.port)  # 4: a later body that does not match its SHA-1
        raw.init_connect()
        raw.packet()
        raw.sock.sendall(st.pack_header(1004, 2, 3, b"\x00" * 20) + b"abc")
        sha_eof = raw.read(1) == b"" and raw.eof
        raw.close()
        raw = Raw(s.port)  # 5: encryption asked, but the InitConnect is plaintext (no RSA key on this server)
        req = st.PB["InitConnect"].Request()
        req.c2s.clientVer, req.c2s.clientID, req.c2s.packetEncAlgo = 1, "raw", 2
        raw.send(1001, 1, req)
        enc_head, enc_body = raw.packet()
        raw.close()
        recs = s.records()
    rsp = st.PB["InitConnect"].Response.FromString(body)
    assert first_eof and (head["proto_id"], rsp.retType) == (1002, -1) and "InitConnect" in rsp.retMsg
    assert big_eof and http_eof and sha_eof
    enc = st.PB["InitConnect"].Response.FromString(enc_body)
    assert enc_head["proto_id"] == 1001 and enc.retType == -1 and "encryption asked" in enc.retMsg
    by_index = {r["index"]: r for r in recs}
    assert [by_index[i]["ended"] for i in range(5)] == ["server-closed-init-failed", "server-closed-protocol-error",
                                                        "server-closed-protocol-error", "server-closed-protocol-error",
                                                        "server-closed-init-failed"]
    assert "over the cap" in by_index[1]["errors"][0] and "not an OpenD header: 4745" == by_index[2]["errors"][0]
    assert by_index[3]["packets"][-1]["sha1_ok"] is False and "SHA-1" in by_index[3]["errors"][0]
    assert all(r["service_us"] is None and r["work_us"] is None for r in recs)  # nothing was answered past InitConnect


def test_an_rsa_init_connect_that_does_not_decrypt_is_refused_in_plain(standin_exe: Path, tmp_path: Path) -> None:
    from Crypto.PublicKey import RSA

    _, pem_file = rsa_pem(tmp_path)
    other = RSA.generate(1024)  # not the server's key

    req = st.PB["InitConnect"].Request()
    req.c2s.clientVer, req.c2s.clientID, req.c2s.packetEncAlgo = 1, "raw", 2
    plain = req.SerializeToString()
    with native(standin_exe, tmp_path, "--rsa-key", pem_file) as s:
        raw = Raw(s.port)
        raw.sock.sendall(st.pack_packet(1001, 1, plain, st.rsa_encrypt(other, plain)))
        head, body = raw.packet()
        raw.close()
        (rec,) = s.records()
    rsp = st.PB["InitConnect"].Response.FromString(body)  # the refusal is plain: the client could not decrypt it otherwise
    assert head["proto_id"] == 1001 and rsp.retType == -1 and "SHA-1" in rsp.retMsg
    assert rec["rsa"] is False and rec["ended"] == "server-closed-init-failed" and rec["packets"][0]["sha1_ok"] is False


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "::"], ["--host", "example.com"], ["--port", "70000"],
                                  ["--push-burst", "-1"], ["--aes", "gcm"], ["--lifetime", "0"], ["--nonsense"],
                                  ["--rsa-key", "/nonexistent/key.pem"], ["--rsa-key", __file__],
                                  ["--log", "/nonexistent/folder/log.jsonl"]])
def test_bad_arguments_exit_2_with_one_line(standin_exe: Path, args: list[str]) -> None:
    r = subprocess.run([str(standin_exe), "--lifetime", "2", *args], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout) == (2, "") and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("opend_standin: ")


def test_ipv6_loopback_and_lifetime_end_the_server_with_a_client_connected(standin_exe: Path, tmp_path: Path) -> None:
    with native(standin_exe, tmp_path, "--host", "::1", lifetime=2) as s:
        with socket.create_connection(("::1", s.port), timeout=5) as sock:
            sock.settimeout(10)
            assert sock.recv(1) == b""  # the server closed the connection on its way out
        (rec,) = s.records()
    assert rec["ended"] == "server-stopped" and rec["peer"].startswith("::1:")

