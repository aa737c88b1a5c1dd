"""A longer fuzz run than the test suite's: mutated sample captures through tcptrace_sm.analyze.

    python scripts/fuzz.py [--runs 100000] [--start 0] [--budget 2.0]

Every run mangles a random sample capture one to three times (bit flips, cuts, absurd length
fields, duplicated, reordered or zeroed chunks, appended garbage) and analyses it. Anything but
a CaptureError, or an analysis slower than ``--budget`` seconds, is printed with its seed, so
``tests/mutate.py`` reproduces it. Exit 1 if anything was found.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mutate import SEEDS, mutate  # the test suite's mutator

import tcptrace_sm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds one analysis may take")
    args = ap.parse_args()
    found = 0
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.start, args.start + args.runs):
            rng = random.Random(seed)
            source = rng.choice(SEEDS)
            data = source.read_bytes()
            for _ in range(rng.randint(1, 3)):
                data = mutate(data, rng)
            path = Path(tmp) / f"mutated{source.suffix}"
            path.write_bytes(data)
            t0 = time.monotonic()
            try:
                a = tcptrace_sm.analyze(path)
                _ = (a.flows, a.anomalies, a.transitions, a.summary)
            except tcptrace_sm.CaptureError:
                pass
            except Exception:
                found += 1
                print(f"seed {seed} ({source.name}):\n{traceback.format_exc()}", flush=True)
            if time.monotonic() - t0 > args.budget:
                found += 1
                print(f"seed {seed} ({source.name}): took {time.monotonic() - t0:.1f} s", flush=True)
    print(f"{args.runs} runs in {time.monotonic() - began:.0f} s, {found} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
