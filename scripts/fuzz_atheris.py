"""Coverage-guided fuzzing of tcptrace_sm.analyze with atheris (libFuzzer for Python).

    pip install atheris
    python scripts/fuzz_atheris.py [--structure] [libFuzzer options] [CORPUS_DIR ...]

    # e.g. ten minutes, hangs over 5 s reported, the sample captures as the seed corpus:
    mkdir -p /tmp/corpus && cp sample_pcaps/*/*.pcap* /tmp/corpus/
    python scripts/fuzz_atheris.py --structure -max_total_time=600 -timeout=5 -rss_limit_mb=2048 /tmp/corpus

Every input is written to a file and analysed; anything but a ``CaptureError`` is a crash that
libFuzzer saves as ``crash-<sha1>`` (``-timeout`` saves a hang as ``timeout-<sha1>``). Run the
script with that file as its only argument to reproduce it. ``--structure`` adds the
structure-aware mutations of ``tests/mutate.py`` (records duplicated, reordered, cut, their
lengths and timestamps broken, IP / TCP header fields corrupted) to libFuzzer's byte-level ones.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import random
import sys
import tempfile
from pathlib import Path

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - an optional tool
    sys.exit("atheris is not installed: pip install atheris")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

with atheris.instrument_imports(include=["tcptrace_sm"]):
    import tcptrace_sm
    import tcptrace_sm.analysis  # the package imports lazily: load (and so instrument) the reader
    import tcptrace_sm.capture  # and the engine now, not at the first input

    for _mod in pkgutil.iter_modules(tcptrace_sm.__path__):
        if _mod.name not in ("cli", "clikit", "html", "plot", "report", "__main__"):
            importlib.import_module(f"tcptrace_sm.{_mod.name}")

from mutate import check_analysis, mutate  # the test suite's mutator and result checks

_FD, _PATH = tempfile.mkstemp(prefix="tcpsm-atheris-", suffix=".cap")
os.close(_FD)


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        a = tcptrace_sm.analyze(_PATH)
    except tcptrace_sm.CaptureError as e:
        if "\n" in str(e) or _PATH not in str(e):
            raise AssertionError(f"CaptureError message is not one line naming the file: {e!r}") from e
        return
    problems = check_analysis(a)
    if problems:
        raise AssertionError("; ".join(problems))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Half libFuzzer's own mutations, half the test suite's structure-aware ones."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return bytes(atheris.Mutate(data, max_size))
    return mutate(data, rng)[:max_size]


def main() -> None:
    argv = [a for a in sys.argv if a != "--structure"]
    try:
        if "--structure" in sys.argv:
            atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
        else:
            atheris.Setup(argv, test_one_input)
        atheris.Fuzz()
    finally:
        Path(_PATH).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
