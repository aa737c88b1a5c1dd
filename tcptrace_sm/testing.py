"""A pytest helper for teams that test networked code in Python.

    from tcptrace_sm.testing import assert_clean

    def test_service_closes_its_sockets(tmp_path):
        pcap = record_integration_run(tmp_path)      # e.g. tcpdump around the test
        assert_clean(pcap, close_wait_timeout=2, fail_on=["rst_terminated"])

``assert_clean`` applies the same policy as ``tcpsm check`` (the ``[tool.tcpsm]`` table of the
nearest pyproject.toml unless ``policy`` is given) and fails with a readable list of findings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tcptrace_sm.check import CheckResult, finding_line, run_check
from tcptrace_sm.policy import Policy, discover_policy, load_policy

__all__ = ["assert_clean"]


def assert_clean(
    capture: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    fail_on: Sequence[str] = (),
    allow: Sequence[str] = (),
    policy: Policy | str | os.PathLike[str] | None = None,
    baseline: str | os.PathLike[str] | None = None,
    **options: Any,
) -> CheckResult:
    """Raise ``AssertionError`` listing every finding if the capture breaks the policy."""
    paths = [capture] if isinstance(capture, (str, os.PathLike)) else list(capture)
    if policy is None:
        base = discover_policy()
    elif isinstance(policy, Policy):
        base = policy
    else:
        base = load_policy(policy)
    result = run_check(paths, base.tightened(fail_on, allow), baseline=baseline, **options)
    if not result.passed:
        lines = [result.verdict, *(f"  {finding_line(f)}" for f in result.failing)]
        raise AssertionError("\n".join(lines))
    return result
