"""Pieces shared by the ``tcpsm`` commands: exit codes, error handling, output, options."""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

import click

from tcptrace_sm.common import CaptureError, ReadStats
from tcptrace_sm.flows import MAX_FLOWS


class ExitCode(enum.IntEnum):
    OK = 0
    FINDINGS = 1  # the traffic breaks the policy (tcpsm check)
    USAGE = 2  # bad command line, or the output cannot be written
    BAD_INPUT = 3  # an input is not a usable capture
    INTERNAL = 70  # a bug of ours (EX_SOFTWARE): one line, and please report it
    INTERRUPTED = 130  # Ctrl-C


F = TypeVar("F", bound=Callable[..., Any])


def err(message: str) -> None:
    click.echo(f"tcpsm: {message}", err=True)


def handle_errors(fn: F) -> F:
    """Turn expected failures into one line on stderr and a distinct exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CaptureError as e:
            err(f"error: {e}")
            sys.exit(ExitCode.BAD_INPUT)
        except RuntimeError as e:
            if type(e).__name__ != "WorkerError":
                raise
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            err(f"internal error in a worker process (please report it): {first}")
            sys.exit(ExitCode.INTERNAL)
        except KeyboardInterrupt:
            err("interrupted")
            sys.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # the reader of our stdout went away (e.g. `| head`): not an error of ours
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the final flush
            sys.exit(ExitCode.OK)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a file that only appears (atomically) once it is completely written."""
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tcpsm-", suffix=".tmp", dir=directory)
    except OSError as e:
        err(f"error: cannot write {path}: {e.strerror}")
        sys.exit(ExitCode.USAGE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def print_warnings(stats: ReadStats) -> None:
    for w in stats.warnings:
        err(f"warning: {w}")


captures_argument = click.argument(
    "captures",
    nargs=-1,
    required=True,
    metavar="CAPTURE...",
    type=click.Path(dir_okay=False, allow_dash=True),
)
verify_option = click.option(
    "--verify-checksums",
    is_flag=True,
    help="Check checksums: a segment whose TCP checksum is wrong is ignored and reported "
    "(bad_checksum), a packet whose IPv4 header checksum is wrong is skipped. Off by default: "
    "captures taken on a sending host carry offloaded, 'wrong' checksums.",
)
decapsulate_option = click.option(
    "--no-decapsulate",
    "decapsulate",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Leave tunnels closed. By default TCP inside IP-in-IP, GRE, VXLAN, Geneve, GTP-U and Teredo "
    "is analysed as the inner connection (as Zeek does); with this, tunnel packets count as not_tcp.",
)
output_option = click.option(
    "-o", "--output", "output", metavar="FILE", default=None, help="Write the data to FILE instead of stdout."
)


time_wait_option = click.option(
    "--time-wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long TIME-WAIT lasts (2·MSL) before an endpoint counts as CLOSED; Linux uses 60 s.",
)
close_wait_option = click.option(
    "--close-wait-timeout",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Flag an endpoint as stuck_close_wait after this long in CLOSE-WAIT without sending anything.",
)
max_flows_option = click.option(
    "--max-flows",
    type=click.IntRange(min=1),
    default=MAX_FLOWS,
    show_default=True,
    metavar="N",
    help="Live connections kept at most; beyond, the least active are closed out early and "
    "reported as flow_evicted (a SYN flood cannot exhaust memory).",
)
jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Worker processes sharing the connections out [default: one per core for captures of "
    "32 MB or more, else one]; the answers are the same as with one.",
)
scheduler_option = click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Run on a Dask cluster (e.g. tcp://host:8786; needs tcptrace-sm[dask]); its workers "
    "read the captures from storage they share.",
)


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Without --jobs, inputs of this many bytes or more use one worker process per core.
PARALLEL_FROM = 32 << 20


def auto_jobs(paths: Sequence[str], jobs: int | None) -> int:
    """``--jobs``, or by default one worker per core once the inputs are big enough to pay for
    starting them (each one reads the input)."""
    if jobs:
        return jobs
    total = 0
    for p in paths:
        if p != "-":
            with contextlib.suppress(OSError):
                total += os.path.getsize(p)
    return default_jobs() if total >= PARALLEL_FROM else 1


def dask_client(address: str) -> Any:
    """A ``dask.distributed.Client`` for ``address`` (a usage error if Dask is missing)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise click.UsageError("--scheduler needs Dask: pip install 'tcptrace-sm[dask]'") from None
    try:
        return Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as e:
        raise click.UsageError(f"cannot reach the Dask scheduler at {address}: {e}") from None


class Progress:
    """A one-line progress report on stderr (bytes read of the total, packets/s, time left),
    redrawn at most five times a second; only on a terminal."""

    def __init__(self, paths: list[str], *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.total = 0
        for p in paths:
            if p != "-":
                with contextlib.suppress(OSError):
                    self.total += os.path.getsize(p)
        self.start = time.monotonic()
        self.shown = 0.0
        self.width = 0

    def __call__(self, stats: ReadStats) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.shown < 0.2:
            return
        self.shown = now
        elapsed = max(now - self.start, 1e-9)
        done = stats.bytes_read
        rate = stats.packets / elapsed
        text = f"tcpsm: {done / 1e6:,.1f} MB"
        if self.total:
            frac = min(done / self.total, 1.0)
            text = f"tcpsm: {frac:4.0%} {done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB"
            if 0 < frac < 1:
                left = elapsed * (1 - frac) / frac
                text += f", {int(left) // 60}:{int(left) % 60:02d} left"
        text += f", {rate / 1e3:,.0f}k packets/s"
        pad = max(self.width - len(text), 0)
        self.width = len(text)
        sys.stderr.write("\r" + text + " " * pad)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
