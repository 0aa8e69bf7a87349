"""The stand-in OpenD (src/opend_build/standin.py) against the vendor's official Python client,
futu-api 10.11.7108, and against raw sockets for what that client cannot observe quickly.

The official client never runs inside the pytest process: importing it starts a logger that
writes under HOME and installs a SIGINT handler that exits the process with status 0. Every
scenario runs it in a child process (this file run as a script, `python tests/test_standin.py
MODE IN.json`) with HOME in a temporary folder, daemon threads, a hard timeout, and os._exit at
the end, so a client thread that lingers or reconnects can never hang the suite. The child prints
one line "RESULT <json>" with what the client returned and which callbacks it saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from conftest import ROOT  # noqa: E402  (loads this checkout's package)

from opend_build import standin as st  # noqa: E402

STANDIN = ROOT / "src" / "opend_build" / "standin.py"
CHILD_TIMEOUT = 40  # seconds; the slowest scenario (delay-reply) needs about 14; a broken InitConnect makes the
# synchronous constructor retry for ever, and this bounds it
AES_LENGTHS = (0, 1, 15, 16, 17, 100)
RSA_LENGTHS = (1, 99, 100, 101, 250)


# --- the child: the official client ------------------------------------------------------------

def _child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    from futu import RET_OK, OpenQuoteContext, StockQuoteHandlerBase, SubType, SysConfig, SysNotifyHandlerBase
    from futu.common.open_context_base import OpenContextBase

    SysConfig.set_all_thread_daemon(True)
    if mode == "knowns":
        return _child_knowns(spec)

    if spec.get("rsa_file"):
        SysConfig.set_init_rsa_file(spec["rsa_file"])
        SysConfig.enable_proto_encrypt(True)

    init_results: list[list[Any]] = []
    original = OpenContextBase._send_init_connect_sync

    def recording(self: Any) -> Any:  # what InitConnect returned, reply message included
        ret = original(self)
        init_results.append(list(ret))
        return ret

    OpenContextBase._send_init_connect_sync = recording
    notifies: list[Any] = []
    quotes: list[Any] = []

    class Notes(SysNotifyHandlerBase):
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret = super().on_recv_rsp(rsp_pb)
            notifies.append([ret[0], list(ret[1])])
            return ret

    class Quotes(StockQuoteHandlerBase):
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = super().on_recv_rsp(rsp_pb)
            rows = data.to_dict("records") if hasattr(data, "to_dict") else data
            quotes.append([ret, [{k: r[k] for k in ("code", "name", "last_price", "volume")} for r in rows] if ret == RET_OK else rows])
            return ret, data

    out: dict[str, Any] = {"init_results": init_results, "notifies": notifies, "quotes": quotes}
    ctx = None
    try:
        if spec.get("async_connect"):
            ctx = OpenQuoteContext(host="127.0.0.1", port=spec["port"], is_async_connect=True)
            ctx.set_sync_query_connect_timeout(spec.get("connect_timeout", 2))
        else:
            ctx = OpenQuoteContext(host="127.0.0.1", port=spec["port"])
        ctx.set_handler(Notes())
        ctx.set_handler(Quotes())
        out["global_state"] = list(ctx.get_global_state())
        if spec.get("subscribe"):
            out["subscribe"] = list(ctx.subscribe(["HK.00700"], [SubType.QUOTE]))
        deadline = time.monotonic() + spec.get("push_wait", 0)
        while time.monotonic() < deadline and (len(notifies) < spec.get("want_notifies", 0) or len(quotes) < spec.get("want_quotes", 0)):
            time.sleep(0.05)
    finally:
        if ctx is not None:
            ctx.close()
            time.sleep(0.2)  # lets the client's network thread send its FIN
    return out


def _child_knowns(spec: dict[str, Any]) -> dict[str, Any]:
    """Byte-exact vectors from the vendor's own functions (framing, both AES modes, RSA)."""
    from futu.common import utils
    from futu.common.conn_mng import FutuConnMng
    from futu.common.pb import GetGlobalState_pb2
    from futu.common.sys_config import RsaCrypt, SysConfig

    out: dict[str, Any] = {"headers": [], "aes": [], "rsa_theirs": [], "rsa_ours_decrypted": []}
    # Framing, plain: a real message (format 0) and raw bodies (format 1 takes bytes as they are).
    msg = GetGlobalState_pb2.Request()
    msg.c2s.userID = 0
    ret, err, packet = utils._joint_head(1002, 0, msg.ByteSize(), msg, 0, 77, False)
    out["headers"].append({"proto_id": 1002, "fmt": 0, "serial": 77, "body": msg.SerializeToString().hex(), "packet": packet.hex(), "ret": ret})
    for proto_id, serial, body in ((1004, 1, b""), (3001, 4294967294, b"x" * 300)):
        ret, err, packet = utils._joint_head(proto_id, 1, len(body), body, 0, serial, False)
        out["headers"].append({"proto_id": proto_id, "fmt": 1, "serial": serial, "body": body.hex(), "packet": packet.hex(), "ret": ret})
    out["parsed"] = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in utils.parse_head(bytes.fromhex(out["headers"][0]["packet"])[:44]).items()}

    # AES through FutuConnMng, as the client keeps its connections.
    for n, (mode, iv) in enumerate((("cbc", spec["iv"]), ("ecb", None)), start=1001):
        FutuConnMng.add_conn({"conn_id": n, "conn_key": spec["key"], "conn_iv": iv, "is_encrypt": True, "login_user_id": 1})
        for length in AES_LENGTHS:
            plain = bytes((i * 7 + length) % 256 for i in range(length))
            _, _, enc = FutuConnMng.encrypt_conn_data(n, plain)
            ours = bytes.fromhex(spec["ours"][mode][str(length)])
            _, _, dec_ours = FutuConnMng.decrypt_conn_data(n, ours)
            out["aes"].append({"mode": mode, "length": length, "plain": plain.hex(), "enc": enc.hex(), "dec_ours": dec_ours.hex()})
        # The whole packet, encrypted: bodyLen is the wire length, the SHA-1 is the plaintext's.
        body = b"abc" * 11
        ret, err, packet = utils._joint_head(1002, 1, len(body), body, n, 9, True)
        out["headers"].append({"proto_id": 1002, "fmt": 1, "serial": 9, "body": body.hex(), "packet": packet.hex(), "ret": ret, "aes": mode})

    SysConfig.set_init_rsa_file(spec["rsa_file"])
    for length in RSA_LENGTHS:
        plain = bytes((i * 13 + 1) % 256 for i in range(length))
        out["rsa_theirs"].append({"plain": plain.hex(), "enc": RsaCrypt.encrypt(plain).hex()})
    for enc in spec["rsa_ours"]:
        out["rsa_ours_decrypted"].append(RsaCrypt.decrypt(bytes.fromhex(enc)).hex())
    return out


def _child_main(argv: list[str]) -> None:
    mode, spec_file = argv[0], argv[1]
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    try:
        result = _child(mode, spec)
    except BaseException as e:  # reported, never hidden: the test asserts on it
        result = {"exception": f"{type(e).__name__}: {e}"}
    sys.stdout.write("RESULT " + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    os._exit(0)  # the client's threads (reconnect timers, callback executors) must not keep us alive


# --- helpers for the tests ------------------------------------------------------------------------

def run_client(tmp_path: Path, mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    spec_file = tmp_path / f"spec-{mode}-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), mode, str(spec_file)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=CHILD_TIMEOUT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(lines) == 1, f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(lines[0][len("RESULT "):])
    assert "exception" not in result, result["exception"]
    return result


def rsa_pem(tmp_path: Path) -> tuple[bytes, str]:
    from Crypto.PublicKey import RSA

    pem = RSA.generate(1024).export_key(pkcs=1)
    path = tmp_path / "conn_key.pem"
    path.write_bytes(pem)
    return pem, str(path)


def assert_scenario(result: dict[str, Any]) -> None:
    """The official client's view of a full scenario: state, subscription, both pushes."""
    ret, state = result["global_state"]
    assert ret == 0, state
    assert state["server_ver"] == str(st.SERVER_VER)
    assert state["qot_logined"] is True and state["trd_logined"] is True
    assert state["market_hk"] == "AFTERNOON" and state["market_us"] == "AFTER_HOURS_END"
    assert result["subscribe"] == [0, None]
    assert [0, ["GTW_EVENT", "N/A", st.NOTIFY_DESC]] in result["notifies"]
    assert result["quotes"][:1] == [[0, [{"code": "HK.00700", "name": "STAND-IN 00700", "last_price": 400.2, "volume": 123456}]]]


def assert_record(rec: dict[str, Any]) -> None:
    assert rec["errors"] == []
    assert rec["ended"] == "client-closed"
    assert rec["init"]["clientID"] == "PyNormal" and rec["init"]["clientVer"] == 300
    assert rec["init"]["programmingLanguage"] == "Python" and rec["init"]["recvNotify"] is True
    assert [p["proto_id"] for p in rec["packets"]][:3] == [1001, 1002, 3001]
    assert all(p["sha1_ok"] and p["reserved_zero"] and p["proto_fmt"] == 0 for p in rec["packets"])
    serials = [p["serial"] for p in rec["packets"]]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)  # the client's serials increase
    replies = {(s["proto_id"], s["serial"]) for s in rec["sent"] if s["kind"] == "reply"}
    assert {(p["proto_id"], p["serial"]) for p in rec["packets"][:3]} <= replies  # every reply echoes its request
    pushes = [s for s in rec["sent"] if s["kind"] == "push"]
    assert [p["serial"] for p in pushes] == list(range(1, len(pushes) + 1))
    assert {p["proto_id"] for p in pushes} == {1003, 3005}


FULL = {"subscribe": True, "push_wait": 5, "want_notifies": 1, "want_quotes": 1}


# --- the raw side: a minimal client for faults the official client cannot show quickly ------------

class Raw:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, proto_id: int, serial: int, msg: Any = None, body: bytes | None = None) -> None:
        self.sock.sendall(st.pack_packet(proto_id, serial, msg.SerializeToString() if msg is not None else (body or b"")))

    def init_connect(self, serial: int = 1) -> None:
        req = st.PB["InitConnect"].Request()
        req.c2s.clientVer, req.c2s.clientID, req.c2s.recvNotify, req.c2s.packetEncAlgo = 1, "raw", True, -1
        req.c2s.programmingLanguage = "C++"
        self.send(1001, serial, req)

    def read(self, n: int, wait: float = 5.0) -> bytes:
        """Up to n bytes within `wait` seconds; fewer when the peer closes or nothing more comes."""
        out = b""
        end = time.monotonic() + wait
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while len(out) < n and time.monotonic() < end:
                if not sel.select(timeout=max(0.0, end - time.monotonic())):
                    break
                chunk = self.sock.recv(n - len(out))
                if not chunk:
                    self.eof = True
                    break
                out += chunk
        return out

    eof = False

    def packet(self) -> tuple[dict[str, Any], bytes]:
        head = st.unpack_header(self.read(st.HEADER_LEN))
        body = self.read(head["body_len"])
        assert len(body) == head["body_len"] and hashlib.sha1(body).digest() == head["sha1"]
        return head, body

    def close(self) -> None:
        self.sock.close()


# --- 1-3: the official client, plain and encrypted ------------------------------------------------

def test_plain_official_client_state_notify_subscribe_and_quote_push(tmp_path: Path) -> None:
    with st.StandIn(push_notify=True, lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, **FULL})
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        recs = list(s.connections)
    assert_scenario(result)
    assert result["init_results"] == [[0, ""]]
    assert len(recs) == 1
    rec = recs[0]
    assert_record(rec)
    assert rec["rsa"] is False and rec["encrypted"] is False and rec["aes"] is None
    assert rec["init"]["packetEncAlgo"] == -1  # the client always says "no encryption" explicitly
    assert rec["conn_id"] != 0


def test_rsa_and_aes_cbc_official_client(tmp_path: Path) -> None:
    pem, pem_file = rsa_pem(tmp_path)
    with st.StandIn(rsa_key_pem=pem, aes="cbc", push_notify=True, lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, "rsa_file": pem_file, **FULL})
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        rec = s.connections[0]
    assert_scenario(result)
    assert_record(rec)
    assert rec["rsa"] is True and rec["encrypted"] is True and rec["aes"] == "cbc"
    assert rec["init"]["packetEncAlgo"] == 2
    assert len(rec["aes_cbc_iv"]) == 16 and len(rec["conn_aes_key"]) == 16
    init_in = rec["packets"][0]
    assert init_in["body_len"] % 128 == 0  # RSA blocks of a 1024-bit key
    reply = next(x for x in rec["sent"] if x["proto_id"] == 1001)
    assert reply["body_len"] % 128 == 0 and reply["body_len"] != reply["plain_len"]
    later = [x for x in rec["sent"] if x["proto_id"] != 1001]
    assert later and all(x["body_len"] % 16 == 0 and x["body_len"] > x["plain_len"] for x in later)  # CBC, PKCS#7


def test_rsa_and_ftaes_ecb_official_client_falls_back_without_iv(tmp_path: Path) -> None:
    pem, pem_file = rsa_pem(tmp_path)
    with st.StandIn(rsa_key_pem=pem, aes="ecb", push_notify=True, lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, "rsa_file": pem_file, **FULL})
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        rec = s.connections[0]
    assert_scenario(result)
    assert_record(rec)
    assert rec["rsa"] is True and rec["encrypted"] is True and rec["aes"] == "ecb"
    assert rec["init"]["packetEncAlgo"] == 2 and rec["aes_cbc_iv"] is None  # asked CBC, got no IV
    later = [x for x in rec["sent"] if x["proto_id"] != 1001]
    assert later and all(x["body_len"] == -(-x["plain_len"] // 16) * 16 + 16 for x in later)  # zero-padded + the tail block


# --- 4: known answers against the vendor's functions ----------------------------------------------

def test_known_answers_framing_aes_rsa_match_the_official_client(tmp_path: Path) -> None:
    from Crypto.PublicKey import RSA

    pem, pem_file = rsa_pem(tmp_path)
    key, iv = "0123456789abcdef", "fedcba9876543210"
    ours: dict[str, dict[str, str]] = {"cbc": {}, "ecb": {}}
    for length in AES_LENGTHS:
        plain = bytes((i * 7 + length) % 256 for i in range(length))
        ours["cbc"][str(length)] = st.aes_cbc_encrypt(key.encode(), iv.encode(), plain).hex()
        ours["ecb"][str(length)] = st.ftaes_ecb_encrypt(key.encode(), plain).hex()
    rsa_key = RSA.import_key(pem)
    rsa_plain = [bytes((i * 3 + 5) % 256 for i in range(n)) for n in RSA_LENGTHS]
    rsa_ours = [st.rsa_encrypt(rsa_key, p).hex() for p in rsa_plain]
    result = run_client(tmp_path, "knowns", {"key": key, "iv": iv, "ours": ours, "rsa_file": pem_file, "rsa_ours": rsa_ours})

    # Framing: byte for byte, plain and encrypted.
    assert len(result["headers"]) == 5
    for h in result["headers"]:
        assert h["ret"] == 0
        body = bytes.fromhex(h["body"])
        if "aes" in h:
            wire = st.aes_cbc_encrypt(key.encode(), iv.encode(), body) if h["aes"] == "cbc" else st.ftaes_ecb_encrypt(key.encode(), body)
            mine = st.pack_header(h["proto_id"], h["serial"], len(wire), hashlib.sha1(body).digest(), proto_fmt=h["fmt"]) + wire
        else:
            mine = st.pack_header(h["proto_id"], h["serial"], len(body), hashlib.sha1(body).digest(), proto_fmt=h["fmt"]) + body
        assert mine.hex() == h["packet"], h
        assert st.unpack_header(bytes.fromhex(h["packet"]))["body_len"] == len(bytes.fromhex(h["packet"])) - st.HEADER_LEN
    parsed = result["parsed"]
    mine = st.unpack_header(bytes.fromhex(result["headers"][0]["packet"]))
    assert (parsed["proto_id"], parsed["serial_no"], parsed["body_len"], parsed["sha20"]) == (mine["proto_id"], mine["serial"], mine["body_len"], mine["sha1"].hex())

    # AES, both modes, every length: same ciphertext, and each side decrypts the other's.
    assert len(result["aes"]) == 2 * len(AES_LENGTHS)
    for a in result["aes"]:
        plain, enc = bytes.fromhex(a["plain"]), bytes.fromhex(a["enc"])
        assert a["enc"] == ours[a["mode"]][str(a["length"])], a
        assert a["dec_ours"] == a["plain"]
        back = st.aes_cbc_decrypt(key.encode(), iv.encode(), enc) if a["mode"] == "cbc" else st.ftaes_ecb_decrypt(key.encode(), enc)
        assert back == plain
        if a["mode"] == "ecb":
            assert enc[-16:] == b"\x00" * 15 + bytes([a["length"] % 16])
        else:
            assert len(enc) == (a["length"] // 16 + 1) * 16

    # RSA both ways (padding is random: round trips, not bytes).
    assert [bytes.fromhex(h) for h in result["rsa_ours_decrypted"]] == rsa_plain
    for r in result["rsa_theirs"]:
        enc = bytes.fromhex(r["enc"])
        assert len(enc) == -(-len(bytes.fromhex(r["plain"])) // 100) * 128
        assert st.rsa_decrypt(rsa_key, enc).hex() == r["plain"]


def test_ecb_and_cbc_decrypt_refuse_malformed_bodies() -> None:
    key, iv = b"k" * 16, b"i" * 16
    for bad in (b"", b"x" * 15, b"x" * 17):
        for decrypt in (lambda d: st.aes_cbc_decrypt(key, iv, d), lambda d: st.ftaes_ecb_decrypt(key, d)):
            try:
                decrypt(bad)
            except ValueError:
                continue
            raise AssertionError(f"{len(bad)} bytes decrypted")
    assert st.ftaes_ecb_decrypt(key, st.ftaes_ecb_encrypt(key, b"")) == b""


# --- 5: fault switches --------------------------------------------------------------------------

def test_reject_init_the_client_reports_the_standins_message_and_never_gets_ready(tmp_path: Path) -> None:
    # A rejected InitConnect makes the synchronous constructor retry for ever (every 6 s): the
    # scenario connects asynchronously and bounds get_global_state's wait for the connection.
    with st.StandIn(faults=["reject-init"], lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, "async_connect": True, "connect_timeout": 1})
        recs = list(s.connections)
    assert result["init_results"] and all(r == [-1, st.REJECT_MSG] for r in result["init_results"])
    ret, msg = result["global_state"]
    assert ret != 0 and msg == "Connect timeout"
    assert recs and all(r["ended"] == "server-closed-init-failed" for r in recs)
    assert all([x["proto_id"] for x in r["packets"]] == [1001] for r in recs)


def test_bad_sha1_replies_are_refused_by_the_client(tmp_path: Path) -> None:
    with st.StandIn(faults=["bad-sha1"], push_notify=True, lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, **FULL, "push_wait": 1})
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        rec = s.connections[0]
    assert result["init_results"] == [[0, ""]]  # the InitConnect reply is left intact by this switch
    conn = rec["conn_id"]
    assert result["global_state"] == [-1, f"proto_id:1002 conn_id:{conn} check sha error!"]
    assert result["subscribe"] == [-1, f"proto_id:3001 conn_id:{conn} check sha error!"]
    assert result["notifies"] == [] and result["quotes"] == []  # pushes with a bad SHA-1 are dropped silently
    assert [x["sha1_ok"] for x in rec["sent"] if x["proto_id"] != 1001] and not any(x["sha1_ok"] for x in rec["sent"] if x["proto_id"] != 1001)


def test_bad_sha1_on_the_init_connect_reply_fails_init(tmp_path: Path) -> None:
    with st.StandIn(faults=["bad-sha1-init"], lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, "async_connect": True, "connect_timeout": 1})
    assert result["init_results"][0] == [-1, "proto_id:1001 conn_id:0 check sha error!"]
    assert result["global_state"][0] != 0


def test_split_and_coalesce_still_give_replies_and_pushes(tmp_path: Path) -> None:
    for faults in (["split"], ["coalesce"], ["split", "coalesce"]):
        with st.StandIn(faults=faults, push_notify=True, lifetime=30) as s:
            result = run_client(tmp_path, "client", {"port": s.port, **FULL})
            assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
            rec = s.connections[0]
        assert_scenario(result)
        assert_record(rec)
        assert rec["faults"] == sorted(faults)


def test_split_with_rsa_and_cbc(tmp_path: Path) -> None:
    pem, pem_file = rsa_pem(tmp_path)
    with st.StandIn(rsa_key_pem=pem, faults=["split"], push_notify=True, lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port, "rsa_file": pem_file, **FULL})
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        rec = s.connections[0]
    assert_scenario(result)
    assert rec["aes"] == "cbc" and rec["rsa"] is True


def test_close_mid_request_the_client_sees_a_disconnect(tmp_path: Path) -> None:
    with st.StandIn(faults=["close-mid-request"], lifetime=30) as s:
        result = run_client(tmp_path, "client", {"port": s.port})
        rec = s.connections[0]
    assert result["init_results"][0] == [0, ""]
    assert result["global_state"] == [-1, "Disconnect"]
    assert [p["proto_id"] for p in rec["packets"]] == [1001, 1002]
    assert [x["proto_id"] for x in rec["sent"]] == [1001] and rec["ended"] == "server-closed-fault"


def test_delay_reply_the_client_times_out_after_12_seconds(tmp_path: Path) -> None:
    # The one slow scenario (about 13 s): the stand-in holds replies 13 s, the client gives up at 12.
    with st.StandIn(faults=["delay-reply"], lifetime=40) as s:
        result = run_client(tmp_path, "client", {"port": s.port})
        rec = s.connections[0]
    assert result["init_results"] == [[0, ""]]  # InitConnect is answered at once
    assert result["global_state"] == [-1, "PacketErr.Timeout"]
    assert [p["proto_id"] for p in rec["packets"]][:2] == [1001, 1002]


def test_raw_oversized_sends_a_header_claiming_0x7fffffff_bytes_then_nothing() -> None:
    with st.StandIn(faults=["oversized"], lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect(serial=5)
            head = st.unpack_header(raw.read(st.HEADER_LEN))
            more = raw.read(1, wait=0.5)
        finally:
            raw.close()
        assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
        rec = s.connections[0]
    assert head["magic"] == b"FT" and head["proto_id"] == 1001 and head["serial"] == 5
    assert head["body_len"] == 0x7FFFFFFF
    assert more == b"" and not raw.eof  # nothing follows, and the socket stays open
    assert rec["ended"] == "client-closed"


def test_raw_garbage_sends_non_ft_bytes_then_closes() -> None:
    with st.StandIn(faults=["garbage"], lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect()
            data = raw.read(4096)
        finally:
            raw.close()
    assert len(data) == 64 and data[:2] != b"FT" and data[:1] != b"F"
    assert raw.eof


def test_raw_silent_answers_nothing_but_records_the_request() -> None:
    with st.StandIn(faults=["silent"], lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect(serial=3)
            data = raw.read(1, wait=1.0)
            assert s.wait(lambda s: s.connections and s.connections[0]["packets"])
        finally:
            raw.close()
        rec = s.connections[0]
    assert data == b"" and not raw.eof
    assert rec["packets"][0]["proto_id"] == 1001 and rec["packets"][0]["serial"] == 3 and rec["sent"] == []


def test_raw_close_mid_request_closes_without_a_reply() -> None:
    with st.StandIn(faults=["close-mid-request"], lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect()
            head, _ = raw.packet()
            req = st.PB["GetGlobalState"].Request()
            req.c2s.userID = 0
            raw.send(1002, 2, req)
            data = raw.read(1)
        finally:
            raw.close()
    assert head["proto_id"] == 1001
    assert data == b"" and raw.eof


def test_raw_plain_protocol_unknown_ids_pushes_and_conn_ids() -> None:
    with st.StandIn(lifetime=20) as s:
        conn_ids = []
        for _ in range(2):
            raw = Raw(s.port)
            try:
                raw.init_connect(serial=10)
                head, body = raw.packet()
                rsp = st.PB["InitConnect"].Response.FromString(body)
                assert (head["proto_id"], head["serial"], rsp.retType) == (1001, 10, 0)
                assert rsp.s2c.keepAliveInterval == st.KEEP_ALIVE_INTERVAL and len(rsp.s2c.connAESKey) == 16
                assert not rsp.s2c.HasField("aesCBCiv")  # no encryption asked
                conn_ids.append(rsp.s2c.connID)

                raw.send(9999, 11, body=b"")  # an empty body and an unknown protoID
                head, body = raw.packet()
                err = st.PB["InitConnect"].Response.FromString(body)
                assert (head["proto_id"], head["serial"], err.retType) == (9999, 11, -1) and "9999" in err.retMsg

                ka = st.PB["KeepAlive"].Request()
                ka.c2s.time = 1
                raw.send(1004, 12, ka)
                head, body = raw.packet()
                assert (head["proto_id"], head["serial"]) == (1004, 12) and st.PB["KeepAlive"].Response.FromString(body).s2c.time > 0

                sub = st.PB["Qot_Sub"].Request()
                sec = sub.c2s.securityList.add()
                sec.market, sec.code = 11, "AAPL"
                sub.c2s.subTypeList.append(1)
                sub.c2s.isSubOrUnSub = True
                raw.send(3001, 13, sub)
                head, body = raw.packet()
                assert (head["proto_id"], head["serial"], st.PB["Qot_Sub"].Response.FromString(body).retType) == (3001, 13, 0)
                head, body = raw.packet()
                push = st.PB["Qot_UpdateBasicQot"].Response.FromString(body)
                assert (head["proto_id"], head["serial"]) == (3005, 1)  # pushes: the server's own numbering from 1
                assert [(q.security.market, q.security.code) for q in push.s2c.basicQotList] == [(11, "AAPL")]
            finally:
                raw.close()
        assert s.wait(lambda s: len(s.connections) == 2 and all(c["ended"] for c in s.connections))
        recs = list(s.connections)
    assert len(set(conn_ids)) == 2 and all(conn_ids)
    assert [r["conn_id"] for r in recs] == conn_ids
    assert recs[0]["init"]["programmingLanguage"] == "C++" and recs[0]["init"]["clientID"] == "raw"
    assert [p["proto_id"] for p in recs[0]["packets"]] == [1001, 9999, 1004, 3001]


def test_raw_qot_sub_faults_refuse_ignore_or_leave_out_the_push() -> None:
    """reject-sub answers Qot_Sub with retType -1 and a retMsg; ignore-sub answers nothing (but
    records the request); no-push subscribes without a push. Everything else is answered."""
    seen = {}
    for fault in ("reject-sub", "ignore-sub", "no-push"):
        with st.StandIn(faults=[fault], lifetime=20) as s:
            raw = Raw(s.port)
            try:
                raw.init_connect()
                raw.packet()
                sub = st.PB["Qot_Sub"].Request()
                sec = sub.c2s.securityList.add()
                sec.market, sec.code = 1, "00700"
                sub.c2s.subTypeList.append(1)
                sub.c2s.isSubOrUnSub = True
                raw.send(3001, 5, sub)
                first = raw.packet() if fault != "ignore-sub" else None
                after = raw.read(1, wait=1.0)  # a push would be here
                ka = st.PB["KeepAlive"].Request()
                ka.c2s.time = 1
                raw.send(1004, 6, ka)
                alive, _ = raw.packet()
            finally:
                raw.close()
            assert s.wait(lambda s: s.connections and s.connections[0]["ended"])
            seen[fault] = (first, after, alive["proto_id"], s.connections[0]["packets"][1].get("qot_sub"))
    (head, body), after, alive, rec = seen["reject-sub"]
    rsp = st.PB["Qot_Sub"].Response.FromString(body)
    assert (head["proto_id"], head["serial"], rsp.retType, rsp.retMsg) == (3001, 5, -1, st.SUB_REJECT_MSG) and after == b""
    assert seen["ignore-sub"][0] is None and seen["ignore-sub"][1] == b"" and seen["ignore-sub"][3]["securities"] == [[1, "00700"]]
    (head, body), after, alive, rec = seen["no-push"]
    assert st.PB["Qot_Sub"].Response.FromString(body).retType == 0 and after == b""
    assert all(v[2] == 1004 for v in seen.values())


def test_raw_push_notify_follows_the_init_connect_reply_and_every_global_state_reply() -> None:
    with st.StandIn(push_notify=True, lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.init_connect(serial=40)
            got = [raw.packet()]
            got.append(raw.packet())
            req = st.PB["GetGlobalState"].Request()
            req.c2s.userID = 0
            raw.send(1002, 41, req)
            got += [raw.packet(), raw.packet()]
        finally:
            raw.close()
    assert [(h["proto_id"], h["serial"]) for h, _ in got] == [(1001, 40), (1003, 1), (1002, 41), (1003, 2)]
    for h, body in got:
        if h["proto_id"] == 1003:
            note = st.PB["Notify"].Response.FromString(body)
            assert (note.retType, note.s2c.type, note.s2c.event.desc) == (0, 1, st.NOTIFY_DESC)
    state = st.PB["GetGlobalState"].Response.FromString(got[2][1])
    assert state.retType == 0 and state.s2c.serverBuildNo == st.SERVER_BUILD_NO and state.s2c.serverVer == st.SERVER_VER
    assert state.s2c.connID == st.PB["InitConnect"].Response.FromString(got[0][1]).s2c.connID


def test_raw_first_packet_must_be_init_connect_and_bad_request_sha1_closes() -> None:
    with st.StandIn(lifetime=20) as s:
        raw = Raw(s.port)
        try:
            raw.send(1002, 1, body=b"")
            head, body = raw.packet()
            assert raw.read(1) == b"" and raw.eof
        finally:
            raw.close()
        raw = Raw(s.port)
        try:
            raw.init_connect()
            raw.packet()
            raw.sock.sendall(st.pack_header(1004, 2, 3, b"\x00" * 20) + b"abc")  # a body that does not match its SHA-1
            closed = raw.read(1) == b"" and raw.eof
        finally:
            raw.close()
        assert s.wait(lambda s: len(s.connections) == 2 and all(c["ended"] for c in s.connections))
        recs = list(s.connections)
    rsp = st.PB["InitConnect"].Response.FromString(body)
    assert (head["proto_id"], rsp.retType) == (1002, -1) and "InitConnect" in rsp.retMsg
    assert closed and recs[1]["ended"] == "server-closed-protocol-error" and recs[1]["packets"][-1]["sha1_ok"] is False


def test_loopback_only() -> None:
    for host in ("0.0.0.0", "::", "example.com"):
        try:
            st.StandIn(host=host, lifetime=1)
        except ValueError:
            continue
        raise AssertionError(f"bound {host}")
    with st.StandIn(host="::1", lifetime=5) as s:
        with socket.create_connection(("::1", s.port), timeout=5):
            pass
    assert s.host == "::1"


# --- 6: the command line ------------------------------------------------------------------------

def test_cli_port_line_official_client_and_exit_after_max_conns(tmp_path: Path) -> None:
    log = tmp_path / "standin.jsonl"
    proc = subprocess.Popen([sys.executable, str(STANDIN), "--port", "0", "--lifetime", "20", "--max-conns", "1", "--push-notify",
                             "--log", str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as sel:
            assert proc.stdout is not None
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=20), "no port line"
            first = proc.stdout.readline()
        assert first.startswith("port=") and first.endswith("\n")
        port = int(first[len("port="):])
        result = run_client(tmp_path, "client", {"port": port, **FULL})
        rc = proc.wait(timeout=20)
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_scenario(result)
    assert rc == 0 and rest == ""  # exactly one stdout line
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1
    assert_record(records[0])


def test_cli_rsa_key_file_ecb_and_a_fault(tmp_path: Path) -> None:
    _, pem_file = rsa_pem(tmp_path)
    log = tmp_path / "standin.jsonl"
    proc = subprocess.Popen([sys.executable, str(STANDIN), "--rsa-key", pem_file, "--aes", "ecb", "--fault", "split", "--push-notify",
                             "--max-conns", "1", "--lifetime", "20", "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip().split("=", 1)[1])
        result = run_client(tmp_path, "client", {"port": port, "rsa_file": pem_file, **FULL})
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_scenario(result)
    assert rc == 0
    (rec,) = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert_record(rec)
    assert (rec["rsa"], rec["aes"], rec["faults"]) == (True, "ecb", ["split"])


def test_cli_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(STANDIN), "--host", "0.0.0.0", "--lifetime", "2"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == "" and "loopback" in proc.stderr
    proc = subprocess.run([sys.executable, str(STANDIN), "--fault", "nonsense", "--lifetime", "2"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stdout == ""


def test_cli_says_it_is_a_test_double() -> None:
    """Users run it in their own CI: its help and its first line say it is not OpenD."""
    help_text = subprocess.run([sys.executable, str(STANDIN), "--help"], capture_output=True, text=True, timeout=30)
    assert help_text.returncode == 0 and "a test double, not OpenD" in help_text.stdout
    proc = subprocess.run([sys.executable, str(STANDIN), "--port", "0", "--lifetime", "0.5"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout.startswith("port=") and proc.stdout.count("\n") == 1
    assert proc.stderr.splitlines()[0].startswith("stand-in OpenD (a test double, not OpenD) on 127.0.0.1:")


def test_cli_lifetime_ends_the_server_with_a_client_still_connected(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(STANDIN), "--lifetime", "2", "--fault", "silent"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip().split("=", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            rc = proc.wait(timeout=20)
            sock.settimeout(5)
            assert sock.recv(1) == b""  # the server closed the connection on its way out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0


if __name__ == "__main__":
    _child_main(sys.argv[1:])
