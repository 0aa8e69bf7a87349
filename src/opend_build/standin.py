"""A stand-in OpenD: a test double, not OpenD. A loopback TCP server speaking the OpenD wire protocol,
for tests and CI (yours too): no account, no market data, scripted answers.

It is trusted because the vendor's own Python client (futu-api 10.11.7108) passes its scenarios
(tests/test_standin.py); the open C++ channel is then pointed at the same server.

The wire (facts from the vendor's public client and protocol guide, written down in our own words):
every packet is a 44-byte little-endian header "<1s1sI2B2I20s8s" - b"F", b"T", protoID u32,
format u8 (0 = protobuf), protoVer u8, serial u32, bodyLen u32 (bytes on the wire, after
encryption), SHA-1 of the plaintext body, 8 zero bytes - then the body, a proto2 Request or
Response. InitConnect (1001) comes first; with an RSA key its body travels RSA-encrypted
(PKCS#1 v1.5, 100-byte plaintext chunks, one key-sized block each); after it, with encryption on,
every body both ways is AES-128 with the connAESKey: CBC from aesCBCiv (fresh from the IV for every
packet, PKCS#7) when the reply carries one, else "FTAES-ECB" (zero padding, then a 16-byte
plaintext tail whose last byte is the plaintext length mod 16).

Script use (the C++ tests rely on this exactly):
    python -m opend_build.standin [--host 127.0.0.1] [--port 0] [--rsa-key PEM_FILE]
        [--aes cbc|ecb] [--fault NAME]... [--push-notify] [--push-burst M] [--max-conns N] [--lifetime S]
        [--log FILE]
prints one line on stderr saying it is a test double, and exactly one line "port=<N>" on stdout; serves until --max-conns connections (default 4)
have come and gone or --lifetime seconds (default 60) have passed, then exits 0. --log FILE
gets one JSON object per line for every connection when it ends.

Python use:
    with StandIn(rsa_key_pem=None, aes="cbc", faults=(), push_notify=False, lifetime=60) as s:
        s.host, s.port, s.connections   # one dict per connection, filled while it runs

Qot_Sub faults: reject-sub answers it with retType -1 and SUB_REJECT_MSG (an account without the
quote right), ignore-sub never answers it (an OpenD whose quote server is not ready; the request is
still recorded), no-push answers it but pushes nothing (a closed market).

push_burst=M (--push-burst M; default 0, off) is for benchmarks: after every Qot_Sub reply that
subscribes, M more Qot_UpdateBasicQot pushes follow as fast as the server can write them (one body
encoded and encrypted once, M headers with increasing serials, written in large chunks). The
connection's record gets "bursts": [{"count", "bytes", "encode_s", "send_s"}]; these pushes are
not listed one by one in "sent".

The protobuf messages are the vendor's generated classes (futu-api's futu/common/pb), imported as
top-level modules so that importing this file never imports the futu package itself (which would
start its logger and write log files under HOME).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import ipaddress
import json
import secrets
import socket
import string
import struct
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from Crypto.Cipher import AES, PKCS1_v1_5
from Crypto.PublicKey import RSA

HEADER_FMT = "<1s1sI2B2I20s8s"
HEADER_LEN = struct.calcsize(HEADER_FMT)  # 44
MAX_BODY = 16 * 1024 * 1024  # a larger bodyLen from a client is a protocol error
OVERSIZED_LEN = 0x7FFFFFFF

INIT_CONNECT, GET_GLOBAL_STATE, NOTIFY, KEEP_ALIVE = 1001, 1002, 1003, 1004
QOT_SUB, QOT_UPDATE_BASIC_QOT = 3001, 3005

ENC_FTAES_ECB, ENC_NONE, ENC_AES_ECB, ENC_AES_CBC = 0, -1, 1, 2  # Common.PacketEncAlgo

FAULTS = ("split", "coalesce", "bad-sha1", "bad-sha1-init", "reject-init", "delay-reply", "silent",
          "close-mid-request", "oversized", "garbage", "reject-sub", "ignore-sub", "no-push")
DELAY_SECONDS = 13.0  # longer than the clients' 12 s reply timeout
REJECT_MSG = "stand-in: InitConnect rejected (fault reject-init)"
# Qot_Sub faults, as an OpenD without quote rights (reject-sub), without its quote server
# (ignore-sub: no reply at all) or with the market closed (no-push: subscribed, nothing pushed)
SUB_REJECT_MSG = "stand-in: no quote right for this security (fault reject-sub)"
NOTIFY_DESC = "stand-in notify"
LABEL = "stand-in OpenD (a test double, not OpenD)"

SERVER_VER = 1001
SERVER_BUILD_NO = 7108
LOGIN_USER_ID = 20261201
KEEP_ALIVE_INTERVAL = 10
MARKET_STATES = {"marketHK": 5, "marketUS": 11, "marketSH": 5, "marketSZ": 5, "marketHKFuture": 15}  # Afternoon, AfterHoursEnd, ... (QotMarketState)


# --- the vendor's generated messages ----------------------------------------------------------

CLIENT = "futu-api"  # the official client's distribution, whose generated messages the stand-in encodes with


def _load_pb() -> dict[str, Any]:
    """The client's generated modules, found through its distribution's file list: its package's
    __init__ never runs."""
    try:
        dist = importlib.metadata.distribution(CLIENT)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"{CLIENT} is needed (pip install {CLIENT}==10.11.7108): the stand-in encodes with its generated messages") from None
    found = [f for f in dist.files or () if f.name == "InitConnect_pb2.py"]
    if not found:
        raise ImportError(f"{CLIENT} carries no InitConnect_pb2.py: reinstall it (pip install --force-reinstall {CLIENT}==10.11.7108)")
    pb_dir = str(dist.locate_file(found[0].parent))
    if pb_dir not in sys.path:
        sys.path.append(pb_dir)  # the generated files import each other by top-level name
    names = ("InitConnect", "GetGlobalState", "KeepAlive", "Notify", "Qot_Sub", "Qot_UpdateBasicQot", "Common")
    return {n: __import__(n + "_pb2") for n in names}


PB = _load_pb()


# --- framing and crypto (our own; tests compare them with the vendor client's functions) ----------

def pack_header(proto_id: int, serial: int, body_len: int, sha1: bytes, proto_fmt: int = 0, proto_ver: int = 0) -> bytes:
    return struct.pack(HEADER_FMT, b"F", b"T", proto_id, proto_fmt, proto_ver, serial, body_len, sha1, b"\x00" * 8)


def unpack_header(data: bytes) -> dict[str, Any]:
    h1, h2, proto_id, fmt, ver, serial, body_len, sha1, reserved = struct.unpack(HEADER_FMT, data[:HEADER_LEN])
    return {"magic": h1 + h2, "proto_id": proto_id, "proto_fmt": fmt, "proto_ver": ver, "serial": serial,
            "body_len": body_len, "sha1": sha1, "reserved": reserved}


def pack_packet(proto_id: int, serial: int, plain: bytes, wire_body: bytes | None = None, proto_ver: int = 0) -> bytes:
    """Header (SHA-1 of the plaintext, bodyLen of what travels) followed by the body on the wire."""
    body = plain if wire_body is None else wire_body
    return pack_header(proto_id, serial, len(body), hashlib.sha1(plain).digest(), proto_ver=proto_ver) + body


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    pad = 16 - len(data) % 16  # PKCS#7: always 1..16 bytes
    return AES.new(key, AES.MODE_CBC, iv=iv).encrypt(data + bytes([pad]) * pad)


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    if not data or len(data) % 16:
        raise ValueError(f"AES-CBC body of {len(data)} bytes is not a positive multiple of 16")
    plain = AES.new(key, AES.MODE_CBC, iv=iv).decrypt(data)
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad PKCS#7 padding")
    return plain[:-pad]


def ftaes_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    tail = len(data) % 16
    padded = data + b"\x00" * ((16 - tail) % 16)
    return AES.new(key, AES.MODE_ECB).encrypt(padded) + b"\x00" * 15 + bytes([tail])


def ftaes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    if len(data) < 16 or len(data) % 16:
        raise ValueError(f"FTAES-ECB body of {len(data)} bytes is not a positive multiple of 16")
    tail = data[-1]
    if tail > 15:
        raise ValueError(f"FTAES-ECB tail byte {tail} is not a length mod 16")
    plain = AES.new(key, AES.MODE_ECB).decrypt(data[:-16])
    if tail:
        if not plain:
            raise ValueError("FTAES-ECB tail says data but there is no block")
        plain = plain[: len(plain) - (16 - tail)]
    return plain


RSA_CHUNK = 100  # plaintext bytes per block, as the vendor's clients do for 1024-bit keys


def rsa_encrypt(key: RSA.RsaKey, data: bytes) -> bytes:
    cipher = PKCS1_v1_5.new(key.publickey())
    return b"".join(cipher.encrypt(data[i:i + RSA_CHUNK]) for i in range(0, len(data), RSA_CHUNK))


def rsa_decrypt(key: RSA.RsaKey, data: bytes) -> bytes:
    size = key.size_in_bytes()
    if not data or len(data) % size:
        raise ValueError(f"RSA body of {len(data)} bytes is not a multiple of {size}")
    cipher = PKCS1_v1_5.new(key)
    sentinel = object()
    out = []
    for i in range(0, len(data), size):
        part = cipher.decrypt(data[i:i + size], sentinel)
        if part is sentinel:
            raise ValueError("RSA block does not decrypt (PKCS#1 v1.5)")
        out.append(part)
    return b"".join(out)


def _random_chars(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


# --- one connection ------------------------------------------------------------------------------

class _Conn:
    def __init__(self, server: StandIn, sock: socket.socket, peer: Any, index: int, conn_id: int) -> None:
        self.server = server
        self.sock = sock
        self.buf = bytearray()
        self.aes_key: bytes | None = None
        self.aes_iv: bytes | None = None  # None with a key: FTAES-ECB
        self.encrypted = False  # AES after InitConnect
        self.rsa_reply = False
        self.push_serial = 0
        self.pending_burst: bytes | None = None
        self.record: dict[str, Any] = {
            "index": index, "peer": f"{peer[0]}:{peer[1]}", "conn_id": conn_id, "faults": sorted(server.faults),
            "packets": [], "init": None, "rsa": False, "encrypted": False, "aes": None,
            "sent": [], "errors": [], "ended": None,
        }
        if server.push_burst:
            self.record["bursts"] = []

    # sending
    def _wire(self, plain: bytes) -> bytes:
        if not self.encrypted:
            return plain
        assert self.aes_key is not None
        if self.aes_iv is not None:
            return aes_cbc_encrypt(self.aes_key, self.aes_iv, plain)
        return ftaes_ecb_encrypt(self.aes_key, plain)

    def packet(self, proto_id: int, serial: int, msg: Any, kind: str, proto_ver: int = 0) -> bytes:
        plain = msg.SerializeToString()
        if proto_id == INIT_CONNECT:
            wire = rsa_encrypt(self.server.rsa_key, plain) if self.rsa_reply and self.server.rsa_key else plain
        else:
            wire = self._wire(plain)
        sha1 = hashlib.sha1(plain).digest()
        faults = self.server.faults
        bad = ("bad-sha1-init" in faults) if proto_id == INIT_CONNECT else ("bad-sha1" in faults)
        if bad:
            sha1 = bytes(b ^ 0xFF for b in sha1)
        self.record["sent"].append({"proto_id": proto_id, "serial": serial, "kind": kind, "body_len": len(wire),
                                    "plain_len": len(plain), "sha1_ok": not bad})
        return pack_header(proto_id, serial, len(wire), sha1, proto_ver=proto_ver) + wire

    def send(self, *packets: bytes) -> None:
        if "split" in self.server.faults:
            for data in packets:
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
        elif "coalesce" in self.server.faults:
            self.sock.sendall(b"".join(packets))
        else:
            for data in packets:
                self.sock.sendall(data)

    def push(self, proto_id: int, msg: Any) -> bytes:
        self.push_serial += 1  # pushes carry the server's own numbering, from 1 per connection
        return self.packet(proto_id, self.push_serial, msg, "push")

    # receiving
    def serve(self) -> None:
        try:
            self._serve()
        except OSError as e:
            self.record["errors"].append(f"socket: {e}")
            self.record["ended"] = self.record["ended"] or "socket-error"
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.server._conn_done(self)

    def _recv_some(self) -> bool:
        """Reads what is there; False when the peer has closed or the server stops."""
        while not self.server._stopping():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.record["ended"] = "client-closed"
                return False
            self.buf.extend(data)
            return True
        self.record["ended"] = "server-stopped"
        return False

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        faults = self.server.faults
        first = True
        while True:
            while len(self.buf) < HEADER_LEN or len(self.buf) < HEADER_LEN + unpack_header(self.buf)["body_len"]:
                if len(self.buf) >= 2 and bytes(self.buf[:2]) != b"FT":
                    self.record["errors"].append(f"not an OpenD header: {bytes(self.buf[:8]).hex()}")
                    self.record["ended"] = "server-closed-protocol-error"
                    return
                if len(self.buf) >= HEADER_LEN and unpack_header(self.buf)["body_len"] > MAX_BODY:
                    self.record["errors"].append(f"bodyLen {unpack_header(self.buf)['body_len']} over the cap")
                    self.record["ended"] = "server-closed-protocol-error"
                    return
                if not self._recv_some():
                    return
            head = unpack_header(self.buf)
            wire = bytes(self.buf[HEADER_LEN:HEADER_LEN + head["body_len"]])
            del self.buf[:HEADER_LEN + head["body_len"]]
            entry = {"proto_id": head["proto_id"], "serial": head["serial"], "proto_fmt": head["proto_fmt"],
                     "proto_ver": head["proto_ver"], "body_len": head["body_len"], "reserved_zero": head["reserved"] == b"\x00" * 8}
            self.record["packets"].append(entry)

            if "silent" in faults:
                continue
            if first and "garbage" in faults:
                junk = bytes([0x00]) + secrets.token_bytes(63)  # never starts with "F"
                self.sock.sendall(junk)
                self.record["sent"].append({"kind": "garbage", "bytes": len(junk)})
                self.record["ended"] = "server-closed-fault"
                return
            if first and "oversized" in faults:
                self.sock.sendall(pack_header(head["proto_id"], head["serial"], OVERSIZED_LEN, b"\x00" * 20, proto_ver=head["proto_ver"]))
                self.record["sent"].append({"kind": "oversized", "proto_id": head["proto_id"], "serial": head["serial"], "body_len": OVERSIZED_LEN})
                while self._recv_some():  # then nothing, until the client leaves
                    self.buf.clear()
                return
            if first:
                first = False
                if not self._init_connect(head, wire, entry):
                    return
                continue
            if "close-mid-request" in faults:
                self.record["ended"] = "server-closed-fault"
                return

            plain = self._decrypt(wire, entry)
            if plain is None or hashlib.sha1(plain).digest() != head["sha1"]:
                entry["sha1_ok"] = False
                self.record["errors"].append(f"protoID {head['proto_id']} serial {head['serial']}: body does not match its SHA-1")
                self.record["ended"] = "server-closed-protocol-error"
                return
            entry["sha1_ok"] = True
            packets = self._answer(head, plain, entry)
            if "delay-reply" in faults:
                if self.server._stop.wait(DELAY_SECONDS):
                    self.record["ended"] = "server-stopped"
                    return
            self.send(*packets)
            if self.pending_burst is not None:
                if not self._send_burst():
                    return

    def _prepare_burst(self, securities: list[tuple[int, str]]) -> None:
        """Encodes M pushes of one Qot_UpdateBasicQot body: encrypted once (the per-packet AES
        state is the same for every packet), only the serial differs between the headers."""
        t0 = time.perf_counter()
        m = self.server.push_burst
        plain = self._basic_qot(securities).SerializeToString()
        wire = self._wire(plain)
        sha1 = hashlib.sha1(plain).digest()
        first = self.push_serial + 1
        self.push_serial += m
        header = struct.Struct(HEADER_FMT)
        out = bytearray()
        for serial in range(first, first + m):
            out += header.pack(b"F", b"T", QOT_UPDATE_BASIC_QOT, 0, 0, serial, len(wire), sha1, b"\x00" * 8)
            out += wire
        self.pending_burst = bytes(out)
        self.record["bursts"].append({"count": m, "first_serial": first, "bytes": len(out), "body_len": len(wire),
                                      "encode_s": time.perf_counter() - t0, "send_s": None})

    def _send_burst(self) -> bool:
        """Writes the prepared burst in 256 KiB chunks; False when the server stops meanwhile."""
        data, self.pending_burst = self.pending_burst or b"", None
        chunk = 1 << 18
        view = memoryview(data)
        t0 = time.perf_counter()
        self.sock.settimeout(30.0)  # a slow reader may take a while per chunk; never for ever
        try:
            for i in range(0, len(data), chunk):
                if self.server._stopping():
                    self.record["ended"] = "server-stopped"
                    return False
                self.sock.sendall(view[i:i + chunk])
        finally:
            self.sock.settimeout(0.2)
        self.record["bursts"][-1]["send_s"] = time.perf_counter() - t0
        return True

    def _decrypt(self, wire: bytes, entry: dict[str, Any]) -> bytes | None:
        if not self.encrypted:
            return wire
        assert self.aes_key is not None
        try:
            if self.aes_iv is not None:
                return aes_cbc_decrypt(self.aes_key, self.aes_iv, wire)
            return ftaes_ecb_decrypt(self.aes_key, wire)
        except ValueError as e:
            entry["decrypt_error"] = str(e)
            return None

    def _init_connect(self, head: dict[str, Any], wire: bytes, entry: dict[str, Any]) -> bool:
        server = self.server
        ic = PB["InitConnect"]
        rsp = ic.Response()

        def fail(msg: str, plain_reply: bool = True) -> bool:
            self.record["errors"].append(msg)
            rsp.retType, rsp.retMsg = -1, msg
            if plain_reply:
                self.rsa_reply = False
            self.send(self.packet(head["proto_id"], head["serial"], rsp, "reply", head["proto_ver"]))
            self.record["ended"] = "server-closed-init-failed"
            return False

        if head["proto_id"] != INIT_CONNECT:
            return fail(f"the first packet must be InitConnect ({INIT_CONNECT}), not {head['proto_id']}")
        plain: bytes | None = None
        if server.rsa_key is not None:
            try:
                candidate = rsa_decrypt(server.rsa_key, wire)
                if hashlib.sha1(candidate).digest() == head["sha1"]:
                    plain = candidate
                    self.record["rsa"] = True
            except ValueError:
                pass
        if plain is None:
            if hashlib.sha1(wire).digest() != head["sha1"]:
                entry["sha1_ok"] = False
                return fail("InitConnect body matches its SHA-1 neither plain nor RSA-decrypted")
            plain = wire
        entry["sha1_ok"] = True
        req = ic.Request()
        try:
            req.ParseFromString(plain)
        except Exception as e:  # protobuf's DecodeError, or missing required fields
            return fail(f"InitConnect request does not parse: {e}")
        c2s = req.c2s
        fields = ("clientVer", "clientID", "recvNotify", "packetEncAlgo", "pushProtoFmt", "programmingLanguage", "aiType")
        self.record["init"] = {f: (getattr(c2s, f) if c2s.HasField(f) else None) for f in fields}

        algo = c2s.packetEncAlgo if c2s.HasField("packetEncAlgo") else (ENC_FTAES_ECB if self.record["rsa"] else ENC_NONE)
        want = algo != ENC_NONE
        # The client RSA-decrypts the reply only when it asked for encryption.
        self.rsa_reply = self.record["rsa"] and want
        if want and not self.record["rsa"]:
            return fail(f"encryption asked (packetEncAlgo {algo}) but the InitConnect was not RSA-encrypted with the stand-in's key")
        if "reject-init" in server.faults:
            return fail(REJECT_MSG, plain_reply=False)

        s2c = rsp.s2c
        rsp.retType = 0
        s2c.serverVer = SERVER_VER
        s2c.loginUserID = LOGIN_USER_ID
        s2c.connID = self.record["conn_id"]
        key = _random_chars(16)
        s2c.connAESKey = key
        s2c.keepAliveInterval = KEEP_ALIVE_INTERVAL
        mode = None
        if want:
            mode = "cbc" if algo == ENC_AES_CBC and server.aes == "cbc" else "ecb"
            if mode == "cbc":
                iv = _random_chars(16)
                s2c.aesCBCiv = iv
                self.aes_iv = iv.encode()
        packets = [self.packet(INIT_CONNECT, head["serial"], rsp, "reply", head["proto_ver"])]
        self.record["conn_aes_key"] = key
        self.record["aes_cbc_iv"] = s2c.aesCBCiv if s2c.HasField("aesCBCiv") else None
        # Everything after the reply is encrypted, pushes included.
        self.aes_key = key.encode()
        self.encrypted = want
        self.record["encrypted"] = want
        self.record["aes"] = mode
        if server.push_notify:
            packets.append(self.push(NOTIFY, self._notify()))
        self.send(*packets)
        return True

    def _notify(self) -> Any:
        msg = PB["Notify"].Response()
        msg.retType = 0
        msg.s2c.type = 1  # NotifyType_GtwEvent
        msg.s2c.event.eventType = 0  # GtwEventType_None
        msg.s2c.event.desc = NOTIFY_DESC
        return msg

    def _answer(self, head: dict[str, Any], plain: bytes, entry: dict[str, Any]) -> list[bytes]:
        pid, serial, ver = head["proto_id"], head["serial"], head["proto_ver"]
        if pid == GET_GLOBAL_STATE:
            rsp = PB["GetGlobalState"].Response()
            rsp.retType = 0
            s2c = rsp.s2c
            for name, value in MARKET_STATES.items():
                setattr(s2c, name, value)
            s2c.qotLogined = True
            s2c.trdLogined = True
            s2c.serverVer = SERVER_VER
            s2c.serverBuildNo = SERVER_BUILD_NO
            s2c.time = int(time.time())
            s2c.localTime = time.time()
            s2c.connID = self.record["conn_id"]
            out = [self.packet(pid, serial, rsp, "reply", ver)]
            if self.server.push_notify:
                out.append(self.push(NOTIFY, self._notify()))
            return out
        if pid == KEEP_ALIVE:
            rsp = PB["KeepAlive"].Response()
            rsp.retType = 0
            rsp.s2c.time = int(time.time())
            return [self.packet(pid, serial, rsp, "reply", ver)]
        if pid == QOT_SUB:
            req = PB["Qot_Sub"].Request()
            try:
                req.ParseFromString(plain)
            except Exception as e:
                return [self._error(pid, serial, ver, f"Qot_Sub request does not parse: {e}")]
            c2s = req.c2s
            securities = [(s.market, s.code) for s in c2s.securityList]
            entry["qot_sub"] = {"securities": [list(s) for s in securities], "subTypes": list(c2s.subTypeList),
                                "isSubOrUnSub": c2s.isSubOrUnSub}
            if "ignore-sub" in self.server.faults:
                return []
            if "reject-sub" in self.server.faults:
                return [self._error(pid, serial, ver, SUB_REJECT_MSG)]
            rsp = PB["Qot_Sub"].Response()
            rsp.retType = 0
            rsp.s2c.SetInParent()
            out = [self.packet(pid, serial, rsp, "reply", ver)]
            if c2s.isSubOrUnSub and securities and "no-push" not in self.server.faults:
                out.append(self.push(QOT_UPDATE_BASIC_QOT, self._basic_qot(securities)))
                if self.server.push_burst:
                    self._prepare_burst(securities)  # before the reply goes out: encoding is not in the clients' window
            return out
        return [self._error(pid, serial, ver, f"stand-in: protoID {pid} is not supported")]

    def _error(self, pid: int, serial: int, ver: int, msg: str) -> bytes:
        # Every Response has retType = 1, retMsg = 2: the InitConnect one encodes any of them.
        rsp = PB["InitConnect"].Response()
        rsp.retType, rsp.retMsg = -1, msg
        return self.packet(pid, serial, rsp, "reply", ver)

    @staticmethod
    def _basic_qot(securities: Iterable[tuple[int, str]]) -> Any:
        msg = PB["Qot_UpdateBasicQot"].Response()
        msg.retType = 0
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        for market, code in securities:
            q = msg.s2c.basicQotList.add()
            q.security.market, q.security.code = market, code
            q.name = "STAND-IN " + code
            q.isSuspended = False
            q.listTime = "2004-06-16"
            q.priceSpread = 0.2
            q.updateTime = now
            q.highPrice, q.openPrice, q.lowPrice, q.curPrice, q.lastClosePrice = 401.0, 395.0, 390.0, 400.2, 398.0
            q.volume = 123456
            q.turnover = 49382716.5
            q.turnoverRate = 0.12
            q.amplitude = 2.76
        return msg


# --- the server ----------------------------------------------------------------------------------

def check_loopback(host: str) -> str:
    """The address to bind: loopback only (127.0.0.0/8, ::1, or "localhost" for 127.0.0.1)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as e:
        raise ValueError(f"--host must be a loopback address, not {host!r}") from e
    if not ip.is_loopback:
        raise ValueError(f"--host must be a loopback address, not {host!r}")
    return str(ip)


class StandIn:
    """The stand-in in a background thread; `with StandIn(...) as s:` serves until the block ends,
    `lifetime` seconds pass, or `max_conns` connections (None: no limit) have come and gone."""

    def __init__(self, rsa_key_pem: str | bytes | None = None, aes: str = "cbc", faults: Iterable[str] = (), push_notify: bool = False,
                 lifetime: float = 60, host: str = "127.0.0.1", port: int = 0, max_conns: int | None = None, log: str | None = None,
                 push_burst: int = 0) -> None:
        self.faults = frozenset(faults)
        unknown = self.faults - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        if aes not in ("cbc", "ecb"):
            raise ValueError(f"aes must be 'cbc' or 'ecb', not {aes!r}")
        self.aes = aes
        self.rsa_key = RSA.import_key(rsa_key_pem) if rsa_key_pem else None
        self.push_notify = push_notify
        if push_burst < 0:
            raise ValueError(f"push_burst must be >= 0, not {push_burst}")
        self.push_burst = int(push_burst)
        self.lifetime = float(lifetime)
        self.host = check_loopback(host)
        self.max_conns = max_conns
        self.log = log
        self.connections: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepted = 0
        self._done = 0
        self._next_conn_id = (secrets.randbits(31) << 24) | 1  # distinct, nonzero u64 per connection
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, port))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + self.lifetime
        self._thread: threading.Thread | None = None

    def _stopping(self) -> bool:
        return self._stop.is_set() or time.monotonic() >= self._deadline

    def serve(self) -> None:
        """Accepts until stopped, the lifetime passes, or max_conns connections have ended."""
        try:
            while not self._stopping():
                with self._lock:
                    if self.max_conns is not None and self._done >= self.max_conns:
                        break
                    room = self.max_conns is None or self._accepted < self.max_conns
                if not room:
                    self._stop.wait(0.05)
                    continue
                try:
                    sock, peer = self._listener.accept()
                except socket.timeout:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._lock:
                    index = self._accepted
                    self._accepted += 1
                    conn_id = self._next_conn_id
                    self._next_conn_id += 1
                conn = _Conn(self, sock, peer, index, conn_id)
                with self._lock:
                    self.connections.append(conn.record)
                t = threading.Thread(target=conn.serve, name=f"standin-conn-{index}", daemon=True)
                self._threads.append(t)
                t.start()
        finally:
            self._listener.close()
            self._stop.set()
            for t in self._threads:
                t.join(timeout=5)

    def _conn_done(self, conn: _Conn) -> None:
        with self._lock:
            self._done += 1
            if self.log:
                with open(self.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(conn.record, sort_keys=True) + "\n")

    def __enter__(self) -> StandIn:
        self._thread = threading.Thread(target=self.serve, name="standin", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Polls predicate(self) until true or timeout (for tests waiting on records)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        with self._lock:
            return bool(predicate(self))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m opend_build.standin",
                                description=f"{LABEL}: serves the OpenD wire protocol on loopback for tests and CI, then exits by itself.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rsa-key", metavar="PEM_FILE", help="the RSA private key (PKCS#1 or PKCS#8 PEM) shared with the client")
    p.add_argument("--aes", choices=("cbc", "ecb"), default="cbc", help="ecb: never send aesCBCiv, so clients use FTAES-ECB")
    p.add_argument("--fault", action="append", default=[], choices=FAULTS, metavar="NAME", help="one of: " + ", ".join(FAULTS))
    p.add_argument("--push-notify", action="store_true", help="push a Notify (1003) after the InitConnect reply and after every GetGlobalState reply")
    p.add_argument("--push-burst", type=int, default=0, metavar="M",
                   help="benchmarks: after a subscribing Qot_Sub reply, M more 3005 pushes, pre-encoded, as fast as possible")
    p.add_argument("--max-conns", type=int, default=4)
    p.add_argument("--lifetime", type=float, default=60)
    p.add_argument("--log", metavar="FILE", help="one JSON object per connection, written when it ends")
    a = p.parse_args(argv)
    try:
        host = check_loopback(a.host)
    except ValueError as e:
        p.error(str(e))
    pem = None
    if a.rsa_key:
        with open(a.rsa_key, "rb") as f:
            pem = f.read()
    server = StandIn(rsa_key_pem=pem, aes=a.aes, faults=a.fault, push_notify=a.push_notify, lifetime=a.lifetime, host=host,
                     port=a.port, max_conns=a.max_conns, log=a.log, push_burst=a.push_burst)
    sys.stderr.write(f"{LABEL} on {host}:{server.port}: exits after {a.max_conns} connections or {a.lifetime:g} s\n")
    sys.stderr.flush()
    sys.stdout.write(f"port={server.port}\n")
    sys.stdout.flush()
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
