"""The engine's 4-tuple table against a dict, with hashes forced to collide."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tcptrace_sm.engine import MISSING, _KeyTable

I64 = np.int64


def _check(ops: list[tuple[str, list[int]]], spread: int) -> None:
    table = _KeyTable(capacity=8)
    model: dict[int, int] = {}  # key -> value
    owner: dict[int, int] = {}  # value -> key (what the engine's rows tell the table)
    next_value = 0

    def h(keys: list[int]) -> np.ndarray:
        return np.array([k % spread + 2 for k in keys], dtype=np.uint64)  # many collisions

    def lookup(keys: list[int]) -> list[int]:
        arr = np.array(keys, dtype=I64)
        return table.lookup(h(keys), lambda i, v: np.array([owner.get(int(x)) for x in v]) == arr[i]).tolist()

    for op, raw in ops:
        keys = list(dict.fromkeys(raw))
        if op == "insert":
            new = [k for k in keys if k not in model]
            values = list(range(next_value, next_value + len(new)))
            next_value += len(new)
            table.insert(h(new), np.array(values, dtype=I64))
            for k, v in zip(new, values, strict=True):
                model[k], owner[v] = v, k
        elif op == "remove":
            gone = [k for k in keys if k in model]
            table.remove(h(gone), np.array([model[k] for k in gone], dtype=I64))
            for k in gone:
                del owner[model.pop(k)]
        else:  # repoint: the keys move to other rows
            moved = [k for k in keys if k in model]
            old = [model[k] for k in moved]
            new_values = list(range(next_value, next_value + len(moved)))
            next_value += len(moved)
            table.repoint(h(moved), np.array(old, dtype=I64), np.array(new_values, dtype=I64))
            for k, o, n in zip(moved, old, new_values, strict=True):
                del owner[o]
                model[k], owner[n] = n, k
        probe = sorted(set(raw) | set(list(model)[:20]))
        assert lookup(probe) == [model.get(k, MISSING) for k in probe]
        assert len(table) == len(model)
        assert 3 * (table.used + table.gone) <= 2 * len(table.h)  # at most 2/3 full


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "remove", "repoint"]), st.lists(st.integers(0, 300), max_size=40)
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_OPS, st.sampled_from([1, 3, 1000]))
def test_the_table_answers_like_a_dict(ops: list[tuple[str, list[int]]], spread: int) -> None:
    _check(ops, spread)


def test_it_grows_and_rebuilds_over_the_buckets_keys_left() -> None:
    # 6000 keys in, then churn: removals leave buckets behind, which a rebuild clears
    ops = [("insert", list(range(i * 100, i * 100 + 100))) for i in range(60)]
    for i in range(59):
        ops += [
            ("remove", list(range(i * 100, i * 100 + 100))),
            ("insert", list(range(10**6 + i * 100, 10**6 + i * 100 + 100))),
        ]
    _check(ops, 1 << 20)


def test_the_salt_differs_between_tables() -> None:
    fam = np.array([4], dtype=np.uint8)
    a = np.zeros(1, dtype="V16")
    port = np.array([80], dtype=I64)
    assert _KeyTable().hash(fam, a, port, a, port) != _KeyTable().hash(fam, a, port, a, port)
