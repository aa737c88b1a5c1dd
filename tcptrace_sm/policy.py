"""Policies for ``tcpsm check``: what in recorded traffic fails a build.

A policy is evaluated against an :class:`~tcptrace_sm.analysis.Analysis` and yields
:class:`Finding` records; no printing and no exiting here (that is the CLI's job).

The default policy fails on every anomaly of severity ``error`` (protocol violations, stuck
CLOSE-WAIT). ``fail_on`` adds selectors, ``allow`` removes them; a selector is an anomaly
code, a category (violation, notable, artifact) or a severity (error, warning, info).
Per-service rules (``[[service]]`` tables) add expectations about how connections to a port
end. Policies come from a TOML file (``--policy FILE``) or from the ``[tool.tcpsm]`` table of
the nearest ``pyproject.toml``; unknown keys are errors, never ignored.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcptrace_sm.anomalies import CATALOGUE, Category, Severity

CLOSE_KINDS = ("fin", "half", "rst", "refused", "unanswered", "open")
SEVERITIES = tuple(s.value for s in Severity)
CATEGORIES = tuple(c.value for c in Category)


class PolicyError(ValueError):
    """A policy that cannot be used; the message is one line naming the file and key."""


def check_selector(selector: str) -> str:
    """Return ``selector`` if it names a code, a category or a severity; raise otherwise."""
    if selector in CATALOGUE or selector in SEVERITIES or selector in CATEGORIES:
        return selector
    raise PolicyError(
        f"unknown selector {selector!r}: use an anomaly code, a category ({', '.join(CATEGORIES)}) "
        f"or a severity ({', '.join(SEVERITIES)})"
    )


def _matches(selectors: Iterable[str], code: str) -> bool:
    kind = CATALOGUE[code]
    names = {code, kind.category.value, kind.severity.value}
    return any(s in names for s in selectors)


@dataclass(frozen=True)
class ServiceRule:
    """Expectations for the connections to one service (a server port, optionally an IP)."""

    name: str
    port: int
    ip: str | None = None
    close: tuple[str, ...] | None = None  # allowed ways to end, e.g. ("fin",)
    max_resets: int | None = None  # connections ended by RST (or refused), at most
    max_close_wait: float | None = None  # seconds an endpoint may spend in CLOSE-WAIT
    require_handshake: bool = False  # every connection completes its three-way handshake

    def covers(self, flow: Mapping[str, Any]) -> bool:
        return flow["server_port"] == self.port and (self.ip is None or flow["server_ip"] == self.ip)


@dataclass(frozen=True)
class Policy:
    fail_on: tuple[str, ...] = ("error",)
    allow: tuple[str, ...] = ()
    services: tuple[ServiceRule, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # analysis options from the file
    source: str = "defaults"

    def tightened(self, fail_on: Sequence[str] = (), allow: Sequence[str] = ()) -> Policy:
        """This policy plus command-line ``--fail-on`` / ``--allow`` selectors."""
        for s in (*fail_on, *allow):
            check_selector(s)
        extra = "".join(f" --fail-on {s}" for s in fail_on) + "".join(f" --allow {s}" for s in allow)
        return Policy(
            fail_on=(*self.fail_on, *fail_on),
            allow=(*self.allow, *allow),
            services=self.services,
            options=self.options,
            source=self.source + extra,
        )


_TOP_KEYS = {
    "fail_on", "allow", "service", "close_wait_timeout", "time_wait", "verify_checksums", "decapsulate",
}  # fmt: skip
_SERVICE_KEYS = {"name", "port", "ip", "close", "max_resets", "max_close_wait", "require_handshake"}


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{where}: expected a string or a list of strings")


def policy_from_mapping(data: Mapping[str, Any], source: str) -> Policy:
    """Build a policy from parsed TOML, rejecting anything unknown."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise PolicyError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    try:
        fail_on = tuple(
            check_selector(s) for s in _strings(data.get("fail_on", ["error"]), f"{source}: fail_on")
        )
        allow = tuple(check_selector(s) for s in _strings(data.get("allow", []), f"{source}: allow"))
    except PolicyError as e:
        raise PolicyError(f"{source}: {e}") from None
    options: dict[str, Any] = {}
    for key in ("close_wait_timeout", "time_wait"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise PolicyError(f"{source}: {key} must be a number of seconds >= 0")
            options[key] = float(value)
    for key in ("verify_checksums", "decapsulate"):
        if key in data:
            if not isinstance(data[key], bool):
                raise PolicyError(f"{source}: {key} must be true or false")
            options[key] = data[key]
    raw_services = data.get("service", [])
    if not isinstance(raw_services, list):
        raise PolicyError(f"{source}: service must be an array of tables ([[service]])")
    services = tuple(_service(s, f"{source}: service #{i + 1}") for i, s in enumerate(raw_services))
    return Policy(fail_on, allow, services, options, source)


def _service(data: object, where: str) -> ServiceRule:
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: expected a table")
    unknown = sorted(set(data) - _SERVICE_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_SERVICE_KEYS))})")
    port = data.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise PolicyError(f"{where}: port must be a number from 0 to 65535")
    close = None
    if "close" in data:
        close = _strings(data["close"], f"{where}: close")
        bad = [c for c in close if c not in CLOSE_KINDS]
        if bad:
            raise PolicyError(f"{where}: close {bad[0]!r} is not one of {', '.join(CLOSE_KINDS)}")
    max_resets = data.get("max_resets")
    if max_resets is not None and (
        isinstance(max_resets, bool) or not isinstance(max_resets, int) or max_resets < 0
    ):
        raise PolicyError(f"{where}: max_resets must be a whole number >= 0")
    max_cw = data.get("max_close_wait")
    if max_cw is not None and (
        isinstance(max_cw, bool) or not isinstance(max_cw, (int, float)) or max_cw < 0
    ):
        raise PolicyError(f"{where}: max_close_wait must be a number of seconds >= 0")
    handshake = data.get("require_handshake", False)
    if not isinstance(handshake, bool):
        raise PolicyError(f"{where}: require_handshake must be true or false")
    ip = data.get("ip")
    if ip is not None and not isinstance(ip, str):
        raise PolicyError(f"{where}: ip must be a string")
    name = data.get("name", f"port {port}")
    if not isinstance(name, str):
        raise PolicyError(f"{where}: name must be a string")
    return ServiceRule(
        name=name,
        port=port,
        ip=ip,
        close=close,
        max_resets=max_resets,
        max_close_wait=None if max_cw is None else float(max_cw),
        require_handshake=handshake,
    )


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """A policy file: TOML with the keys documented in the README."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"{p}: cannot read the policy: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"{p}: not valid TOML: {e}") from None
    return policy_from_mapping(data, str(p))


def discover_policy(start: str | os.PathLike[str] | None = None) -> Policy:
    """The ``[tool.tcpsm]`` table of the nearest ``pyproject.toml`` above ``start``, or defaults."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise PolicyError(f"{candidate}: cannot read it: {e}") from None
            table = data.get("tool", {}).get("tcpsm")
            if table is None:
                return Policy()
            if not isinstance(table, dict):
                raise PolicyError(f"{candidate}: [tool.tcpsm] must be a table")
            return policy_from_mapping(table, f"{candidate} [tool.tcpsm]")
    return Policy()


# --- findings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One reason the traffic fails the policy."""

    rule: str  # "anomaly" or the service rule: "close", "max_resets", "max_close_wait", "require_handshake"
    code: str  # the anomaly code, or the rule name
    detail: str
    flow_id: int | None = None
    client: str | None = None
    server: str | None = None
    frame: int | None = None
    ts: int | None = None
    service: str | None = None
    measure: float | None = None  # for rules with a limit: the measured value

    @property
    def key(self) -> str:
        """Stable across runs (no flow ids, ports of clients or times): for baselines."""
        where = self.service or (self.server.rsplit(":", 1)[-1] if self.server else "")
        return f"{self.rule}|{self.code}|{where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rule": self.rule,
            "code": self.code,
            "flow_id": self.flow_id,
            "client": self.client,
            "server": self.server,
            "frame": self.frame,
            "ts": self.ts,
            "service": self.service,
            "measure": self.measure,
            "detail": self.detail,
        }


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def close_wait_seconds(transitions: Iterable[Mapping[str, Any]], end_ts: int) -> dict[tuple[int, str], float]:
    """Seconds each endpoint spent in CLOSE-WAIT (up to ``end_ts`` if still there)."""
    spent: dict[tuple[int, str], float] = defaultdict(float)
    entered: dict[tuple[int, str], int] = {}
    for t in sorted(transitions, key=lambda t: t["ts"]):
        key = (t["flow_id"], t["side"])
        if t["to_state"] == "CLOSE-WAIT":
            entered[key] = t["ts"]
        elif t["from_state"] == "CLOSE-WAIT" and key in entered:
            spent[key] += (t["ts"] - entered.pop(key)) / 1e9
    for key, ts in entered.items():
        spent[key] += max(end_ts - ts, 0) / 1e9
    return dict(spent)


def evaluate(
    policy: Policy,
    flows: Sequence[Mapping[str, Any]],
    anomalies: Sequence[Mapping[str, Any]],
    transitions: Sequence[Mapping[str, Any]],
    end_ts: int,
) -> list[Finding]:
    """Every finding of ``policy`` on one analysis, in flow order."""
    by_id = {f["flow_id"]: f for f in flows}
    findings: list[Finding] = []
    for a in anomalies:
        if _matches(policy.fail_on, a["code"]) and not _matches(policy.allow, a["code"]):
            f = by_id.get(a["flow_id"], {})
            findings.append(
                Finding(
                    "anomaly",
                    a["code"],
                    a["detail"],
                    flow_id=a["flow_id"],
                    client=_ep(f["client_ip"], f["client_port"]) if f else None,
                    server=_ep(f["server_ip"], f["server_port"]) if f else None,
                    frame=a["frame"],
                    ts=a["ts"],
                )
            )
    if policy.services:
        cw = close_wait_seconds(transitions, end_ts)
        established = {(t["flow_id"], t["side"]) for t in transitions if t["to_state"] == "ESTABLISHED"}
        for rule in policy.services:
            findings.extend(_service_findings(rule, [f for f in flows if rule.covers(f)], cw, established))
    findings.sort(key=lambda x: (x.flow_id is None, x.flow_id or 0, x.ts or 0))
    return findings


def _service_findings(
    rule: ServiceRule,
    flows: list[Mapping[str, Any]],
    cw: Mapping[tuple[int, str], float],
    established: set[tuple[int, str]],
) -> list[Finding]:
    out = []
    for f in flows:
        fid = f["flow_id"]
        where = {
            "flow_id": fid,
            "client": _ep(f["client_ip"], f["client_port"]),
            "server": _ep(f["server_ip"], f["server_port"]),
            "ts": f["first_ts"],
            "service": rule.name,
        }
        if rule.close is not None and f["close"] not in rule.close:
            out.append(
                Finding(
                    "close",
                    f"close_{f['close']}",
                    f"{rule.name}: connection ended as '{f['close']}', "
                    f"the policy wants {' or '.join(rule.close)}",
                    **where,
                )
            )
        if rule.max_close_wait is not None:
            for side in ("client", "server"):
                seconds = cw.get((fid, side), 0.0)
                if seconds > rule.max_close_wait:
                    out.append(
                        Finding(
                            "max_close_wait",
                            "max_close_wait",
                            f"{rule.name}: the {side} spent {seconds:.3f} s in CLOSE-WAIT, "
                            f"the policy allows {rule.max_close_wait:g} s",
                            measure=round(seconds, 3),
                            **where,
                        )
                    )
        if (
            rule.require_handshake
            and not f["midstream"]
            and not ((fid, "client") in established and (fid, "server") in established)
        ):
            out.append(
                Finding(
                    "require_handshake",
                    "require_handshake",
                    f"{rule.name}: the handshake did not complete (ended as '{f['close']}', "
                    f"client {f['client_state']}, server {f['server_state']})",
                    **where,
                )
            )
    if rule.max_resets is not None:
        resets = [f for f in flows if f["close"] in ("rst", "refused")]
        if len(resets) > rule.max_resets:
            out.append(
                Finding(
                    "max_resets",
                    "max_resets",
                    f"{rule.name}: {len(resets)} connections ended by RST, "
                    f"the policy allows {rule.max_resets} "
                    f"(flows {', '.join(str(f['flow_id']) for f in resets[:10])}"
                    f"{', …' if len(resets) > 10 else ''})",
                    service=rule.name,
                    measure=len(resets),
                )
            )
    return out


# --- baselines ---------------------------------------------------------------------------------


def load_baseline(path: str | os.PathLike[str]) -> dict[str, float | None]:
    """Keys (and measures) of an earlier ``tcpsm check -f json`` or ``tcpsm analyze -f json``."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"{p}: cannot read the baseline: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"{p}: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{p}: not a tcpsm JSON document")
    keys: dict[str, float | None] = {}
    if "findings" in doc:  # tcpsm check --format json
        for f in doc["findings"]:
            key, measure = f.get("key"), f.get("measure")
            if isinstance(key, str):
                old = keys.get(key)
                keys[key] = measure if old is None or (measure is not None and measure > old) else old
        return keys
    if "anomalies" in doc and "flows" in doc:  # tcpsm analyze --format json: every anomaly counts
        ports = {f["flow_id"]: f["server_port"] for f in doc["flows"]}
        for a in doc["anomalies"]:
            keys[f"anomaly|{a['code']}|{ports.get(a['flow_id'], '')}"] = None
        return keys
    raise PolicyError(f"{p}: not the JSON of tcpsm check or tcpsm analyze")


def new_findings(findings: Sequence[Finding], baseline: Mapping[str, float | None]) -> list[Finding]:
    """What the baseline did not have: new keys, or a larger measure than before."""
    out = []
    for f in findings:
        if f.key not in baseline:
            out.append(f)
            continue
        old = baseline[f.key]
        if f.measure is not None and old is not None and f.measure > old:
            out.append(f)
    return out
