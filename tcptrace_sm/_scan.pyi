from typing import Any, TypeAlias

from numpy.typing import NDArray
from typing_extensions import Buffer

# numpy declares ndarray's buffer protocol for Python 3.12+ only
_Bytes: TypeAlias = Buffer | NDArray[Any]

def pcap_walk(buf: _Bytes, pos: int, hdr: int, big: bool, /) -> tuple[bytes, int]: ...
def gather(src: _Bytes, pos: _Bytes, width: int, out: _Bytes, /) -> None: ...
def syn_options(opt: _Bytes, ooff: _Bytes, rows: _Bytes, ws: _Bytes, tfo: _Bytes, /) -> None: ...
