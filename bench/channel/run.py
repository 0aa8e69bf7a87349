#!/usr/bin/env python3
"""Our channel (channel/, C API) against the vendor's official Python client (futu-api), on loopback,
both talking to the same stand-in OpenD: the native one (bench/channel/standin/opend_standin.cpp, the
default) or the Python one (src/opend_build/standin.py). A benchmark, not a test.

    python bench/channel/run.py                  # plain and encrypted, about 1.5-2 minutes on 2 cores
    python bench/channel/run.py --quick          # small counts: checks the harness in ~20 s
    python bench/channel/run.py --no-encrypted   # plain only
    python bench/channel/run.py --server python  # against the Python stand-in, as before

Measured, in each scenario (plain; RSA-1024 InitConnect + AES-CBC bodies):
- round trip of GetGlobalState (1002, body Request{c2s{userID=0}}): after a warm-up, N requests one
  after another, each waiting for its reply; p50/p99 in microseconds. Python: get_global_state().
  C++: bench/channel/channel_bench.cpp, SendProto from the main thread, reply seen by the main thread
  (what a synchronous wrapper does, like the Python call); and, as a second row, each next request
  sent from the OnReply callback (an asynchronous application; no hand-over between threads).
- push throughput: after Qot_Sub the stand-in (--push-burst M) writes M more Qot_UpdateBasicQot
  (3005) pushes as fast as it can; the client counts all M+1; pushes/s from the first push to the
  last. Python: a StockQuoteHandlerBase subclass calling the base class (the DataFrame an application
  gets) and, for reference, one that only counts (--no-parse).
- the floor: bare socket clients (no client library, requests framed beforehand, replies not
  decoded) for the round trip, i.e. what the stand-in and loopback cost: bench/channel/raw_floor.cpp
  (C++, a plain session in both scenarios) and a Python one (the scenario's encryption); the stand-in's own write
  time for each burst (from its --log), so the reader sees whether the server limited a result; and,
  from the native stand-in, its service time per request (last byte read to reply written).
Latency: raw, Python and channel interleaved, --repeats rounds, the median run's numbers count.
Pushes: the Python client once per handler (it takes about a minute), the channel --repeats times.
Prints a Markdown table and writes bench/results/channel.json. Loopback only; every wait is
bounded; the stand-in exits by itself after the scenario's connections (or its --lifetime).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import build  # noqa: E402

build.load(ROOT)  # this checkout's package, even when an editable install of another one is active

from opend_build import standin as st  # noqa: E402  (imports futu's generated messages, never the futu package)

PY_STANDIN = ROOT / "src" / "opend_build" / "standin.py"
PY_CLIENT = HERE / "py_client.py"
RESULTS = ROOT / "bench" / "results" / "channel.json"
GGS_BODY = bytes.fromhex("0a020800")  # GetGlobalState Request{c2s{userID=0}}
SUB_BODY = bytes.fromhex("0a110a09080112053030373030100118012001")  # Qot_Sub HK.00700 Basic, sub, reg push
TARGET_PUSH_RATIO = 20.0  # ours/Python pushes per second, at least
TARGET_LATENCY_RATIO = 10.0  # Python/ours p50, at least


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


# --- build -----------------------------------------------------------------------------------------

def build(folder: Path) -> tuple[Path, Path, Path]:
    """channel_bench, the native stand-in and the C++ floor client, Release."""
    cmake = shutil.which("cmake")
    if not cmake:
        sys.exit("cmake is not on PATH")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    if not (folder / "CMakeCache.txt").exists():
        subprocess.run([cmake, "-S", str(HERE), "-B", str(folder), *gen, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    subprocess.run([cmake, "--build", str(folder), "--target", "channel_bench", "opend_standin", "raw_floor", "--parallel", "2"], check=True,
                   stdout=subprocess.DEVNULL, timeout=600)
    exes = folder / "channel_bench", folder / "opend_standin", folder / "raw_floor"
    for exe in exes:
        if not exe.exists():
            sys.exit(f"{exe} was not built")
    return exes


# --- the stand-in ----------------------------------------------------------------------------------

class Server:
    """A stand-in as a child process, the native one (its executable given) or src/opend_build/standin.py:
    both take the same arguments, print "port=N", log one JSON object per connection and leave after
    max_conns connections or lifetime."""

    def __init__(self, tmp: Path, name: str, native: Path | None, pem_file: Path | None, burst: int, max_conns: int,
                 lifetime: float) -> None:
        self.log = tmp / f"standin-{name}.log"
        cmd = [str(native)] if native else [sys.executable, str(PY_STANDIN)]
        cmd += ["--port", "0", "--push-burst", str(burst), "--max-conns", str(max_conns), "--lifetime", str(lifetime),
                "--log", str(self.log)]
        if pem_file:
            cmd += ["--rsa-key", str(pem_file)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline() if self.proc.stdout else ""), daemon=True)
        reader.start()
        reader.join(20)
        if not line or not line[0].startswith("port="):
            self.stop()
            sys.exit(f"the stand-in did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.port = int(line[0].strip().split("=", 1)[1])

    def stop(self, wait: float = 15) -> None:
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # our own child, by its handle
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        recs = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]
        return sorted(recs, key=lambda r: r["index"])


# --- the raw floor: a socket, our stand-in's own framing helpers, nothing decoded after InitConnect ---

class Raw:
    def __init__(self, port: int, pem: bytes | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.key: bytes | None = None
        self.iv: bytes | None = None
        req = st.PB["InitConnect"].Request()
        c2s = req.c2s
        c2s.clientVer, c2s.clientID, c2s.recvNotify = 100, "bench-raw", True
        c2s.packetEncAlgo = st.ENC_AES_CBC if pem else st.ENC_NONE
        plain = req.SerializeToString()
        rsa = st.RSA.import_key(pem) if pem else None
        wire = st.rsa_encrypt(rsa, plain) if rsa else plain
        self.sock.sendall(st.pack_packet(st.INIT_CONNECT, 1, plain, wire))
        head, body = self.packet()
        rsp = st.PB["InitConnect"].Response()
        rsp.ParseFromString(st.rsa_decrypt(rsa, body) if rsa else body)
        if rsp.retType != 0:
            raise RuntimeError(f"raw InitConnect rejected: {rsp.retMsg}")
        if rsa:
            self.key, self.iv = rsp.s2c.connAESKey.encode(), rsp.s2c.aesCBCiv.encode()

    def frame(self, proto_id: int, serial: int, plain: bytes) -> bytes:
        wire = st.aes_cbc_encrypt(self.key, self.iv, plain) if self.key and self.iv else plain
        return st.pack_packet(proto_id, serial, plain, wire)

    def read_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if not k:
                raise ConnectionError("stand-in closed")
            got += k
        return bytes(buf)

    def packet(self) -> tuple[dict[str, Any], bytes]:
        head = st.unpack_header(self.read_exact(st.HEADER_LEN))
        return head, self.read_exact(head["body_len"])

    def close(self) -> None:
        self.sock.close()


def raw_latency(port: int, pem: bytes | None, n: int, warmup: int, deadline: float) -> dict[str, Any]:
    """Sends pre-framed requests and reads each reply into one buffer, usually with a single recv:
    as little Python per round trip as a socket allows, so what remains is the stand-in's time."""
    raw = Raw(port, pem)
    try:
        packets = [raw.frame(st.GET_GLOBAL_STATE, i + 2, GGS_BODY) for i in range(warmup + n)]
        buf = bytearray(1 << 16)
        view = memoryview(buf)
        body_len = struct.Struct("<I")
        sock = raw.sock
        us: list[float] = []
        for i, pkt in enumerate(packets):
            if time.monotonic() > deadline:
                return {"ok": False, "error": f"timed out after {i}"}
            t0 = time.perf_counter_ns()
            sock.sendall(pkt)
            got, need = 0, st.HEADER_LEN
            while got < need:
                k = sock.recv_into(view[got:])
                if not k:
                    raise ConnectionError("stand-in closed")
                got += k
                if need == st.HEADER_LEN and got >= st.HEADER_LEN:
                    need += body_len.unpack_from(buf, 12)[0]  # bodyLen
            t1 = time.perf_counter_ns()
            if got != need:
                return {"ok": False, "error": f"reply {i}: {got} bytes for a packet of {need}"}
            if i >= warmup:
                us.append((t1 - t0) / 1000)
        return {"ok": True, "n": len(us), "p50_us": pct(us, 50), "p99_us": pct(us, 99), "mean_us": statistics.fmean(us)}
    finally:
        raw.close()


def pct(values: list[float], p: float) -> float:  # nearest rank, as the clients
    v = sorted(values)
    return v[min(len(v), max(1, int(p / 100.0 * len(v) + 0.999999))) - 1]


# --- the clients -----------------------------------------------------------------------------------

def run_json(cmd: list[str], env: dict[str, str] | None, timeout: float, prefix: str = "") -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"killed after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(prefix + "{"):
            return json.loads(line[len(prefix):])
    return {"ok": False, "error": f"exit {proc.returncode}, no result: {proc.stdout[-500:]} {proc.stderr[-500:]}"}


def run_scenario(name: str, exe: Path, floor_exe: Path, native: Path | None, tmp: Path, pem: bytes | None,
                 a: argparse.Namespace) -> dict[str, Any]:
    pem_file = None
    if pem:
        pem_file = tmp / "conn_key.pem"
        pem_file.write_bytes(pem)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    py_env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    key_c = ["--rsa-key", str(pem_file)] if pem_file else []
    want = a.pushes + 1  # the stand-in's usual push after the Qot_Sub reply, then the burst
    # the order of the connections, as the stand-in numbers them
    # latency: the three clients interleaved, a.repeats rounds, so a change in the machine's load hits
    # them alike; pushes: the Python client once (it takes a minute), the channel a.repeats times
    plan: list[tuple[str, str]] = [("raw-cpp", "latency"), ("raw", "latency"), ("py", "latency"), ("channel", "latency"),
                                   ("channel-cb", "latency")] * a.repeats
    plan += [("py", "pushes")]
    if a.no_parse:
        plan += [("py-noparse", "pushes")]
    plan += [("channel", "pushes")] * a.repeats
    budget = a.py_timeout * 3 + 120
    server = Server(tmp, name, native, pem_file, a.pushes, len(plan), lifetime=budget)
    deadline = time.monotonic() + budget
    runs: list[dict[str, Any]] = []
    try:
        for client, mode in plan:
            t0 = time.monotonic()
            if client == "raw-cpp":
                r = run_json([str(floor_exe), "127.0.0.1", str(server.port), str(a.latency_n), "--warmup", str(a.warmup),
                              "--timeout-s", "60"], None, 90)
            elif client == "raw":
                try:
                    r = raw_latency(server.port, pem, a.latency_n, a.warmup, deadline)
                except (OSError, RuntimeError, ValueError) as e:
                    r = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            elif client.startswith("channel"):
                count = a.latency_n if mode == "latency" else want
                extra = ["--from-callback"] if client == "channel-cb" else []
                r = run_json([str(exe), mode, "127.0.0.1", str(server.port), str(count), "--warmup", str(a.warmup),
                              "--timeout-s", "60", *key_c, *extra], None, 90)
            else:
                count = a.latency_n if mode == "latency" else want
                extra = ["--no-parse"] if client == "py-noparse" else []
                r = run_json([sys.executable, str(PY_CLIENT), mode, str(server.port), str(count), "--warmup", str(a.warmup),
                              "--timeout-s", str(a.py_timeout), *key_c, *extra], py_env, a.py_timeout + 30, "RESULT ")
            r.update(client=client, mode=mode, wall_s=round(time.monotonic() - t0, 3))
            runs.append(r)
            log(f"  {name}: {client:10s} {mode:7s} " + (summary(r) if r.get("ok") else f"FAILED: {r.get('error')}"))
    finally:
        server.stop()
    recs = server.records()
    for run, rec in zip(runs, recs):
        run["server_errors"] = rec.get("errors")
        for k in ("work_us", "service_us"):
            if rec.get(k):
                run["server_" + k] = rec[k]
        if rec.get("bursts"):
            b = rec["bursts"][-1]
            run["server_burst"] = b
            if b.get("send_s"):
                run["server_pushes_per_s"] = b["count"] / b["send_s"]
    if len(recs) != len(runs):
        log(f"  {name}: the stand-in logged {len(recs)} connections for {len(runs)} runs")
    return {"scenario": name, "encrypted": bool(pem), "server": "native" if native else "python", "runs": runs}


def summary(r: dict[str, Any]) -> str:
    if r["mode"] == "latency":
        return f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us"
    return f"{r['pushes_per_s']:,.0f} pushes/s ({r['count']} in {r['window_s']:.3f} s)"


# --- report ----------------------------------------------------------------------------------------

def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    ok = sorted((r for r in runs if r.get("ok")), key=lambda r: r[key])
    return ok[len(ok) // 2] if ok else None


def pick(sc: dict[str, Any], client: str, mode: str, key: str) -> dict[str, Any] | None:
    return median_run([r for r in sc["runs"] if r["client"] == client and r["mode"] == mode], key)


def fmt_num(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"


def report(scenarios: list[dict[str, Any]], want: int) -> tuple[str, list[dict[str, Any]]]:
    rows: list[str] = ["| scenario | official Python client | our channel | ratio |", "|---|---|---|---|"]
    targets: list[dict[str, Any]] = []
    notes: list[str] = []
    for sc in scenarios:
        name = sc["scenario"]
        py_l, ch_l = pick(sc, "py", "latency", "p50_us"), pick(sc, "channel", "latency", "p50_us")
        raw_l = pick(sc, "raw", "latency", "p50_us")
        rawc_l = pick(sc, "raw-cpp", "latency", "p50_us")
        cb_l = pick(sc, "channel-cb", "latency", "p50_us")
        for q in ("p50_us", "p99_us"):
            pv = py_l[q] if py_l else None
            cv = ch_l[q] if ch_l else None
            ratio = f"{pv / cv:.1f}x faster" if pv and cv else "n/a"
            rows.append(f"| {name}: GetGlobalState round trip {q[:3]} (request from the main thread, waits) | "
                        f"{fmt_num(pv, 'us')} | {fmt_num(cv, 'us')} | {ratio} |")
        if cb_l:
            for q in ("p50_us", "p99_us"):
                pv = py_l[q] if py_l else None
                ratio = f"{pv / cb_l[q]:.1f}x faster" if pv else "n/a"
                rows.append(f"| {name}: GetGlobalState round trip {q[:3]}, ours sends the next from OnReply | {fmt_num(pv, 'us')} | "
                            f"{fmt_num(cb_l[q], 'us')} | {ratio} |")
        service = server_cost(sc, "service_us")
        srv = f"; the server, read to reply written: p50 {service[0]:.1f} us, p99 {service[1]:.1f} us" if service else ""
        for label, fl in (("C++ socket client, plain session", rawc_l), ("Python socket client", raw_l)):
            if fl:
                rows.append(f"| {name}: floor, a bare {label} (what the {sc.get('server', 'python')} "
                            f"stand-in and loopback cost{srv if fl is (rawc_l or raw_l) else ''}) | p50 {fmt_num(fl['p50_us'], 'us')}, p99 {fmt_num(fl['p99_us'], 'us')} | | |")
        py_p = pick(sc, "py", "pushes", "pushes_per_s")
        np_p = pick(sc, "py-noparse", "pushes", "pushes_per_s")
        ch_p = pick(sc, "channel", "pushes", "pushes_per_s")
        cv = ch_p["pushes_per_s"] if ch_p else None
        for label, ref in (("3005 pushes/s (handler parses, as apps do)", py_p), ("3005 pushes/s (Python handler only counts)", np_p)):
            if ref is None and label.endswith("counts)"):
                continue
            pv = ref["pushes_per_s"] if ref else None
            ratio = f"{cv / pv:.1f}x more" if pv and cv else "n/a"
            partial = f" ({ref['count']} of {want}, timed out)" if ref and ref.get("partial") else ""
            rows.append(f"| {name}: {label} | {fmt_num(pv, '/s')}{partial} | {fmt_num(cv, '/s')} | {ratio} |")

        lat_ratio = py_l["p50_us"] / ch_l["p50_us"] if py_l and ch_l else None
        push_ratio = cv / py_p["pushes_per_s"] if py_p and cv else None
        targets.append({"scenario": name, "target": f"p50 latency at most 1/{TARGET_LATENCY_RATIO:.0f} of the Python client's",
                        "ratio": lat_ratio, "met": bool(lat_ratio and lat_ratio >= TARGET_LATENCY_RATIO)})
        if cb_l and py_l:
            r = py_l["p50_us"] / cb_l["p50_us"]
            targets.append({"scenario": name, "target": f"(same, ours sending from OnReply) p50 latency at most "
                            f"1/{TARGET_LATENCY_RATIO:.0f} of the Python client's", "ratio": r, "met": r >= TARGET_LATENCY_RATIO})
        targets.append({"scenario": name, "target": f"push throughput at least {TARGET_PUSH_RATIO:.0f}x the Python client's",
                        "ratio": push_ratio, "met": bool(push_ratio and push_ratio >= TARGET_PUSH_RATIO)})

        floor_l, floor_who = (rawc_l, "C++ socket client (plain session,") if rawc_l else (raw_l, "Python socket client (")
        if floor_l:
            floor = floor_l["p50_us"]
            over = []
            for who, r in (("Python client", py_l), ("our channel", ch_l), ("ours from OnReply", cb_l)):
                if r:
                    d = r["p50_us"] - floor
                    over.append(f"{who} {d:.1f} us" if d > 1 else f"{who} ~0 us (within the noise)")
            ratio_txt = ""
            if py_l and ch_l and ch_l["p50_us"] - floor > 1:
                ratio_txt = f"; the Python client adds {(py_l['p50_us'] - floor) / (ch_l['p50_us'] - floor):.0f}x what ours adds"
            work, service = server_cost(sc, "work_us"), server_cost(sc, "service_us")
            cost = "nearly all of it the Python stand-in's own work per request"
            if work and service:
                cost = (f"of which the native stand-in (from its log) spends p50 {work[0]:.1f} us (p99 {work[1]:.1f}) from a "
                        f"request's last byte to its reply built, and p50 {service[0]:.1f} us (p99 {service[1]:.1f}) to the reply "
                        f"written, the kernel's loopback delivery included")
            also = f" (the bare Python client's: {raw_l['p50_us']:.1f} us)" if raw_l and floor_l is rawc_l else ""
            notes.append(f"- {name}: floor = a bare {floor_who} pre-framed requests, replies not decoded){also}: p50 "
                         f"{floor:.1f} us, {cost}; median p50 above that floor: {', '.join(over)}{ratio_txt}")
        rates = [r["server_pushes_per_s"] for r in sc["runs"] if r["mode"] == "pushes" and r.get("server_pushes_per_s")]
        ch_srv = ch_p.get("server_pushes_per_s") if ch_p else None
        if rates:
            b = next(r["server_burst"] for r in sc["runs"] if r.get("server_burst"))
            line = (f"- {name}: the stand-in wrote each burst of {b['count']} pushes ({b['bytes'] / 1e6:.1f} MB, "
                    f"encoded in {b['encode_s'] * 1e3:.1f} ms beforehand) at {min(rates):,.0f}-{max(rates):,.0f} pushes/s")
            if ch_srv and cv:
                line += (f"; in the median channel run it wrote at {ch_srv:,.0f}/s while the channel consumed at {cv:,.0f}/s"
                         + (" (the server was NOT the limit)" if ch_srv > cv * 1.2 else " (the server may have been the limit)"))
            notes.append(line)
    return "\n".join(rows) + "\n\nFloor and server:\n" + "\n".join(notes), targets


def server_cost(sc: dict[str, Any], key: str) -> tuple[float, float] | None:
    """The native stand-in's own time per request (key: work_us or service_us) over the scenario's latency
    runs: the median of their p50s and of their p99s."""
    logs = [r["server_" + key] for r in sc["runs"] if r["mode"] == "latency" and r.get("server_" + key)]
    if not logs:
        return None
    return statistics.median(x["p50"] for x in logs), statistics.median(x["p99"] for x in logs)


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        from importlib.metadata import version
        futu_ver = version("futu-api")
    except Exception:
        futu_ver = "?"
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "futu_api": futu_ver,
            "platform": platform.platform()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency-n", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--pushes", type=int, default=20000, help="M, the stand-in's burst after Qot_Sub")
    p.add_argument("--repeats", type=int, default=3, help="latency rounds, and channel push runs (median)")
    p.add_argument("--py-timeout", type=float, default=100, help="bound of one Python client run, seconds")
    p.add_argument("--no-parse", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the Python client with a handler that only counts (default on)")
    p.add_argument("--no-encrypted", action="store_true")
    p.add_argument("--server", choices=("native", "python"), default="native",
                   help="the stand-in OpenD: bench/channel/standin (C++, default) or src/opend_build/standin.py")
    p.add_argument("--quick", action="store_true", help="N=200, M=2000, one repeat")
    p.add_argument("--build-dir", type=Path, default=ROOT / "build" / "bench-channel")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    if a.quick:
        a.latency_n, a.warmup, a.pushes, a.repeats = 200, 20, 2000, 1
    if not (1 <= a.latency_n <= 1_000_000 and 0 <= a.warmup <= 100_000 and 1 <= a.pushes <= 1_000_000 and 1 <= a.repeats <= 20):
        p.error("counts out of range")

    started = time.monotonic()
    load_before = loadavg()
    log(f"building channel_bench and opend_standin (Release) in {a.build_dir}")
    exe, standin, floor_exe = build(a.build_dir)
    native = standin if a.server == "native" else None
    scenarios = []
    with tempfile.TemporaryDirectory(prefix="bench-channel-") as t:
        tmp = Path(t)
        log(f"plain (load {load_before})")
        scenarios.append(run_scenario("plain", exe, floor_exe, native, tmp, None, a))
        if not a.no_encrypted:
            from Crypto.PublicKey import RSA
            pem = RSA.generate(1024).export_key(pkcs=1)
            log(f"encrypted: RSA-1024 + AES-CBC (load {loadavg()})")
            scenarios.append(run_scenario("encrypted", exe, floor_exe, native, tmp, pem, a))
    load_after = loadavg()
    table, targets = report(scenarios, a.pushes + 1)
    lines = [table, "", "Targets:"]
    for tg in targets:
        ratio = f"{tg['ratio']:.1f}x" if tg["ratio"] else "n/a"
        lines.append(f"- {tg['scenario']}: {tg['target']}: {ratio} -> {'MET' if tg['met'] else 'NOT met'}")
    lines.append("")
    lines.append(f"Load average (1/5/15 min) before {load_before}, after {load_after}, on {os.cpu_count()} CPUs; "
                 f"total {time.monotonic() - started:.0f} s. Server: the {a.server} stand-in. N={a.latency_n} after {a.warmup} warm-up, M={a.pushes}, "
                 f"channel runs x{a.repeats} (median).")
    text = "\n".join(lines)
    print(text)
    result = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "load_before": load_before, "load_after": load_after,
        "server": a.server,
        "params": {"latency_n": a.latency_n, "warmup": a.warmup, "pushes": a.pushes, "repeats": a.repeats, "quick": a.quick},
        "targets": targets, "scenarios": scenarios, "report": text,
        "total_s": round(time.monotonic() - started, 1),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
