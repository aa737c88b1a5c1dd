"""`tcpsm check`: the CI gate, end to end, and the pytest helper."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from pcapgen import LT_RAW, pcap, tcp4
from segscript import Wire

from tcptrace_sm.cli import ExitCode, cli
from tcptrace_sm.policy import Policy, PolicyError, discover_policy, load_policy
from tcptrace_sm.testing import assert_clean

KERNEL = SAMPLES / "kernel"
CLEAN = KERNEL / "orderly_client_close.pcap"
LEAK = KERNEL / "close_wait_leak.pcap"
RESET = KERNEL / "abort_server.pcap"


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def write_wire(w: Wire, path: Path) -> Path:
    """A raw-IP pcap of a scripted segment sequence (correct checksums)."""
    records = [
        (
            s.ts,
            tcp4(
                s.src,
                s.dst,
                s.sport,
                s.dport,
                b"x" * s.length,
                seq=s.seq,
                ack=s.ack,
                flags=s.flags,
                win=s.win,
            ),
        )
        for s in w.segments
    ]
    path.write_bytes(pcap(records, LT_RAW))
    return path


@pytest.fixture
def injected(tmp_path: Path) -> Path:
    w = Wire()
    w.handshake()
    w.c.data(100)
    w.c.fin()
    w.c.data(50)  # injected: data beyond the client's own FIN
    w.s.fin()
    w.c.ack()
    return write_wire(w, tmp_path / "injected.pcap")


def test_clean_traffic_passes() -> None:
    code, out, err = run(
        str(CLEAN), str(KERNEL / "orderly_server_close.pcap"), str(KERNEL / "ipv6_orderly.pcap")
    )
    assert code == ExitCode.OK
    assert out == ""
    assert err.startswith("tcpsm: PASS: 3 connections")


def test_close_wait_leak_fails() -> None:
    code, out, err = run(str(LEAK))
    assert code == ExitCode.FINDINGS
    [line] = out.splitlines()
    assert line.startswith("flow 1 10.77.0.1:40001 -> 10.77.0.2:8080 stuck_close_wait")
    assert "FAIL: 1 finding in 1 of 1 connection" in err


def test_injected_invalid_segment_fails(injected: Path) -> None:
    code, out, _ = run(str(injected))
    assert code == ExitCode.FINDINGS
    assert "data_after_fin at frame 6" in out


def test_rst_passes_by_default_and_fails_when_asked() -> None:
    assert run(str(RESET))[0] == ExitCode.OK
    for selector in ("rst_terminated", "notable", "warning"):
        code, out, _ = run(str(RESET), "--fail-on", selector)
        assert code == ExitCode.FINDINGS, selector
        assert "rst_terminated" in out


def test_allow_relaxes_the_default() -> None:
    assert run(str(LEAK), "--allow", "stuck_close_wait")[0] == ExitCode.OK
    assert run(str(LEAK), "--close-wait-timeout", "10")[0] == ExitCode.OK


def test_not_a_capture_is_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_text("hello")
    code, _, err = run(str(bad))
    assert code == ExitCode.BAD_INPUT
    assert err.count("\n") == 1


def test_unknown_selector_is_a_usage_error() -> None:
    code, _, err = run(str(CLEAN), "--fail-on", "everything")
    assert code == ExitCode.USAGE
    assert "unknown selector 'everything'" in err


POLICY = """
fail_on = ["error"]
allow = ["unanswered_syn"]
close_wait_timeout = 0.5

[[service]]
name = "web"
port = 8080
close = ["fin"]
max_resets = 0
max_close_wait = 2.0
require_handshake = true
"""


def test_policy_file_service_rules(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    code, out, err = run(str(RESET), str(LEAK), str(CLEAN), "--policy", str(policy))
    assert code == ExitCode.FINDINGS
    assert "close_rst" in out  # the reset connection did not end with FIN
    assert "max_resets" in out
    assert "max_close_wait" in out  # 3 s in CLOSE-WAIT > 2 s
    assert "stuck_close_wait" in out  # from fail_on error
    assert f"policy: {policy}" in err


def test_require_handshake(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('allow = ["warning"]\n[[service]]\nport = 8080\nrequire_handshake = true\n')
    code, out, _ = run(str(KERNEL / "unanswered.pcap"), "--policy", str(policy))
    assert code == ExitCode.FINDINGS
    assert "require_handshake" in out
    assert run(str(CLEAN), "--policy", str(policy))[0] == ExitCode.OK


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail_onn = ['error']\n", "unknown key 'fail_onn'"),
        ("[[service]]\nport = 80\ncolse = 'fin'\n", "unknown key 'colse'"),
        ("[[service]]\nport = 'http'\n", "port must be"),
        ("[[service]]\nport = 80\nclose = ['gently']\n", "close 'gently'"),
        ("fail_on = ['bogus']\n", "unknown selector 'bogus'"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_policy_files_are_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(policy)
    code, _, err = run(str(CLEAN), "--policy", str(policy))
    assert code == ExitCode.USAGE
    assert message.split("'", maxsplit=1)[0] in err


def test_pyproject_table_is_found_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.tcpsm]\nfail_on = ["rst_terminated"]\n'
    )
    sub = tmp_path / "tests" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert discover_policy().fail_on == ("rst_terminated",)
    code, _, err = run(str(RESET))
    assert code == ExitCode.FINDINGS
    assert "[tool.tcpsm]" in err


def test_pyproject_without_table_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    assert discover_policy() == Policy()


def test_junit_xml_lists_the_failures(tmp_path: Path) -> None:
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    code, _, _ = run(str(LEAK), str(CLEAN), "--junit", str(junit))
    assert code == ExitCode.FINDINGS
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1
    failure = failed[0].find("failure")
    assert failure is not None
    assert failure.get("type") == "stuck_close_wait"
    assert "CLOSE-WAIT" in (failure.text or "")


def test_github_annotations() -> None:
    code, out, _ = run(str(LEAK), "--format", "github")
    assert code == ExitCode.FINDINGS
    assert out.startswith(f"::error file={LEAK},title=tcpsm stuck_close_wait::flow 1 ")


def test_json_report_and_baseline_ratchet(tmp_path: Path, injected: Path) -> None:
    baseline = tmp_path / "baseline.json"
    code, out, _ = run(str(LEAK), "--format", "json", "-o", str(baseline))
    assert code == ExitCode.FINDINGS
    doc = json.loads(baseline.read_text())
    assert doc["passed"] is False
    assert [f["code"] for f in doc["findings"]] == ["stuck_close_wait"]
    # the known leak no longer fails ...
    code, _, err = run(str(LEAK), "--baseline", str(baseline))
    assert code == ExitCode.OK
    assert "1 known from the baseline" in err
    # ... but something new does
    code, out, _ = run(str(LEAK), str(injected), "--baseline", str(baseline))
    assert code == ExitCode.FINDINGS
    assert "data_after_fin" in out
    assert "stuck_close_wait" not in out


def test_baseline_from_analyze_json(tmp_path: Path) -> None:
    baseline = tmp_path / "analyze.json"
    r = CliRunner().invoke(
        cli, ["analyze", "-f", "json", "-o", str(baseline), str(LEAK)], catch_exceptions=False
    )
    assert r.exit_code == 0
    assert run(str(LEAK), "--baseline", str(baseline))[0] == ExitCode.OK


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    assert run(str(LEAK), "--baseline", str(bad))[0] == ExitCode.USAGE


def test_assert_clean_passes_and_fails_readably(injected: Path) -> None:
    result = assert_clean(CLEAN)
    assert result.passed
    with pytest.raises(AssertionError) as info:
        assert_clean([LEAK, injected], close_wait_timeout=2)
    message = str(info.value)
    assert message.splitlines()[0].startswith("FAIL: ")
    assert "in 2 of 2 connections" in message.splitlines()[0]
    assert "stuck_close_wait" in message
    assert "data_after_fin" in message
    assert_clean(RESET)
    with pytest.raises(AssertionError, match="rst_terminated"):
        assert_clean(RESET, fail_on=["rst_terminated"])


def test_a_policy_can_keep_tunnels_closed(tmp_path: Path) -> None:
    from tcptrace_sm.check import run_check
    from tcptrace_sm.policy import load_policy

    tunnelled = SAMPLES / "formats" / "base-tun-vxlan-vlan.pcap"
    policy = tmp_path / "p.toml"
    policy.write_text("decapsulate = false\n")
    closed = run_check([tunnelled], load_policy(policy))
    assert closed.analysis.flow_records == []
    assert closed.analysis.summary["skipped"]["not_tcp"] > 0
    opened = run_check([tunnelled], load_policy(policy), decapsulate=True)  # the command line wins
    assert len(opened.analysis.flow_records) > 0
    policy.write_text('decapsulate = "no"\n')
    with pytest.raises(ValueError, match="decapsulate must be true or false"):
        load_policy(policy)
