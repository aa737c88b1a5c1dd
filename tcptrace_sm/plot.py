"""Matplotlib figures for notebooks (``pip install "tcptrace-sm[plot]"``).

from tcptrace_sm import plot
plot.states_over_time(a)     # endpoints in each state over time
plot.time_in_state(a)        # how long endpoints stayed in each state
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcptrace_sm.html import _COLORS, state_counts_over_time
from tcptrace_sm.html import time_in_state as _time_in_state
from tcptrace_sm.model import TcpState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tcptrace_sm.analysis import Analysis


def _figure_class() -> type[Figure]:
    """matplotlib's Figure (no pyplot: no global state, no GUI backend needed)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError('plotting needs matplotlib: pip install "tcptrace-sm[plot]"') from e
    return Figure


def states_over_time(a: Analysis, *, points: int = 400) -> Figure:
    """A line per state: how many endpoints were in it, over the capture's time."""
    figure_cls = _figure_class()
    start = a.summary["first_ts"] or 0
    end = a.summary["last_ts"] or start
    times, series = state_counts_over_time(a.transition_records, start, end, points)
    seconds = [(t - start) / 1e9 for t in times]
    fig = figure_cls(figsize=(10, 4))
    ax = fig.subplots()
    for name, values in series.items():
        ax.step(seconds, values, where="post", label=name, color=_COLORS.get(name))
    ax.set_xlabel("seconds since the first packet")
    ax.set_ylabel("endpoints")
    ax.set_title("Endpoints in each TCP state")
    if series:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def time_in_state(a: Analysis) -> Figure:
    """A box plot per state of the seconds endpoints spent in it."""
    figure_cls = _figure_class()
    end = a.summary["last_ts"] or 0
    spent = _time_in_state(a.transition_records, end)
    names = [s.value for s in TcpState if spent.get(s.value)]
    fig = figure_cls(figsize=(10, 4))
    ax = fig.subplots()
    if names:
        ax.boxplot([spent[n] for n in names], tick_labels=names, orientation="horizontal")
    ax.set_xlabel("seconds in state (per endpoint visit)")
    ax.set_title("Time in state")
    return fig
