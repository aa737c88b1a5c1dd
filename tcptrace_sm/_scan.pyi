from collections.abc import Callable
from typing import Any, TypeAlias

from numpy.typing import NDArray
from typing_extensions import Buffer

# numpy declares ndarray's buffer protocol for Python 3.12+ only
_Bytes: TypeAlias = Buffer | NDArray[Any]

def pcap_walk(buf: _Bytes, pos: int, hdr: int, big: bool, /) -> tuple[bytes, int]: ...
def gather(src: _Bytes, pos: _Bytes, width: int, out: _Bytes, /) -> None: ...
def syn_options(opt: _Bytes, ooff: _Bytes, rows: _Bytes, ws: _Bytes, tfo: _Bytes, /) -> None: ...
def decode_tcp(
    buf: _Bytes,
    d: _Bytes,
    cap: _Bytes,
    hl: int,
    etoff: int,
    raw: bool,
    rec: _Bytes,
    slow: _Bytes,
    fam: _Bytes,
    src: _Bytes,
    dst: _Bytes,
    sport: _Bytes,
    dport: _Bytes,
    seq: _Bytes,
    ack: _Bytes,
    flags: _Bytes,
    win: _Bytes,
    length: _Bytes,
    mark: _Bytes,
    ooff: _Bytes,
    opt: _Bytes,
    /,
) -> tuple[int, int]: ...
def addr_names(fam: _Bytes, addr: _Bytes, /) -> list[str]: ...
def ts_cells(values: list[int | None], /) -> list[str]: ...
def cells(values: list[Any], fallback: Callable[[Any], str], /) -> list[str]: ...
def pcapng_walk(buf: _Bytes, pos: int, big: bool, max_block: int, /) -> tuple[bytes, bytes, int, int]: ...
def fast_fields() -> tuple[str, ...]: ...
def fast_apply(
    d64: _Bytes,
    n64: int,
    d32: _Bytes,
    n32: int,
    fmap: _Bytes,
    bounds: _Bytes,
    gslot: _Bytes,
    created: _Bytes,
    seg64: _Bytes,
    seg8: _Bytes,
    params: _Bytes,
    status: _Bytes,
    p1pos: _Bytes,
    /,
) -> None: ...
def group_first(h: _Bytes, first: _Bytes, inv: _Bytes, /) -> int: ...
def fast_segments(
    order: _Bytes,
    slot: _Bytes,
    frame: _Bytes,
    ts: _Bytes,
    clock: _Bytes,
    flags: _Bytes,
    seq: _Bytes,
    ack: _Bytes,
    win: _Bytes,
    length: _Bytes,
    sport: _Bytes,
    src: _Bytes,
    mark: _Bytes,
    cport: _Bytes,
    cip: _Bytes,
    truncated: int,
    seg64: _Bytes,
    seg8: _Bytes,
    /,
) -> None: ...
def journal_rows(
    order: _Bytes,
    nrows: int,
    seg64: _Bytes,
    seg8: _Bytes,
    bounds: _Bytes,
    status: _Bytes,
    gslot: _Bytes,
    fid: _Bytes,
    gen: _Bytes,
    limit: int,
    out: _Bytes,
    /,
) -> int: ...
def express(
    path: bytes,
    init: _Bytes,
    narrow: bytes,
    params: _Bytes,
    zchars: bytes,
    zcols: _Bytes,
    states: tuple[str, ...],
    errnos: tuple[str | None, ...],
    zstates: tuple[str, ...],
    limits: _Bytes,
    sink: Callable[[bytes], object],
    spill_open: Callable[[], int],
    progress: Callable[[int, int], object] | None,
    /,
) -> tuple[int, Any]: ...
