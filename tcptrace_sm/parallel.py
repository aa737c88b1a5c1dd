"""Sharing one analysis out: over worker processes (``--jobs``) or a Dask cluster.

Every worker reads the whole input and keeps the connections whose 4-tuple hashes to its
share (:func:`flow_hash`, the same in both directions), so a connection never straddles two
workers. Each worker computes the capture clock from *all* segments, so every time-based rule
(TIME-WAIT, retirement, Zeek's timers) sees the same clock as a single process would.

Records come back as keyed blocks (see :data:`tcptrace_sm.analysis.Keyed`): connections that
finished while chunk ``k`` was read are keyed ``(0, k, span)`` in every worker, those left at the end
by spans of flow_id. Merging the workers' blocks key by key, in key order, gives exactly the
single-process output, record for record and in the same order. The one exception is a full
connection table: each worker holds ``max_flows / workers`` connections, so which connections
are evicted can differ.

Reading is repeated by every worker (a capture is a stream: there is nothing to split it by
but its connections); for a cluster, the workers read the captures from storage they share
(give paths they all resolve the same way).
"""

from __future__ import annotations

import contextlib
import heapq
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tcptrace_sm.analysis import RECORD_COLUMNS, Block, Keyed, Options, Share, Summary, reference_share, tap
from tcptrace_sm.capture import CaptureError, Columns, ReadStats, read_columns
from tcptrace_sm.report import CsvWriter, JsonlWriter

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def flow_hash(cols: Columns) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each segment's 4-tuple, the same for both directions."""

    def end(addr: Any, port: Any) -> npt.NDArray[np.uint64]:
        w = np.ascontiguousarray(addr).view("<u8").reshape(-1, 2)
        with np.errstate(over="ignore"):
            h = (
                (w[:, 0] * _M1)
                ^ (w[:, 1] * _M2)
                ^ ((port.astype(np.uint64) << np.uint64(8)) | cols.fam) * _M3
            )
            h ^= h >> np.uint64(29)
            out: npt.NDArray[np.uint64] = h * _M1
        return out

    with np.errstate(over="ignore"):
        h = end(cols.src, cols.sport) + end(cols.dst, cols.dport)
        h ^= h >> np.uint64(31)
        out: npt.NDArray[np.uint64] = h * _M2
    return out


def share_of(shard: int, shards: int) -> Share:
    """The rows of a chunk that belong to worker ``shard`` of ``shards``."""
    n = np.uint64(shards)
    k = np.uint64(shard)

    def rows(cols: Columns) -> npt.NDArray[np.int64]:
        out: npt.NDArray[np.int64] = np.flatnonzero((flow_hash(cols) >> np.uint64(7)) % n == k)
        return out

    return rows


def shard_blocks(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    shard: int,
    shards: int,
    stats: ReadStats,
    *,
    engine: str = "fast",
    progress: Callable[[ReadStats], None] | None = None,
    transitions: bool = True,
) -> Iterator[Keyed]:
    """One worker's keyed blocks: the connections of its share (see the module docstring)."""
    opts = replace(options, max_flows=max(1, options.max_flows // shards))
    batches = tap(options.columns(paths, stats), stats, progress)
    share = share_of(shard, shards)
    if engine == "reference":
        return reference_share(batches, opts, stats, share, transitions)
    from tcptrace_sm.engine import run

    return run(batches, opts, stats, share, transitions=transitions)


T = TypeVar("T")


def merge_keyed(
    streams: Sequence[Iterator[tuple[tuple[int, int, int], T]]], combine: Callable[[list[T]], T | None]
) -> Iterator[T]:
    """The workers' keyed outputs merged key by key, in key order: ``combine`` makes one of
    the parts that share a key (None: nothing to hand out)."""
    heads: list[tuple[tuple[int, int, int], int, T]] = []
    for i, it in enumerate(streams):
        first = next(it, None)
        if first is not None:
            heads.append((first[0], i, first[1]))
    heapq.heapify(heads)
    while heads:
        key = heads[0][0]
        parts = []
        while heads and heads[0][0] == key:
            _k, i, b = heapq.heappop(heads)
            parts.append(b)
            nxt = next(streams[i], None)
            if nxt is not None:
                heapq.heappush(heads, (nxt[0], i, nxt[1]))
        merged = combine(parts)
        if merged is not None:
            yield merged


def _merge_blocks(parts: list[Block]) -> Block | None:
    merged = Block.merge(parts)
    return merged if len(merged) else None


#: Rendered output of one block: its rows' flow_ids, its lines (CSV or JSON Lines), its counts.
Rendered = tuple[list[int], list[str], Summary]


def _merge_rendered(parts: list[Rendered]) -> Rendered | None:
    if len(parts) == 1:
        return parts[0]
    fids = [f for p in parts for f in p[0]]
    lines = [line for p in parts for line in p[1]]
    order = np.argsort(np.array(fids, dtype=np.int64), kind="stable")
    total = Summary()
    for p in parts:
        total.merge(p[2])
    return [fids[i] for i in order.tolist()], [lines[i] for i in order.tolist()], total


# --------------------------------------------------------------------------------- processes


def _worker(
    send: Any,
    paths: list[str],
    options: Options,
    shard: int,
    shards: int,
    engine: str,
    report: bool,
    render: tuple[str, str] | None,
    transitions: bool = True,
) -> None:
    stats = ReadStats(files=[])
    try:

        def progress(st: ReadStats) -> None:
            send.send(("p", st.bytes_read, st.packets))

        writer: Any = None
        if render is not None:
            fmt, records = render
            columns = RECORD_COLUMNS[records]
            writer = (CsvWriter if fmt == "csv" else JsonlWriter)(None, columns, header=False)
        for key, block in shard_blocks(
            paths,
            options,
            shard,
            shards,
            stats,
            engine=engine,
            progress=progress if report else None,
            transitions=transitions,
        ):
            if writer is None:
                send.send(("b", key, block))
            else:
                cols = getattr(block, render[1])  # type: ignore[index]
                send.send(("b", key, (cols["flow_id"], writer.lines(cols), Summary.of(block))))
        send.send(("s", stats, None))
    except CaptureError as e:
        send.send(("e", str(e), None))
    except BaseException as e:  # anything else is a bug: carry it to the parent
        send.send(("x", f"{type(e).__name__}: {e}\n{traceback.format_exc()}", None))
    finally:
        send.close()


class WorkerError(RuntimeError):
    """A worker process failed with something other than a bad capture (a bug of ours)."""


def parallel_blocks(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    jobs: int,
    *,
    engine: str = "fast",
    progress: Callable[[ReadStats], None] | None = None,
    transitions: bool = True,
) -> Iterator[Block]:
    """The analysis shared out over ``jobs`` worker processes (opening problems raise
    :class:`CaptureError` from this call, before any worker starts)."""
    return _parallel(paths, options, stats, jobs, engine, progress, None, transitions)


def parallel_lines(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    jobs: int,
    fmt: str,
    records: str,
    *,
    engine: str = "fast",
    progress: Callable[[ReadStats], None] | None = None,
) -> Iterator[Rendered]:
    """Like :func:`parallel_blocks`, but the workers render ``records`` (``flows``,
    ``anomalies``, ``transitions``) as ``fmt`` (``csv`` or ``jsonl``) lines themselves, so
    that formatting runs in parallel too and only text crosses the process boundary."""
    return _parallel(paths, options, stats, jobs, engine, progress, (fmt, records), records == "transitions")


def _parallel(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    jobs: int,
    engine: str,
    progress: Callable[[ReadStats], None] | None,
    render: tuple[str, str] | None,
    transitions: bool = True,
) -> Iterator[Any]:
    plist = [os.fspath(p) for p in paths]
    for _ in read_columns(plist, stats=ReadStats()):  # open and check every file now
        break
    ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    procs = []
    pipes = []
    for shard in range(jobs):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=_worker,
            args=(
                send,
                plist,
                options,
                shard,
                jobs,
                engine,
                shard == 0 and progress is not None,
                render,
                transitions,
            ),
        )
        p.daemon = True
        p.start()
        send.close()
        procs.append(p)
        pipes.append(recv)
    return _collect(procs, pipes, stats, progress, _merge_blocks if render is None else _merge_rendered)


def _collect(
    procs: list[Any],
    pipes: list[Any],
    stats: ReadStats,
    progress: Callable[[ReadStats], None] | None,
    combine: Callable[[list[Any]], Any],
) -> Iterator[Any]:
    finals: dict[int, ReadStats] = {}

    def stream(i: int) -> Iterator[tuple[tuple[int, int, int], Any]]:
        recv = pipes[i]
        while True:
            try:
                kind, a, b = recv.recv()
            except EOFError:
                raise WorkerError(f"worker {i} ended without its results") from None
            if kind == "b":
                yield a, b
            elif kind == "p":
                stats.bytes_read, stats.packets = a, b
                if progress is not None:
                    progress(stats)
            elif kind == "s":
                finals[i] = a
                return
            elif kind == "e":
                raise CaptureError(a)
            else:
                raise WorkerError(a)

    try:
        yield from merge_keyed([stream(i) for i in range(len(pipes))], combine)
        _adopt(stats, [finals[i] for i in sorted(finals)])
        if progress is not None:
            progress(stats)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
        for r in pipes:
            with contextlib.suppress(OSError):
                r.close()


def _adopt(stats: ReadStats, workers: list[ReadStats]) -> None:
    """Every worker read everything: the first worker's reader statistics are the capture's,
    with the warnings only another worker had (its temporary files could not be written)."""
    if not workers:
        return
    files = stats.files
    for name, value in vars(workers[0]).items():
        setattr(stats, name, value)
    stats.warnings = list(stats.warnings)
    for other in workers[1:]:
        stats.warnings += [w for w in other.warnings if w not in stats.warnings]
    if files and not stats.files:
        stats.files = files


# --------------------------------------------------------------------------------- Dask


def _dask_shard(
    paths: list[str], options: Options, shard: int, shards: int, engine: str, transitions: bool = True
) -> tuple[ReadStats, list[Keyed]]:
    stats = ReadStats(files=[])
    blocks = list(shard_blocks(paths, options, shard, shards, stats, engine=engine, transitions=transitions))
    return stats, blocks


def dask_blocks(
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    stats: ReadStats,
    client: Any,
    *,
    engine: str = "fast",
    transitions: bool = True,
) -> Iterator[Block]:
    """The analysis shared out over the workers of a ``dask.distributed.Client``: one task per
    worker, each reading the captures from storage every worker sees."""
    plist = [os.path.abspath(os.fspath(p)) if os.path.exists(os.fspath(p)) else os.fspath(p) for p in paths]
    if all(os.path.exists(p) for p in plist):
        for _ in read_columns(plist, stats=ReadStats()):  # a bad capture fails here, not on a worker
            break
    shards = max(1, len(client.scheduler_info().get("workers", {})))
    futures = [
        client.submit(_dask_shard, plist, options, k, shards, engine, transitions, pure=False)
        for k in range(shards)
    ]
    results = client.gather(futures)
    _adopt(stats, [st for st, _blocks in results])
    return merge_keyed([iter(blocks) for _st, blocks in results], _merge_blocks)
