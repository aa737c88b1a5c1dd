"""The Python API that notebooks use."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import SAMPLES

import tcptrace_sm
from tcptrace_sm.analysis import ANOMALY_COLUMNS, FLOW_COLUMNS, TRANSITION_COLUMNS

KERNEL = SAMPLES / "kernel"


@pytest.fixture(scope="module")
def leak() -> tcptrace_sm.Analysis:
    return tcptrace_sm.analyze(KERNEL / "close_wait_leak.pcap", close_wait_timeout=2)


def test_dataframes_have_the_documented_columns(leak: tcptrace_sm.Analysis) -> None:
    assert tuple(leak.flows.columns) == FLOW_COLUMNS
    assert tuple(leak.anomalies.columns) == ANOMALY_COLUMNS
    assert tuple(leak.transitions.columns) == TRANSITION_COLUMNS


def test_states_and_codes_are_categorical_and_times_are_utc(leak: tcptrace_sm.Analysis) -> None:
    flows, anomalies, transitions = leak.flows, leak.anomalies, leak.transitions
    assert isinstance(flows["server_state"].dtype, pd.CategoricalDtype)
    assert "TIME-WAIT" in flows["server_state"].cat.categories
    assert isinstance(anomalies["code"].dtype, pd.CategoricalDtype)
    assert isinstance(transitions["to_state"].dtype, pd.CategoricalDtype)
    assert str(flows["first_ts"].dt.tz) == "UTC"
    assert str(transitions["ts"].dt.tz) == "UTC"
    assert flows.loc[0, "server_state"] == "CLOSE-WAIT"
    assert list(anomalies.code) == ["stuck_close_wait"]
    assert anomalies.loc[0, "side"] == "server"


def test_summary(leak: tcptrace_sm.Analysis) -> None:
    s = leak.summary
    assert s["connections"] == 1
    assert s["close"] == {"half": 1}
    assert s["anomalies"] == {"stuck_close_wait": 1}
    assert s["packets"] == s["segments"] + sum(s["skipped"].values())
    assert s["options"]["close_wait_timeout"] == 2


def test_empty_results_still_have_typed_frames() -> None:
    a = tcptrace_sm.analyze(KERNEL / "orderly_client_close.pcap")
    assert a.anomalies.empty
    assert tuple(a.anomalies.columns) == ANOMALY_COLUMNS


def test_capture_error_is_a_value_error(tmp_path: object) -> None:
    assert issubclass(tcptrace_sm.CaptureError, ValueError)
    with pytest.raises(tcptrace_sm.CaptureError):
        tcptrace_sm.analyze(SAMPLES / "kernel" / "README.md")


def test_bad_option_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="time_wait"):
        tcptrace_sm.analyze(KERNEL / "refused.pcap", time_wait=-1)


def test_importing_the_package_loads_neither_pandas_nor_numpy() -> None:
    code = "import sys, tcptrace_sm; print([m for m in ('pandas', 'numpy', 'dpkt') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
