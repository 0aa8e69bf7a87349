"""The built output connects: the default build (no SDK) ships opend-build's open channel under the
vendor's file name, and the consumer project (test_package/), found with find_package, talks through
it to the stand-in OpenD on loopback (src/opend_build/standin.py, which the official client drives first
in test_standin.py): InitConnect, GetGlobalState and a subscription's push, plain and encrypted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import sdkfactory
from conftest import Built, Result, consume, must_build, run_driver

from opend_build.sdk import BRANDS
from opend_build.standin import SUB_REJECT_MSG, StandIn
from opend_build.verify import PUSH_WAIT

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    from Crypto.PublicKey import RSA  # pycryptodome, which the official client depends on

    return RSA.generate(1024).export_key(pkcs=1).decode()


@pytest.fixture(scope="module", params=sorted(BRANDS.items()), ids=sorted(BRANDS))
def consumer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Built, Path]:
    """test_package built once per brand against the default output."""
    brand, lib = request.param
    built: Built = request.getfixturevalue(f"default_{brand}")
    work = tmp_path_factory.mktemp(f"consumer-{brand}")
    assert "channel: open" in consume(built.out, lib, work)  # without OPEND_TEST_OPEND it only says so
    return lib, built, work / "consumer"


def test_default_output_ships_the_open_channel(consumer: tuple[str, Built, Path]) -> None:
    lib, built, _ = consumer
    so = built.out / "Bin/Linux" / f"lib{lib}Channel.so"
    assert so.is_file() and (built.out / "Bin/Linux" / f"lib{lib}ChannelStatic.a").is_file()
    assert (built.out / "Include/FTAPIChannel.h").is_file()
    exported = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True).stdout
    prefix = "FTAPIChannel" if lib == "FTAPI" else "MMAPIChannel"
    assert f"{prefix}_InitConnect" in exported and f"Create{lib}Channel" in exported
    assert "protobuf" not in exported and "google" not in subprocess.run(["nm", "-DC", str(so)], capture_output=True, text=True).stdout
    channel = json.loads((built.out / "build-manifest.json").read_text())["channel"]
    assert (channel["kind"], channel["file"], channel["planned"]) == ("open", f"Bin/Linux/lib{lib}Channel.so", "auto")
    assert channel["sha256"] == subprocess.run(["sha256sum", str(so)], capture_output=True, text=True).stdout.split()[0]


@pytest.mark.parametrize("mode", ["plain", "rsa-cbc", "rsa-ecb"])
def test_consumer_connects_through_the_open_channel(mode: str, consumer: tuple[str, Built, Path], rsa_pem: str) -> None:
    lib, _, exe = consumer
    key = rsa_pem if mode != "plain" else None
    env = {**os.environ, "OPEND_TEST_OPEND": ""}
    env.pop("OPEND_TEST_RSA_KEY", None)
    with StandIn(rsa_key_pem=key, aes="ecb" if mode == "rsa-ecb" else "cbc", lifetime=60) as s:
        env["OPEND_TEST_OPEND"] = f"127.0.0.1:{s.port}"
        if key:
            env["OPEND_TEST_RSA_KEY"] = key
        r = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=90)
        seen = list(s.connections)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "connected: connID " in r.stdout and "GetGlobalState: serverVer 1001" in r.stdout, r.stdout
    assert "push Qot_UpdateBasicQot: 00700" in r.stdout, r.stdout
    assert len(seen) == 1 and [p["proto_id"] for p in seen[0]["packets"]][:3] == [1001, 1002, 3001]
    assert seen[0]["rsa"] is (key is not None) and seen[0]["aes"] == {"plain": None, "rsa-cbc": "cbc", "rsa-ecb": "ecb"}[mode]


def test_verify_opend_connects_and_names_a_failure(default_futu: Built, rsa_pem: str, tmp_path: Path) -> None:
    """`build.py verify --opend HOST:PORT --rsa-key FILE`: the output's channel against a running OpenD."""
    key = tmp_path / "opend.pem"
    key.write_text(rsa_pem)
    with StandIn(rsa_key_pem=rsa_pem, lifetime=120) as s:
        r = run_driver("verify", "--out", str(default_futu.out), "--opend", f"127.0.0.1:{s.port}", "--rsa-key", str(key))
    assert r.returncode == 0, r.output
    assert "connected: connID" in r.stdout and "GetGlobalState: serverVer 1001" in r.stdout and "push Qot_UpdateBasicQot: 00700" in r.stdout
    assert "verify: subscription: ok: HK.00700 subscribed and its quote pushed" in r.stdout, r.stdout
    with StandIn(faults=("reject-init",), lifetime=120) as s:
        bad = run_driver("verify", "--out", str(default_futu.out), "--opend", f"127.0.0.1:{s.port}")
    assert bad.returncode == 13 and "InitConnect failed: type 100, code 5" in bad.stderr, bad.output


def _verify_opend(out: Path, *args: str, faults: tuple[str, ...] = ()) -> tuple[Result, list[dict]]:  # type: ignore[type-arg]
    with StandIn(faults=faults, lifetime=120) as s:
        r = run_driver("verify", "--out", str(out), "--opend", f"127.0.0.1:{s.port}", *args)
        s.wait(lambda s: all(c["ended"] for c in s.connections))
        return r, list(s.connections)


def _subscribed(conn: dict) -> list:  # type: ignore[type-arg]
    return [p["qot_sub"]["securities"] for p in conn["packets"] if p["proto_id"] == 3001]


def test_verify_opend_reports_a_refused_subscription_and_exits_0(default_futu: Built) -> None:
    """The connection decides the exit code; Qot_Sub's reply is read and its retMsg named."""
    r, conns = _verify_opend(default_futu.out, faults=("reject-sub",))
    assert r.returncode == 0, r.output
    assert "Qot_Sub: retType -1, errCode 0, retMsg: " + SUB_REJECT_MSG in r.stdout, r.stdout
    assert "verify: ok: connected to 127.0.0.1:" in r.stdout and "through the open channel (InitConnect, GetGlobalState)" in r.stdout
    assert f"verify: subscription: no quote right for HK.00700? OpenD refused it: {SUB_REJECT_MSG}" in r.stdout, r.stdout
    assert _subscribed(conns[0]) == [[[1, "00700"]]]


def test_verify_opend_security_chooses_it_and_an_unanswered_subscription_is_reported(default_futu: Built) -> None:
    r, conns = _verify_opend(default_futu.out, "--security", "US.AAPL", faults=("ignore-sub",))
    assert r.returncode == 0, r.output
    assert "Qot_Sub: no reply: the channel's reply timeout passed" in r.stdout, r.stdout
    assert "verify: subscription: OpenD sent no Qot_Sub reply for US.AAPL (the channel's reply timeout passed)" in r.stdout, r.stdout
    assert _subscribed(conns[0]) == [[[11, "AAPL"]]]


def test_verify_opend_subscribed_without_a_push_says_so(default_futu: Built) -> None:
    r, conns = _verify_opend(default_futu.out, faults=("no-push",))
    assert r.returncode == 0, r.output
    assert "Qot_Sub: retType 0 (subscribed)" in r.stdout and f"Qot_UpdateBasicQot: no push within {PUSH_WAIT} s" in r.stdout, r.stdout
    assert f"verify: subscription: HK.00700 subscribed, but no push within {PUSH_WAIT} s: market closed?" in r.stdout, r.stdout


def test_verify_opend_no_subscribe_asks_nothing_more(default_futu: Built) -> None:
    r, conns = _verify_opend(default_futu.out, "--no-subscribe")
    assert r.returncode == 0, r.output
    assert "GetGlobalState: serverVer 1001" in r.stdout and "Qot_Sub" not in r.stdout and "verify: subscription: skipped (--no-subscribe)" in r.stdout
    assert [p["proto_id"] for p in conns[0]["packets"]][:2] == [1001, 1002] and _subscribed(conns[0]) == []


def test_vendor_shaped_sdk_runs_over_the_open_channel(open_inputs: dict[str, Path], protobuf_tarball: Path, work: Path, tmp_path: Path,
                                                      rsa_pem: str) -> None:
    """An SDK whose own Src/FTAPI wraps the channel's C API (as the vendor's FTAPI_Conn does), built
    with --channel open (its Bin/ channel is a stand-in without the API): the SDK's wrapper and the
    channel connect, request and receive a push, encrypted."""
    only = ["Common.proto", "Qot_Common.proto", "Qot_Sub.proto", "GetGlobalState.proto", "Qot_UpdateBasicQot.proto"]
    sdk = sdkfactory.make_sdk(tmp_path / "sdk", "futu", open_inputs["futu"], protobuf_tarball, version="9.4.5420", only=only, conn=True)
    out = work / "out" / "conn-open"
    r = must_build("--os", "linux", "--sdk", str(sdk), "--channel", "open", "--out", str(out), summary=tmp_path / "s.json")
    channel = json.loads((out / "build-manifest.json").read_text())["channel"]
    assert (channel["kind"], channel["planned"]) == ("open", "open") and r.summary is not None
    assert (sdk / "Bin/Ubuntu16.04/libFTAPIChannel.so").read_bytes() != (out / "Bin/Linux/libFTAPIChannel.so").read_bytes()
    assert "library ok" in consume(out, "FTAPI", tmp_path / "consumer")
    with StandIn(rsa_key_pem=rsa_pem, lifetime=120) as s:
        env = {**os.environ, "OPEND_TEST_OPEND": f"127.0.0.1:{s.port}", "OPEND_TEST_RSA_KEY": rsa_pem}
        run = subprocess.run([str(tmp_path / "consumer" / "consumer")], capture_output=True, text=True, env=env, timeout=120)
        conns = list(s.connections)
    assert run.returncode == 0, run.stdout + run.stderr
    for line in ("sdk conn: connected", "sdk conn: GetGlobalState serverVer 1001", "sdk conn: push Qot_UpdateBasicQot 00700",
                 "push Qot_UpdateBasicQot: 00700"):
        assert line in run.stdout, run.stdout
    assert [c["init"]["clientID"] for c in conns] == ["FTAPI-standin", "opend-build"] and all(c["aes"] == "cbc" for c in conns)


def test_a_build_without_openssl_says_it_has_no_channel(open_inputs: dict[str, Path], protobuf_tarball: Path, small_built: Built, tmp_path: Path) -> None:
    """A machine without the OpenSSL headers (hidden here by an empty folder mounted over
    /usr/include/openssl in a user namespace of this process' own): the default channel (auto) is
    not built, the build still succeeds, and its summary says so in its channel line and last."""
    import shutil
    import sys

    from conftest import ROOT

    sdk = sdkfactory.make_sdk(tmp_path / "sdk", "futu", open_inputs["futu"], protobuf_tarball, version="9.4.5420", with_src=False, only=["Common.proto"])
    shutil.rmtree(sdk / "Bin")  # no channel of the vendor's: the open one is the default (protobuf is small_built's)
    empty = tmp_path / "empty"
    empty.mkdir()
    out, summary = tmp_path / "out", tmp_path / "s.json"
    driver = [sys.executable, str(ROOT / "build.py"), "--os", "linux", "--sdk", str(sdk), "--build-type", "Debug", "--out", str(out), "--summary-json", str(summary)]
    r = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount --bind "$0" /usr/include/openssl && exec "$@"', str(empty), *driver],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert (manifest["channel"]["kind"], manifest["channel"]["planned"]) == ("none", "auto")
    assert not list((out / "Bin/Linux").glob("*Channel*"))
    channel = json.loads(summary.read_text())["channel"]
    assert channel == {"kind": "none", "file": None, "why": "OpenSSL's libcrypto 3 was not found",
                       "install": "Debian/Ubuntu: apt-get install libssl-dev", "implicit": True}
    assert "  channel:  none: OpenSSL's libcrypto 3 was not found; install it: Debian/Ubuntu: apt-get install libssl-dev" in r.stdout, r.stdout
    last = r.stdout[r.stdout.rindex("\n  log:      "):]  # said last, after the summary's own lines
    words = " ".join(last.split())  # wrapped like the plan's lines
    assert "\nnote: this output has no channel library" in last and "--channel open" in words and "apt-get install libssl-dev" in words, r.stdout
