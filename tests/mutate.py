"""Mangle captures the ways they get mangled in transit, for the fuzz tests and scripts/fuzz.py."""

from __future__ import annotations

import random
import struct
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "sample_pcaps"

SEEDS = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz", ".bin"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of the ways captures get mangled in transit or by tools."""
    b = bytearray(data)
    if not b:
        return bytes(rng.randbytes(rng.randint(0, 40)))
    kind = rng.randrange(7)
    if kind == 0:  # bit flips anywhere
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # cut anywhere
        del b[rng.randrange(len(b)) :]
    elif kind == 2:  # a record length (or any 32-bit field) set to something absurd
        i = rng.randrange(max(len(b) - 4, 1))
        b[i : i + 4] = struct.pack(
            "<I", rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)])
        )
    elif kind == 3:  # a chunk duplicated
        i = rng.randrange(len(b))
        j = min(len(b), i + rng.randint(1, 200))
        b[j:j] = b[i:j]
    elif kind == 4:  # two chunks swapped (records reordered)
        i, j = sorted(rng.randrange(len(b)) for _ in range(2))
        k = min(j - i, rng.randint(1, 300))
        b[i : i + k], b[j : j + k] = b[j : j + k], b[i : i + k]
    elif kind == 5:  # garbage appended
        b += rng.randbytes(rng.randint(1, 500))
    else:  # a chunk zeroed
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 64)] = bytes(min(64, len(b) - i))
    return bytes(b)
