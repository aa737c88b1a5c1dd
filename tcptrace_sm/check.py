"""``tcpsm check``: a CI gate on recorded traffic (exit 0 pass, 1 fail, 2 usage, 3 bad input)."""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click

from tcptrace_sm.analysis import Analysis, analyze
from tcptrace_sm.clikit import (
    ExitCode,
    auto_jobs,
    captures_argument,
    decapsulate_option,
    err,
    handle_errors,
    jobs_option,
    output_option,
    output_stream,
    print_warnings,
    verify_option,
)
from tcptrace_sm.policy import (
    Finding,
    Policy,
    PolicyError,
    discover_policy,
    evaluate,
    load_baseline,
    load_policy,
    new_findings,
)
from tcptrace_sm.report import ts_human


@dataclass
class CheckResult:
    """What a check found: every finding, the ones that fail, and the verdict line."""

    analysis: Analysis
    policy: Policy
    findings: list[Finding]
    failing: list[Finding]
    baseline: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failing

    @property
    def verdict(self) -> str:
        conns = len(self.analysis.flow_records)
        where = f"policy: {self.policy.source}" + (f"; baseline: {self.baseline}" if self.baseline else "")
        if self.passed:
            known = len(self.findings)
            extra = f", {known} known from the baseline" if known else ""
            return f"PASS: {conns} connection{'s' if conns != 1 else ''}, no new finding{extra} ({where})"
        flows = {f.flow_id for f in self.failing if f.flow_id is not None}
        return (
            f"FAIL: {len(self.failing)} finding{'s' if len(self.failing) != 1 else ''} in {len(flows)} of "
            f"{conns} connection{'s' if conns != 1 else ''} ({where})"
        )


def run_check(
    paths: Sequence[str | os.PathLike[str]],
    policy: Policy,
    *,
    baseline: str | os.PathLike[str] | None = None,
    **options: Any,
) -> CheckResult:
    """Analyse and apply ``policy`` (options from the policy file, then ``options``, win)."""
    merged = {**policy.options, **{k: v for k, v in options.items() if v is not None}}
    a = analyze(list(paths), **merged)
    end = a.stats.last_ts or 0
    findings = evaluate(policy, a.flow_records, a.anomaly_records, a.transition_records, end)
    failing = findings
    if baseline is not None:
        failing = new_findings(findings, load_baseline(baseline))
    return CheckResult(a, policy, findings, failing, str(baseline) if baseline is not None else None)


def finding_line(f: Finding) -> str:
    where = f"flow {f.flow_id} {f.client} -> {f.server}" if f.flow_id is not None else f"service {f.service}"
    at = ""
    if f.frame is not None:
        at = f" at frame {f.frame}"
    if f.ts is not None:
        at += f" ({ts_human(f.ts)})"
    return f"{where} {f.code}{at}: {f.detail}"


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def write_text(out: IO[str], result: CheckResult) -> None:
    for f in result.failing:
        out.write(finding_line(f) + "\n")


def write_github(out: IO[str], result: CheckResult, files: Sequence[str]) -> None:
    """GitHub Actions workflow commands: one error annotation per failing finding."""
    file_prop = f"file={_github_escape(files[0], prop=True)}," if len(files) == 1 else ""
    for f in result.failing:
        title = _github_escape(f"tcpsm {f.code}", prop=True)
        out.write(f"::error {file_prop}title={title}::{_github_escape(finding_line(f))}\n")


def write_json(out: IO[str], result: CheckResult) -> None:
    doc = {
        "passed": result.passed,
        "verdict": result.verdict,
        "policy": result.policy.source,
        "summary": result.analysis.summary,
        "findings": [f.as_dict() for f in result.findings],
        "failing": [f.key for f in result.failing],
    }
    json.dump(doc, out, indent=2, default=str)
    out.write("\n")


def junit_xml(result: CheckResult) -> ET.ElementTree[ET.Element]:
    """One test case per connection (failures: its findings) and per service-wide rule."""
    failing_by_flow: dict[int | None, list[Finding]] = {}
    for f in result.failing:
        failing_by_flow.setdefault(f.flow_id, []).append(f)
    suite = ET.Element(
        "testsuite",
        name="tcpsm check",
        tests="0",
        failures=str(len({f.flow_id for f in result.failing if f.flow_id is not None})),
        errors="0",
    )
    count = 0
    for flow in result.analysis.flow_records:
        count += 1
        client = f"{flow['client_ip']}:{flow['client_port']}"
        server = f"{flow['server_ip']}:{flow['server_port']}"
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"tcpsm.{server}",
            name=f"flow {flow['flow_id']} {client} -> {server}",
            time=f"{flow['duration']:.6f}",
        )
        problems = failing_by_flow.get(flow["flow_id"], [])
        for f in problems:
            failure = ET.SubElement(case, "failure", message=f"{f.code}: {f.detail}", type=f.code)
            failure.text = finding_line(f)
    service_wide = failing_by_flow.get(None, [])
    for f in service_wide:
        count += 1
        case = ET.SubElement(suite, "testcase", classname="tcpsm.policy", name=f"{f.service}: {f.rule}")
        failure = ET.SubElement(case, "failure", message=f.detail, type=f.code)
        failure.text = finding_line(f)
    suite.set("tests", str(count))
    suite.set(
        "failures", str(len({f.flow_id for f in result.failing if f.flow_id is not None}) + len(service_wide))
    )
    return ET.ElementTree(suite)


def _write_junit(path: str, result: CheckResult) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tcpsm-", suffix=".xml", dir=target.parent.resolve())
    with os.fdopen(fd, "wb") as f:
        junit_xml(result).write(f, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, target)


@click.command()
@captures_argument
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="SELECTOR",
    help="Also fail on this anomaly code, category or severity (repeatable).",
)
@click.option(
    "--allow",
    multiple=True,
    metavar="SELECTOR",
    help="Do not fail on this code, category or severity (repeatable).",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Policy file (TOML). Without it, [tool.tcpsm] of the nearest pyproject.toml, else the defaults.",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON of an earlier `tcpsm check -f json` (or `tcpsm analyze -f json`): only new findings fail.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Findings as text lines, one JSON document, or GitHub Actions annotations.",
)
@output_option
@click.option("--junit", metavar="FILE", default=None, help="Also write a JUnit XML report to FILE.")
@click.option(
    "--time-wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="As in analyze (default 60, or the policy's).",
)
@click.option(
    "--close-wait-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="As in analyze (default 1, or the policy's).",
)
@verify_option
@decapsulate_option
@jobs_option
@handle_errors
def check(
    captures: tuple[str, ...],
    fail_on: tuple[str, ...],
    allow: tuple[str, ...],
    policy_file: str | None,
    baseline: str | None,
    fmt: str,
    output: str | None,
    junit: str | None,
    time_wait: float | None,
    close_wait_timeout: float | None,
    verify_checksums: bool,
    decapsulate: bool,
    jobs: int | None,
) -> None:
    """Fail (exit 1) when the recorded traffic breaks the policy; pass (exit 0) otherwise."""
    try:
        policy = load_policy(policy_file) if policy_file else discover_policy()
        policy = policy.tightened(fail_on, allow)
    except PolicyError as e:
        raise click.UsageError(str(e)) from None
    with output_stream(output) as out:
        try:
            result = run_check(
                captures,
                policy,
                baseline=baseline,
                time_wait=time_wait,
                close_wait_timeout=close_wait_timeout,
                verify_checksums=verify_checksums or None,
                decapsulate=None if decapsulate else False,
                jobs=auto_jobs(captures, jobs),
            )
        except PolicyError as e:
            raise click.UsageError(str(e)) from None
        print_warnings(result.analysis.stats)
        if fmt == "json":
            write_json(out, result)
        elif fmt == "github":
            write_github(out, result, captures)
        else:
            write_text(out, result)
    if junit:
        _write_junit(junit, result)
    err(result.verdict)
    raise SystemExit(ExitCode.OK if result.passed else ExitCode.FINDINGS)
