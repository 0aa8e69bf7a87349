"""The official Python client (futu-api) as the benchmark's reference, one measurement per process.

    python bench/channel/py_client.py latency PORT N [--warmup W] [--rsa-key FILE] [--timeout-s S]
    python bench/channel/py_client.py pushes PORT M [--rsa-key FILE] [--timeout-s S]

Run it with HOME set to a throw-away folder (bench/channel/run.py does): importing futu writes
~/.com.futunn.FutuOpenD and installs a SIGINT handler. Prints one line "RESULT <json>" and leaves
with os._exit, so no client thread can keep the process alive.

latency: OpenQuoteContext, W warm-up calls, then N get_global_state() calls (the client's own API
path: pack, send, wait for the reply, unpack), each timed with time.perf_counter_ns.
pushes: a StockQuoteHandlerBase subclass that calls the base class (which parses every push into a
DataFrame, as an application gets it) and counts; subscribe(["HK.00700"], [SubType.QUOTE]), then
wait until M pushes have been handled; the window is from the first to the M-th. --no-parse: the
handler counts without calling the base class (the client still reads, checks, decrypts and
parses the protobuf on its own threads): the client's floor, not what an application sees.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any


def percentile(values: list[float], p: float) -> float:  # nearest rank, as channel_bench.cpp
    v = sorted(values)
    rank = min(len(v), max(1, int(p / 100.0 * len(v) + 0.999999)))
    return v[rank - 1]


def run(a: argparse.Namespace) -> dict[str, Any]:
    from futu import RET_OK, OpenQuoteContext, StockQuoteHandlerBase, SubType, SysConfig

    SysConfig.set_all_thread_daemon(True)
    encrypted = bool(a.rsa_key)
    if encrypted:
        SysConfig.set_init_rsa_file(a.rsa_key)
        SysConfig.enable_proto_encrypt(True)
    deadline = time.monotonic() + a.timeout_s
    out: dict[str, Any] = {"client": "futu-api", "mode": a.mode, "encrypted": encrypted, "no_parse": a.no_parse, "ok": False}

    lock = threading.Lock()
    done = threading.Event()
    state = {"count": 0, "first": 0, "last": 0, "errors": 0}
    want = a.count

    class Quotes(StockQuoteHandlerBase):
        def on_recv_rsp(self, rsp_pb: Any) -> Any:
            ret, data = (RET_OK, None) if a.no_parse else super().on_recv_rsp(rsp_pb)
            now = time.perf_counter_ns()
            with lock:
                if ret != RET_OK:
                    state["errors"] += 1
                if state["count"] == 0:
                    state["first"] = now
                state["last"] = now
                state["count"] += 1
                if state["count"] >= want:
                    done.set()
            return ret, data

    t0 = time.perf_counter()
    ctx = OpenQuoteContext(host="127.0.0.1", port=a.port)
    out["connect_s"] = time.perf_counter() - t0
    try:
        if a.mode == "latency":
            ns: list[int] = []
            for i in range(a.warmup + a.count):
                if time.monotonic() > deadline:
                    out["error"] = f"timed out after {i} requests"
                    return out
                s = time.perf_counter_ns()
                ret, data = ctx.get_global_state()
                e = time.perf_counter_ns()
                if ret != RET_OK:
                    out["error"] = f"get_global_state: {data}"
                    return out
                if i >= a.warmup:
                    ns.append(e - s)
            us = [x / 1000.0 for x in ns]
            out.update(ok=True, n=len(us), warmup=a.warmup, p50_us=percentile(us, 50), p90_us=percentile(us, 90),
                       p99_us=percentile(us, 99), mean_us=sum(us) / len(us), min_us=min(us), max_us=max(us))
        else:
            ctx.set_handler(Quotes())
            t_sub = time.perf_counter_ns()
            ret, data = ctx.subscribe(["HK.00700"], [SubType.QUOTE])
            out["sub_reply_s"] = (time.perf_counter_ns() - t_sub) / 1e9
            if ret != RET_OK:
                out["error"] = f"subscribe: {data}"
                return out
            done.wait(max(0.0, deadline - time.monotonic()))
            with lock:
                n, first, last, errors = state["count"], state["first"], state["last"], state["errors"]
            window = (last - first) / 1e9
            from_sub = (last - t_sub) / 1e9
            out.update(count=n, errors=errors, window_s=window, pushes_per_s=(n - 1) / window if window > 0 else 0.0,
                       from_sub_s=from_sub, pushes_per_s_from_sub=n / from_sub if from_sub > 0 else 0.0)
            if n < want:
                # bounded in time: the rate is still what it managed, over the pushes it handled
                out["partial"] = f"timed out after {n} of {want} pushes"
                out["ok"] = n >= 100 and not errors
                if not out["ok"]:
                    out["error"] = out["partial"]
            elif errors:
                out["error"] = f"{errors} pushes did not parse"
            else:
                out["ok"] = True
    finally:
        ctx.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("latency", "pushes"))
    p.add_argument("port", type=int)
    p.add_argument("count", type=int)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--rsa-key")
    p.add_argument("--no-parse", action="store_true")
    p.add_argument("--timeout-s", type=float, default=120)
    a = p.parse_args()
    try:
        result = run(a)
    except BaseException as e:  # reported, never hidden
        result = {"client": "futu-api", "mode": a.mode, "ok": False, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
