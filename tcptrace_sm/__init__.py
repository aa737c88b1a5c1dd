"""tcptrace_sm: both endpoints' RFC 9293 TCP states, reconstructed from packet captures.

    >>> import tcptrace_sm
    >>> a = tcptrace_sm.analyze("capture.pcap", close_wait_timeout=5)
    >>> a.flows, a.anomalies, a.transitions, a.summary

The package imports lazily: ``import tcptrace_sm`` alone loads neither numpy nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = ["Analysis", "CaptureError", "Options", "__version__", "analyze"]

if TYPE_CHECKING:
    from tcptrace_sm.analysis import Analysis, analyze
    from tcptrace_sm.common import CaptureError, Options


def __getattr__(name: str) -> Any:
    if name in ("analyze", "Analysis"):
        from tcptrace_sm import analysis

        return getattr(analysis, name)
    if name in ("CaptureError", "Options"):
        from tcptrace_sm import common

        return getattr(common, name)
    raise AttributeError(f"module 'tcptrace_sm' has no attribute {name!r}")
