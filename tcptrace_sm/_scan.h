/*
 * What the two sources of tcptrace_sm._scan share: _scan.c defines these, _scan.c's
 * decode_tcp / syn_options / addr_names and _fastpath.c's express path call them.
 */
#ifndef TCPTRACE_SM_SCAN_H
#define TCPTRACE_SM_SCAN_H

#include <stdint.h>

/* tcpsm_record's verdicts on a record */
enum { REC_TCP, REC_NOT_IP, REC_NOT_TCP, REC_OTHER };

/*
 * tcpsm_record(d, end, hl, etoff, raw, out) -> REC_*
 *     The reader's common case of one record, its captured bytes [0, end) at d: a link
 *     header of hl bytes with the ethertype at etoff (any VLAN tags up to 16), or raw IP.
 *     REC_TCP: IPv4 without fragmentation or IPv6 without extension headers, carrying a whole
 *     TCP header whose lengths add up; out: IP version, IP header, TCP header, segment length
 *     (from the IP header), TCP header length. REC_NOT_IP: neither IPv4 nor IPv6 (the numpy
 *     decoder's not_ip). REC_NOT_TCP: such an IP packet with another protocol; out: IP
 *     version, IP header, payload, the payload's end within the capture, the protocol.
 *     REC_OTHER: anything else (cut, malformed, a fragment, extension headers), the numpy
 *     decoder's to judge. Offsets are from d.
 */
int tcpsm_record(const unsigned char *d, int64_t end, int64_t hl, int64_t etoff, int raw, int64_t out[5]);

/* The window scale (-1: none, at most 14) and "carries a Fast Open cookie" of a SYN whose
 * option bytes are o[cur:end], read as the per-segment core reads them (see syn_options). */
void tcpsm_syn_options(const unsigned char *o, int64_t cur, int64_t end, int64_t *ws, unsigned char *tfo);

/* The decimal digits of v at p (no terminator); returns the end. */
char *tcpsm_put_decimal(char *p, unsigned long long v);

#endif
