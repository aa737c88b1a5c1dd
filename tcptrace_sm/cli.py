"""The ``tcpsm`` command: the only module that prints or exits.

Data goes to stdout (or ``-o FILE``, written atomically); the summary, warnings and errors go
to stderr, so ``tcpsm analyze x.pcap --format csv | ...`` pipes clean data.

Only numpy-free modules are imported here at module level (:mod:`tcptrace_sm.common` and the
like); the reader, the analysis and the engines are imported by the code that runs them, so
that starting a command loads no numpy before it is needed (``tests/test_startup.py``).
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Final

import click

from tcptrace_sm import __version__
from tcptrace_sm.clikit import (
    ExitCode,
    Progress,
    auto_jobs,
    captures_argument,
    close_wait_option,
    dask_client,
    decapsulate_option,
    err,
    handle_errors,
    jobs_option,
    max_flows_option,
    output_option,
    output_stream,
    print_warnings,
    scheduler_option,
    time_wait_option,
    verify_option,
)
from tcptrace_sm.common import (
    ANOMALY_COLUMNS,
    ENGINES,
    FLOW_COLUMNS,
    TRANSITION_COLUMNS,
    Options,
    ReadStats,
    Summary,
    summarize,
)
from tcptrace_sm.flows import MAX_FLOWS
from tcptrace_sm.model import Segment, TcpOptions, flags_str
from tcptrace_sm.report import (
    CsvWriter,
    JsonlWriter,
    render_table,
    summary_lines,
    write_csv,
    write_json,
    write_jsonl,
)

if TYPE_CHECKING:
    from tcptrace_sm.analysis import Analysis, Block

#: CSV bytes the express path gathers before each write (see tcptrace_sm.express.to_csv)
EXPRESS_FLUSH = 1 << 20

#: commands imported when named: name -> (module, attribute)
_LAZY: Final = {"check": ("tcptrace_sm.check", "check")}


class _Commands(click.Group):
    """The commands; ``check`` (policies, JUnit and annotation writers) is imported only when
    it is named or listed, so that ``tcpsm analyze`` does not start slower for it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, name = _LAZY[cmd_name]
            self.add_command(getattr(importlib.import_module(module), name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="tcpsm")
def cli() -> None:
    """Reconstruct both endpoints' TCP states from packet captures and report what went wrong."""


def _analyze(
    captures: tuple[str, ...],
    time_wait: float,
    close_wait_timeout: float,
    verify: bool,
    max_flows: int = MAX_FLOWS,
    decapsulate: bool = True,
    jobs: int | None = None,
) -> Analysis:
    """The analysis every command starts from; read warnings go to stderr at once."""
    from tcptrace_sm.analysis import analyze

    result = analyze(
        list(captures),
        time_wait=time_wait,
        close_wait_timeout=close_wait_timeout,
        verify_checksums=verify,
        max_flows=max_flows,
        decapsulate=decapsulate,
        jobs=auto_jobs(captures, jobs),
    )
    print_warnings(result.stats)
    return result


@cli.command()
@captures_argument
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "jsonl"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--records",
    type=click.Choice(["flows", "anomalies", "transitions"]),
    default=None,
    help="Record set for csv, jsonl and table output [default: flows; the table shows flows and anomalies].",
)
@output_option
@time_wait_option
@close_wait_option
@verify_option
@decapsulate_option
@max_flows_option
@jobs_option
@scheduler_option
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="fast",
    show_default=True,
    help="'reference' runs every segment through the plain per-segment core (same answers, slower).",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr (warnings and errors still show).")
@handle_errors
def analyze_cmd(
    captures: tuple[str, ...],
    fmt: str,
    records: str | None,
    output: str | None,
    time_wait: float,
    close_wait_timeout: float,
    verify_checksums: bool,
    decapsulate: bool,
    max_flows: int,
    jobs: int | None,
    scheduler: str | None,
    engine: str,
    quiet: bool,
) -> None:
    """Analyse CAPTURE files (pcap, pcapng, gzipped; '-' for stdin), merged in time order.

    CSV and JSON Lines are written as connections finish (constant memory, rows in the order
    connections end, like Zeek's conn.log); the table and JSON list flows by flow_id, the frame
    number of each connection's first segment.
    """
    options = Options(
        time_wait=time_wait,
        close_wait_timeout=close_wait_timeout,
        verify_checksums=verify_checksums,
        max_flows=max_flows,
        decapsulate=decapsulate,
    )
    client = dask_client(scheduler) if scheduler else None
    try:
        _analyze_to(captures, fmt, records, output, options, jobs, client, engine, quiet)
    finally:
        if client is not None:
            client.close()


def _analyze_to(
    captures: tuple[str, ...],
    fmt: str,
    records: str | None,
    output: str | None,
    options: Options,
    jobs: int | None,
    client: Any,
    engine: str,
    quiet: bool,
) -> None:
    progress = Progress(list(captures), enabled=not quiet)
    plist = list(captures)
    # worker processes pay off on big inputs only (each one starts and reads the input)
    njobs = auto_jobs(plist, jobs)
    with output_stream(output) as out:  # opened first: fail before the work, not after it
        stats = ReadStats(files=[])
        express_done = None
        plain = fmt == "csv" and records in (None, "flows") and client is None and engine == "fast"
        if plain and len(plist) == 1:
            # most captures: one compiled pass, no numpy (it gives up when it must)
            from tcptrace_sm import express

            shown = progress if progress.enabled else None
            express_done = express.to_csv(out, plist[0], options, njobs, flush=EXPRESS_FLUSH, progress=shown)
        if express_done is not None:
            progress.close()
            stats, totals = express_done
            summary = summarize(stats, options, totals)
        elif fmt in ("csv", "jsonl") and client is None and njobs > 1 and "-" not in plist:
            # the workers render the rows themselves: formatting runs in parallel too
            from tcptrace_sm.parallel import parallel_lines

            name = records or "flows"
            lines_it = parallel_lines(
                plist, options, stats, njobs, fmt, name, engine=engine, progress=progress
            )
            if fmt == "csv":
                out.write(",".join(_RECORD_SETS[name][1]) + "\n")
            totals = Summary()
            try:
                for _fids, lines, part in lines_it:
                    totals.merge(part)
                    if lines:
                        out.write("\n".join(lines))
                        out.write("\n")
            finally:
                progress.close()
            summary = summarize(stats, options, totals)
            print_warnings(stats)
        else:
            from tcptrace_sm.analysis import Analysis, Block, blocks

            streaming = fmt in ("csv", "jsonl")
            it = _closing(
                blocks(
                    plist,
                    options,
                    stats=stats,
                    engine=engine,
                    jobs=njobs,
                    client=client,
                    progress=progress,
                    # rows of flows or anomalies need no transition records (less work)
                    transitions=not streaming or records == "transitions",
                ),
                progress,
            )
            if streaming:
                attr, columns = _RECORD_SETS[records or "flows"]
                writer = (CsvWriter if fmt == "csv" else JsonlWriter)(out, columns)
                totals = Summary()
                for b in it:
                    totals.add(b)
                    writer.write(getattr(b, attr))
                summary = summarize(stats, options, totals)
                print_warnings(stats)
            else:
                whole = Block()
                for b in it:
                    whole.extend(b)
                whole.sort()
                result = Analysis(options, stats, whole, engine)
                print_warnings(stats)
                summary = result.summary
                _write_analysis(out, result, fmt, records)
        if not quiet:
            for line in summary_lines(summary):
                err(line)


analyze_cmd.name = "analyze"


def _closing(it: Iterator[Block], progress: Progress) -> Iterator[Block]:
    try:
        yield from it
    finally:
        progress.close()


_RECORD_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "flows": ("flows", FLOW_COLUMNS),
    "anomalies": ("anomalies", ANOMALY_COLUMNS),
    "transitions": ("transitions", TRANSITION_COLUMNS),
}

_RECORD_LISTS = {"flows": "flow_records", "anomalies": "anomaly_records", "transitions": "transition_records"}

_FLOW_TABLE_COLUMNS = (
    "flow_id",
    "client",
    "server",
    "first_ts",
    "packets",
    "bytes",
    "client_state",
    "server_state",
    "close",
    "rst_by",
    "errno",
    "anomalies",
)


def _write_analysis(out: IO[str], result: Analysis, fmt: str, records: str | None) -> None:
    if fmt == "json":
        write_json(
            out,
            {
                "summary": result.summary,
                "flows": result.flow_records,
                "anomalies": result.anomaly_records,
                "transitions": result.transition_records,
            },
        )
        return
    attr, columns = _RECORD_SETS[records or "flows"]
    rows: list[dict[str, Any]] = getattr(result, _RECORD_LISTS[attr])
    if fmt == "csv":
        write_csv(out, rows, columns)
    elif fmt == "jsonl":
        write_jsonl(out, rows)
    elif records is None:
        flows = [
            {
                **f,
                "client": _endpoint(f["client_ip"], f["client_port"]),
                "server": _endpoint(f["server_ip"], f["server_port"]),
            }
            for f in result.flow_records
        ]
        out.write(render_table(flows, _FLOW_TABLE_COLUMNS, headers={"flow_id": "flow"}))
        if result.anomaly_records:
            out.write("\n")
            out.write(
                render_table(
                    result.anomaly_records, ANOMALY_COLUMNS, headers={"flow_id": "flow"}, max_width=100
                )
            )
    else:
        out.write(render_table(rows, columns, headers={"flow_id": "flow"}, max_width=100))


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


SEGMENT_COLUMNS = (
    "frame",
    "ts",
    "src",
    "sport",
    "dst",
    "dport",
    "flags",
    "seq",
    "ack",
    "win",
    "len",
    "options",
)


def _options_text(raw: bytes, parse_options: Callable[[bytes], TcpOptions]) -> str:
    if not raw:
        return ""
    o = parse_options(raw)
    parts = []
    if o.mss is not None:
        parts.append(f"mss={o.mss}")
    if o.wscale is not None:
        parts.append(f"wscale={o.wscale}")
    if o.sack_permitted:
        parts.append("sack_perm")
    if o.sack:
        parts.append("sack=" + ",".join(f"{a}-{b}" for a, b in o.sack))
    if o.ts_val is not None:
        parts.append(f"ts={o.ts_val}/{o.ts_ecr}")
    if o.fastopen is not None:
        parts.append(f"tfo={o.fastopen.hex() or 'request'}")
    return " ".join(parts)


@cli.command()
@captures_argument
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@output_option
@verify_option
@decapsulate_option
@click.option("-n", "--limit", type=click.IntRange(min=0), default=None, help="Stop after N segments.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@handle_errors
def segments(
    captures: tuple[str, ...],
    fmt: str,
    output: str | None,
    verify_checksums: bool,
    decapsulate: bool,
    limit: int | None,
    quiet: bool,
) -> None:
    """List the TCP segments exactly as the analysis sees them."""
    from tcptrace_sm.capture import parse_options, read_segments

    stats = ReadStats(files=[])
    segs = read_segments(
        list(captures), verify_checksums=verify_checksums, stats=stats, decapsulate=decapsulate
    )
    rows = (_segment_row(seg, parse_options) for seg in itertools.islice(segs, limit))
    with output_stream(output) as out:
        if fmt == "csv":
            write_csv(out, rows, SEGMENT_COLUMNS)  # streams: constant memory on any capture
        elif fmt == "jsonl":
            write_jsonl(out, rows)
        else:
            out.write(render_table(list(rows), SEGMENT_COLUMNS, max_width=80))
    print_warnings(stats)
    if not quiet:
        err(summary_lines(_segments_summary(stats))[0])


def _segments_summary(stats: ReadStats) -> dict[str, Any]:
    return {
        "packets": stats.packets,
        "segments": stats.segments,
        "decapsulated": stats.decapsulated,
        "skipped": stats.skipped,
    }


def _segment_row(seg: Segment, parse_options: Callable[[bytes], TcpOptions]) -> dict[str, Any]:
    return {
        "frame": seg.frame,
        "ts": seg.ts,
        "src": seg.src,
        "sport": seg.sport,
        "dst": seg.dst,
        "dport": seg.dport,
        "flags": flags_str(seg.flags),
        "seq": seg.seq,
        "ack": seg.ack,
        "win": seg.win,
        "len": seg.length,
        "options": _options_text(seg.options, parse_options),
    }


@cli.command()
@click.argument(
    "captures", nargs=-1, metavar="[CAPTURE...]", type=click.Path(dir_okay=False, allow_dash=True)
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg", "png"]),
    default="mermaid",
    show_default=True,
    help="Mermaid stateDiagram-v2, Graphviz DOT, or SVG/PNG rendered by Graphviz's dot.",
)
@click.option(
    "--reference", is_flag=True, help="Draw the full RFC 9293 machine from the code's own transition table."
)
@output_option
@time_wait_option
@close_wait_option
@verify_option
@decapsulate_option
@jobs_option
@handle_errors
def diagram(
    captures: tuple[str, ...],
    fmt: str,
    reference: bool,
    output: str | None,
    time_wait: float,
    close_wait_timeout: float,
    verify_checksums: bool,
    decapsulate: bool,
    jobs: int | None,
) -> None:
    """Draw the state machine the capture actually went through (or, with --reference, RFC 9293's)."""
    from tcptrace_sm import diagram as pictures

    if reference:
        text = pictures.reference_mermaid() if fmt == "mermaid" else pictures.reference_dot()
    elif not captures:
        raise click.UsageError("give a CAPTURE to draw, or --reference")
    else:
        result = _analyze(
            captures, time_wait, close_wait_timeout, verify_checksums, decapsulate=decapsulate, jobs=jobs
        )
        draw = pictures.observed_mermaid if fmt == "mermaid" else pictures.observed_dot
        text = draw(result.transition_records, result.anomaly_records)
    if fmt in ("mermaid", "dot"):
        with output_stream(output) as out:
            out.write(text)
        return
    _render_graphviz(text, fmt, output)


def _render_graphviz(dot_text: str, fmt: str, output: str | None) -> None:
    dot = shutil.which("dot")
    if dot is None:
        err("error: Graphviz is not installed ('dot' not found); use --format dot or mermaid")
        sys.exit(ExitCode.USAGE)
    import subprocess  # (only here: it takes a few ms to import)

    done = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        err(f"error: dot failed: {done.stderr.decode(errors='replace').strip()}")
        sys.exit(ExitCode.USAGE)
    if output is None or output == "-":
        sys.stdout.buffer.write(done.stdout)
        sys.stdout.flush()
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(done.stdout)
    os.replace(tmp, output)


@cli.command()
@captures_argument
@click.option("--flow", "flow_id", type=click.IntRange(min=1), required=True, help="The flow_id to draw.")
@output_option
@time_wait_option
@close_wait_option
@verify_option
@decapsulate_option
@handle_errors
def timeline(
    captures: tuple[str, ...],
    flow_id: int,
    output: str | None,
    time_wait: float,
    close_wait_timeout: float,
    verify_checksums: bool,
    decapsulate: bool,
) -> None:
    """Draw one connection as a Mermaid ladder diagram: every segment and each side's state."""
    from tcptrace_sm.analysis import trace_flow
    from tcptrace_sm.diagram import timeline_mermaid

    try:
        rows = trace_flow(
            list(captures),
            flow_id,
            time_wait=time_wait,
            close_wait_timeout=close_wait_timeout,
            verify_checksums=verify_checksums,
            decapsulate=decapsulate,
        )
    except LookupError as e:
        raise click.UsageError(str(e)) from None
    with output_stream(output) as out:
        out.write(timeline_mermaid(rows))


@cli.command()
@captures_argument
@output_option
@click.option("--title", default="tcpsm report", show_default=True, help="Title of the page.")
@time_wait_option
@close_wait_option
@verify_option
@decapsulate_option
@jobs_option
@handle_errors
def report(
    captures: tuple[str, ...],
    output: str | None,
    title: str,
    time_wait: float,
    close_wait_timeout: float,
    verify_checksums: bool,
    decapsulate: bool,
    jobs: int | None,
) -> None:
    """Write one self-contained HTML report (summary, pictures, sortable tables)."""
    from tcptrace_sm.html import render_report

    with output_stream(output) as out:
        result = _analyze(
            captures, time_wait, close_wait_timeout, verify_checksums, decapsulate=decapsulate, jobs=jobs
        )
        out.write(
            render_report(
                result.summary,
                result.flow_records,
                result.anomaly_records,
                result.transition_records,
                FLOW_COLUMNS,
                ANOMALY_COLUMNS,
                title=title,
            )
        )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="tcpsm")
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
