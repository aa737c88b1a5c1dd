"""A longer fuzz run than the test suite's: mutated sample captures through tcptrace_sm.analyze.

    python scripts/fuzz.py [--runs 100000] [--seed 0] [--budget 2.0] [--jobs 2] [--compare]
                           [--families bytes,structure,packet,gzip] [--save DIR] [-v]

Case ``N`` is ``tests/mutate.py``'s ``make_case(N)``: a sample capture (two, analysed together,
for one seed in eight) mutated one to three times by the chosen families (``bytes``: bit flips,
cuts, absurd 32-bit fields, duplicated, swapped or zeroed chunks, garbage appended;
``structure``: records duplicated, reordered, dropped or emptied, length fields, snaplen, link
type, timestamps going backwards, cuts inside record headers or data; ``packet``: IP / TCP
header fields; ``gzip``: compressed bytes, or the contents then recompressed or not). The test
suite runs the first 600 seeds with every family.

Each case runs in a worker process under a budget of ``--budget`` seconds. A case over budget
is interrupted there (its traceback shows where it was); one that does not even answer that
(stuck in C code) is killed after ``--budget`` more seconds plus a grace period and its worker
restarted. Anything but a ``CaptureError`` (one line, naming the file), a result whose counts
do not add up, a case over budget, or (``--compare``) the fast and the reference engine giving
different records is printed with its seed and the command that reproduces
it. Exit 1 if anything was found.

    python scripts/fuzz.py --seed 1234 --runs 1 -v     # one case again, with its mutations
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mutate import (
    FAMILIES,
    SEEDS,
    Hang,
    check_analysis,
    check_error,
    engine_differences,
    make_case,
    time_budget,
)

import tcptrace_sm

GRACE = 5.0  # seconds past twice the budget before a silent worker is killed


@dataclass
class Result:
    seed: int
    status: str  # "ok", "capture_error", "exception", "bad_result", "engines_differ", "slow"
    detail: str
    seconds: float
    case: str  # the case's description: sources and mutations


def run_case(
    seed: int,
    families: tuple[str, ...],
    budget: float,
    folder: Path,
    save: Path | None,
    compare: bool = False,
) -> Result:
    """Build case ``seed``, analyse it under the budget, judge the outcome.

    With ``compare``, the fast and the reference engine must also give the same records.
    """
    try:
        case = make_case(seed, families)
    except Exception:  # a bug in the mutator itself: report it like any other finding
        return Result(seed, "exception", "make_case failed:\n" + traceback.format_exc(), 0.0, f"seed {seed}")
    paths = case.write(folder)
    t0 = time.monotonic()
    status, detail = "ok", ""
    try:
        with time_budget(budget, f"seed {seed}"):
            a = tcptrace_sm.analyze(paths if len(paths) > 1 else paths[0])
            problems = check_analysis(a)
            if not problems and compare:
                differ = engine_differences(paths)
                if differ:
                    status, detail = "engines_differ", "; ".join(differ)
        if problems:
            status, detail = "bad_result", "; ".join(problems)
    except tcptrace_sm.CaptureError as e:
        problems = check_error(str(e), paths)
        status, detail = ("bad_result", "; ".join(problems)) if problems else ("capture_error", str(e))
    except Hang:
        status, detail = "slow", traceback.format_exc(limit=-6)
    except Exception:
        status, detail = "exception", traceback.format_exc()
    dt = time.monotonic() - t0
    if status not in ("ok", "capture_error") and save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for p in paths:
            (save / p.name).write_bytes(p.read_bytes())
    for p in paths:
        p.unlink()
    return Result(seed, status, detail, dt, case.describe())


def _worker(
    conn: Connection, families: tuple[str, ...], budget: float, save: Path | None, compare: bool
) -> None:
    _ = tcptrace_sm.analyze(SEEDS[0]).flows  # imports (pandas, the engines) do not count against a budget
    with tempfile.TemporaryDirectory(prefix="tcpsm-fuzz-") as tmp:
        while True:
            seed = conn.recv()
            if seed is None:
                return
            conn.send(run_case(seed, families, budget, Path(tmp), save, compare))


class Worker:
    """One worker process; restarted when a case kills it or gets it stuck."""

    def __init__(self, ctx: mp.context.SpawnContext, args: tuple[object, ...]) -> None:
        self.ctx, self.args = ctx, args
        self.seed: int | None = None
        self.since = 0.0
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.proc.start()
        child.close()

    def give(self, seed: int) -> None:
        self.seed, self.since = seed, time.monotonic()
        self.conn.send(seed)

    def restart(self) -> None:
        self.proc.kill()  # this worker only, by its own handle
        self.proc.join()
        self.conn.close()
        self._start()
        self.seed = None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000, help="number of cases (seeds)")
    ap.add_argument("--seed", "--start", type=int, default=0, dest="seed", help="first seed")
    ap.add_argument("--budget", type=float, default=2.0, help="seconds one case may take")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated mutation families")
    ap.add_argument("--save", type=Path, help="folder to keep the inputs of every finding in")
    ap.add_argument(
        "--compare", action="store_true", help="also check that the fast and the reference engine agree"
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case, not just findings")
    args = ap.parse_args()
    families = tuple(f for f in args.families.split(",") if f)
    unknown = set(families) - set(FAMILIES)
    if unknown or not families:
        ap.error(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    signal.signal(signal.SIGTERM, _interrupt)  # a kill ends the run with its summary
    ctx = mp.get_context("spawn")
    workers = [
        Worker(ctx, (families, args.budget, args.save, args.compare)) for _ in range(max(1, args.jobs))
    ]
    seeds = iter(range(args.seed, args.seed + args.runs))
    fam = "" if families == FAMILIES else f" --families {','.join(families)}"
    fam += " --compare" if args.compare else ""
    found: list[Result] = []
    counts: dict[str, int] = {}
    slowest = Result(-1, "", "", 0.0, "")
    done = 0
    began = last_report = time.monotonic()

    def report(r: Result) -> None:
        nonlocal done, slowest
        done += 1
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.seconds > slowest.seconds:
            slowest = r
        if r.status not in ("ok", "capture_error"):
            found.append(r)
            print(f"\n== {r.status}: {r.case}\n{r.detail.rstrip()}", flush=True)
            print(f"   again: python scripts/fuzz.py --seed {r.seed} --runs 1 -v{fam}", flush=True)
        elif args.verbose:
            print(f"{r.case}\n   -> {r.status} in {r.seconds:.3f} s {r.detail}", flush=True)

    try:
        for w in workers:
            seed = next(seeds, None)
            if seed is not None:
                w.give(seed)
        while any(w.seed is not None for w in workers):
            for w in workers:
                if w.seed is None:
                    continue
                stuck = time.monotonic() - w.since > 2 * args.budget + GRACE
                if w.conn.poll(0.01):
                    try:
                        r = w.conn.recv()
                    except EOFError:  # the worker died (a crash in C code)
                        r = Result(w.seed, "exception", "worker process died", 0.0, f"seed {w.seed}")
                        w.restart()
                elif not w.proc.is_alive() or stuck:
                    why = "did not answer: killed" if stuck else f"worker died (exit {w.proc.exitcode})"
                    r = Result(w.seed, "slow" if stuck else "exception", why, 0.0, f"seed {w.seed}")
                    w.restart()
                else:
                    continue
                report(r)
                seed = next(seeds, None)
                if seed is not None:
                    w.give(seed)
                else:
                    w.seed = None
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                took = time.monotonic() - began
                print(f"... {done} runs, {took:.0f} s, {len(found)} finding(s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
    finally:
        for w in workers:
            w.stop()
    took = time.monotonic() - began
    print(
        f"{done} runs in {took:.0f} s ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}); "
        f"slowest: seed {slowest.seed} {slowest.seconds:.2f} s; {len(found)} finding(s)"
    )
    if found:
        print("seeds: " + " ".join(str(r.seed) for r in found))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
