"""Capture reader: the only module that imports dpkt.

INTERFACE CONTRACT (the rest of the package relies on exactly this; implementation pending):

    class CaptureError(ValueError)
        Raised for input that is not a usable capture (not a capture, empty file, unsupported
        link type, unreadable file). Its str() is one clear line naming the file.

    @dataclass
    class ReadStats:
        files: list[str]            # names as given ("-" for stdin)
        packets: int                # records read (all of them, TCP or not)
        segments: int               # TCP segments handed on
        bytes_read: int             # bytes of capture consumed (compressed size for .gz is fine)
        skipped: dict[str, int]     # reason -> count; reasons: "not_ip", "not_tcp", "fragment",
                                    #   "truncated_header", "malformed", "bad_checksum"
        truncated: bool             # a file ended mid-record
        warnings: list[str]         # one-line, human-readable (e.g. "x.pcap: capture cut
                                    #   mid-record after 1234 packets; analysed up to the cut")
        first_ts: int | None        # ns
        last_ts: int | None         # ns (of the last record, TCP or not)

    def read_segments(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                      verify_checksums: bool = False,
                      stats: ReadStats | None = None) -> Iterator[Segment]
        Yields every TCP segment of every file, merged in timestamp order across files
        (stable: ties keep file order, then record order). Frame numbers are 1-based positions
        in that merged record stream (all records count, TCP or not), so for one file they are
        Wireshark's frame numbers. "-" reads stdin (binary). Fills `stats` as it goes. Opening
        problems raise CaptureError before the first yield; a cut file ends with a warning.

    def parse_options(raw: bytes) -> TcpOptions
        Decodes raw TCP option bytes; never raises (malformed/truncated options decode as far
        as they go).
"""

from __future__ import annotations
