"""Pieces shared by the ``tcpsm`` commands: exit codes, error handling, output, options."""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import click

from tcptrace_sm.capture import CaptureError, ReadStats
from tcptrace_sm.flows import MAX_FLOWS


class ExitCode(enum.IntEnum):
    OK = 0
    FINDINGS = 1  # the traffic breaks the policy (tcpsm check)
    USAGE = 2  # bad command line, or the output cannot be written
    BAD_INPUT = 3  # an input is not a usable capture
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
    help="Drop (and count) segments whose IPv4 or TCP checksum is wrong. Off by default: captures "
    "taken on a sending host carry offloaded, 'wrong' checksums.",
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
