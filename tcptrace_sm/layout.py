"""The fast engine's per-connection layout and limits, without numpy.

The store of :mod:`tcptrace_sm.engine` (one row of these fields per connection), the compiled
evaluation of its chunks (``_fastpath.c``) and the express path (:mod:`tcptrace_sm.express`)
all read their fields, defaults, widths and limits from here, so that they cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Final

from tcptrace_sm.machine import NS_PER_S

LIMIT: Final = 1 << 30  # relative sequence numbers beyond this go to the core (wrap safety)
NEVER_NS: Final = (1 << 63) - 1  # "never" for times (timestamps are int64 nanoseconds)

#: No pause inside a fast connection may reach Zeek's shortest timer (tcp_attempt_delay,
#: tcp_close_delay, tcp_SYN_timeout and tcp_connection_linger are all 5 s): with shorter
#: pauses Zeek's summary of the connection is the plain one computed here.
ZEEK_TIMER_NS: Final = 5 * NS_PER_S
#: Longer pauses are fine while both sides are synchronised and neither has closed: Zeek's
#: timers only re-arm then, up to its inactivity timeout (udp_inactivity_timeout, 1 min, is
#: the shorter of the two it uses for TCP).
ZEEK_IDLE_NS: Final = 60 * NS_PER_S

# phases of a fast connection
P_SYN, P_SYNACK, P_EST, P_DONE = 0, 1, 2, 3

# Zeek's history letters: (column, letter). The client is Zeek's originator (it sent the first
# packet, a plain SYN), so its letters are upper case.
ZLETTERS: list[tuple[str, str]] = [("zS", "S"), ("zH", "h"), ("zr0", "r")]
for _sd, _case in (("c", str.upper), ("s", str.lower)):
    for _l in "ADFR":
        ZLETTERS.append((f"z{_sd}{_l}", _case(_l)))
    for _k in "TWG":
        for _i in range(4):
            ZLETTERS.append((f"z{_sd}{_k}{_i}", _case(_k)))
ZCHARS = [letter for _c, letter in ZLETTERS]
#: Zeek's conn_state of fast connections, as _zeek_parts numbers them
ZSTATE_NAMES: Final = ("REJ", "S0", "RSTO", "RSTR", "SF", "S2", "S3", "S1")


SIDE_FIELDS: Final[dict[str, Any]] = {
    "pk": 0,  # packets
    "by": 0,  # payload bytes
    "isn": 0,
    "nxt": 1,  # SND.NXT, relative to the side's ISN
    "fin": -1,  # relative sequence number of its FIN (-1: none sent)
    "finf": -1,  # frame, time, capture clock and ordinal of the FIN
    "fint": 0,
    "finclk": 0,
    "fino": -1,
    "ppf": 0,  # the peer's packets when the FIN left
    "faf": -1,  # frame, time and ordinal of the peer's ACK of the FIN
    "fat": 0,
    "fao": -1,
    "lack": -1,  # last ACK sent, relative to the peer's ISN (-1: none yet)
    "win": 0,  # last window sent (unscaled)
    "ws": -1,  # window scale of its SYN (-1: no option)
    "lsend": 0,  # last segment with new data, FIN or SYN
    "ltx": 0,  # last SYN, SYN-ACK or FIN sent
    "rtx": 0,  # retransmissions, as the core counts them
    "bend": -1,  # data sent beyond the peer's window, not judged yet: end, edge, frame, time
    "bedge": 0,
    "bf": 0,
    "bt": 0,
    "zmax": 1,  # Zeek: highest sequence number sent so far (relative; its SYN counts)
    "zA": -1,  # Zeek: ordinal x 4 of the first pure ACK, payload, FIN, RST
    "zD": -1,
    "zF": -1,
    "zR": -1,
    "zTn": 0,  # Zeek: retransmissions, zero windows and content gaps, and the ordinals at 1, 10,
    "zWn": 0,  # 100 and 1000
    "zGn": 0,
    **{f"z{k}{i}": -1 for k in "TWG" for i in range(4)},
    "ztr": -1,  # its payload: -1 none yet, 0 captured whole, 1 cut by the snaplen, 2 both
    "ztrim": 1,  # Zeek's reassembler of its payload: trimmed up to, delivered up to, and the
    "zre": 1,  # peer's highest ACK (relative)
    "zack": 1,
    "zblo": -1,  # Zeek's reassembler: the one block of whole payload it holds above "zre", not
    "zbhi": -1,  # acknowledged yet (-1: none; sides with payload both cut and whole only)
}
FIELDS: Final[dict[str, Any]] = {
    "fid": 0,
    "first_ts": 0,
    "last_ts": 0,
    "first_clock": 0,  # the capture clock at the first and the last segment
    "last_clock": 0,
    "retire_at": NEVER_NS,  # see Engine._schedule
    "compact_at": NEVER_NS,
    "zopk": 0,  # ... Zeek's packet counts of that (its only) connection
    "zrpk": 0,
    "phase": P_SYN,
    "sa_f": -1,  # the SYN-ACK (or the refusing RST): frame, time, ordinal
    "sa_t": 0,
    "sa_o": -1,
    "hs_f": -1,  # the handshake's ACK
    "hs_t": 0,
    "hs_o": -1,
    "rst_f": -1,
    "rst_t": 0,
    "rst_o": -1,
    "rst_by": -1,  # 0 client, 1 server
    "rst_xs": 0,  # states of the RST's sender and receiver before it
    "rst_ys": 0,
    "refused": 0,
    "zS": -1,  # Zeek: ordinal x 4 of the SYN, the SYN-ACK and the refusing RST
    "zH": -1,
    "zr0": -1,
    **{f"c_{k}": v for k, v in SIDE_FIELDS.items()},
    **{f"s_{k}": v for k, v in SIDE_FIELDS.items()},
}

#: Fields that need 64 bits (times, frame numbers, ISNs); the others are 32-bit.
WIDE: Final = frozenset(
    {"fid", "first_ts", "last_ts", "first_clock", "last_clock", "retire_at", "compact_at",
     "sa_f", "sa_t", "hs_f", "hs_t", "rst_f", "rst_t"}
    | {f"{sd}_{k}" for sd in "cs" for k in ("isn", "finf", "fint", "finclk", "faf", "fat", "lsend", "ltx",
                                            "bedge", "bf", "bt")}
)  # fmt: skip

F64: Final = tuple(k for k in FIELDS if k in WIDE)
F32: Final = tuple(k for k in FIELDS if k not in WIDE)

#: A fast connection with more segments than this is handed to the core (its journal would
#: grow without bound otherwise); so are the longest ones when all journals together pass
#: :data:`JOURNAL_BUDGET` segments.
JOURNAL_CAP: Final = 4096
JOURNAL_BUDGET: Final = 6_000_000
