/*
 * Optional compiled helpers of the capture reader (tcptrace_sm.capture), of the fast engine's
 * SYN option walk (tcptrace_sm.engine.syn_options) and of the CSV writer's address and
 * timestamp cells.
 *
 * Each helper replaces a per-record Python loop or a many-pass numpy computation of the same
 * answer (the record headers of a capture form a chain, each length saying where the next
 * record starts, which numpy cannot vectorise). Where this module is not built (no compiler
 * at install time) the callers use their numpy / Python code, with the same results:
 * tests/test_compiled.py runs both and compares them.
 *
 * pcap_walk(buf, pos, hdr, big) -> (offsets, end)
 *     buf     bytes-like, the chunk
 *     pos     offset of the first record header in buf
 *     hdr     record header length (16 for every pcap variant the reader accepts)
 *     big     true when the file's fields are big-endian
 *   offsets   bytes holding the native int64 offsets of every record that lies wholly inside
 *             buf, in order (np.frombuffer(offsets, np.int64) gives them)
 *   end       offset just past the last of them (pos when there is none): where the first
 *             record that does not fit starts
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "_scan.h"

static uint32_t
load32(const unsigned char *p, int big)
{
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[0];
}

static PyObject *
pcap_walk(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, hdr;
    int big;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnp", &view, &pos, &hdr, &big))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    const int64_t n = (int64_t)view.len;
    if (pos < 0 || hdr < 12) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pcap_walk: pos must be >= 0 and hdr >= 12");
        return NULL;
    }
    /* at most one record per hdr bytes (a record is at least its header) */
    int64_t room = pos <= n ? (n - pos) / hdr + 1 : 1;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(room * 8));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out);
    int64_t count = 0;
    int64_t off = pos;
    const int64_t last = n - hdr;
    while (off <= last) {
        int64_t next = off + hdr + (int64_t)load32(buf + off + 8, big);
        if (next > n)
            break;
        offs[count++] = off;
        off = next;
    }
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, (Py_ssize_t)(count * 8)) < 0)
        return NULL;
    return Py_BuildValue("(NL)", out, (long long)off);
}

/*
 * gather(src, pos, width, out) -> None
 *     Copies the width bytes at each offset of pos (native int64, contiguous) of src into
 *     consecutive rows of the writable buffer out (at least len(pos) * width bytes): what
 *     numpy's src[pos[:, None] + arange(width)] gives, without its index matrix. An offset
 *     whose bytes do not all lie in src raises IndexError, as numpy would (a negative one
 *     counts from the end, as in numpy).
 */
static PyObject *
gather(PyObject *self, PyObject *args)
{
    Py_buffer src, pos, out;
    Py_ssize_t width;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &src, &pos, &width, &out))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t rows = pos.len / (Py_ssize_t)sizeof(int64_t);
    if (width < 0 || pos.len % (Py_ssize_t)sizeof(int64_t) != 0 || out.len / (width ? width : 1) < rows) {
        PyErr_SetString(PyExc_ValueError, "gather: bad widths or an output too small");
        goto done;
    }
    const unsigned char *from = (const unsigned char *)src.buf;
    const int64_t *at = (const int64_t *)pos.buf;
    unsigned char *to = (unsigned char *)out.buf;
    const int64_t hi = (int64_t)src.len - (int64_t)width;
    for (Py_ssize_t i = 0; i < rows; i++) {
        int64_t a = at[i];
        if (a < 0)
            a += (int64_t)src.len; /* numpy's reading of a negative index */
        if (a < 0 || a > hi) {
            PyErr_Format(PyExc_IndexError, "gather: offset %lld out of bounds for %zd bytes",
                         (long long)a, src.len);
            goto done;
        }
        memcpy(to + i * width, from + a, (size_t)width);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&out);
    return result;
}

void
tcpsm_syn_options(const unsigned char *o, int64_t cur, int64_t end, int64_t *ws, unsigned char *tfo)
{
    int64_t wscale = -1;
    int ws_done = 0, k34 = 0, v34 = 0, k254 = 0, v254 = 0;
    for (int step = 0; step < 41 && cur < end; step++) {
        const unsigned kind = o[cur];
        if (kind == 0)
            break;
        if (kind == 1) {
            cur += 1;
            continue;
        }
        if (cur + 1 >= end)
            break;
        const int64_t ln = o[cur + 1];
        if (ln < 2)
            break;
        int64_t stop_at = cur + ln < end ? cur + ln : end;
        int64_t vlen = stop_at - (cur + 2);
        if (vlen < 0)
            vlen = 0;
        if (kind == 3 && !ws_done) {
            ws_done = 1;
            wscale = vlen > 0 ? (o[cur + 2] < 14 ? o[cur + 2] : 14) : -1;
        } else if (kind == 34 && !k34) {
            k34 = 1;
            v34 = vlen > 0;
        } else if (kind == 254 && !k254) {
            k254 = 1;
            v254 = vlen > 2 && o[cur + 2] == 0xF9 && o[cur + 3] == 0x89;
        }
        cur += ln;
    }
    *ws = wscale;
    *tfo = (unsigned char)(k34 ? v34 : v254);
}

/*
 * syn_options(opt, ooff, rows, ws, tfo) -> None
 *     For each segment rows[i] (native int64) whose TCP option bytes are opt[ooff[r]:ooff[r+1]]
 *     (opt uint8, ooff native int64), writes its window scale to ws[i] (int64; -1: none; at
 *     most 14) and "carries a Fast Open cookie" to tfo[i] (one byte, 0 or 1). The options are
 *     read as the per-segment core reads them: the first option of each kind decides, the walk
 *     ends at EOL, at a malformed option or after 41 steps; a cookie is option 34 with a
 *     value, or (without a 34) the experimental option 254 with magic F989 and a value.
 */
static PyObject *
syn_options(PyObject *self, PyObject *args)
{
    Py_buffer opt, ooff, rows, ws, tfo;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*", &opt, &ooff, &rows, &ws, &tfo))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = rows.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t bounds = ooff.len / (Py_ssize_t)sizeof(int64_t);
    if (ws.len < n * (Py_ssize_t)sizeof(int64_t) || tfo.len < n) {
        PyErr_SetString(PyExc_ValueError, "syn_options: outputs too small");
        goto done;
    }
    const unsigned char *o = (const unsigned char *)opt.buf;
    const int64_t *off = (const int64_t *)ooff.buf;
    const int64_t *at = (const int64_t *)rows.buf;
    int64_t *ws_out = (int64_t *)ws.buf;
    unsigned char *tfo_out = (unsigned char *)tfo.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t r = at[i];
        if (r < 0 || r + 1 >= bounds || off[r] < 0 || off[r] > off[r + 1] || off[r + 1] > opt.len) {
            PyErr_Format(PyExc_IndexError, "syn_options: row %lld out of bounds", (long long)r);
            goto done;
        }
        tcpsm_syn_options(o, off[r], off[r + 1], &ws_out[i], &tfo_out[i]);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&opt);
    PyBuffer_Release(&ooff);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&ws);
    PyBuffer_Release(&tfo);
    return result;
}

/*
 * pcapng_walk(buf, pos, big, max_block) -> (offsets, odd, end, stop)
 *     Walks the blocks of one pcapng section from pos: enhanced packet blocks (type 6), simple
 *     (3) and obsolete (2) packet blocks are collected (offsets: native int64 bytes; odd: the
 *     indices among them of the simple and obsolete ones, same form), other blocks skipped,
 *     until a section header or interface description block (stop 2), a block whose length
 *     is below its type's minimum, not a multiple of 4 or above max_block (stop 1), or the
 *     end of the data or a block that does not fit (stop 0). end: where the walk stopped.
 */
static PyObject *
pcapng_walk(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    int big;
    long long max_block;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*npL", &view, &pos, &big, &max_block))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    const int64_t n = (int64_t)view.len;
    if (pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pcapng_walk: pos must be >= 0");
        return NULL;
    }
    /* at most one packet block per 16 bytes */
    const int64_t room = pos <= n ? (n - pos) / 16 + 1 : 1;
    PyObject *offs = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(room * 8));
    PyObject *odd = offs != NULL ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(room * 8)) : NULL;
    if (odd == NULL) {
        Py_XDECREF(offs);
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *o = (int64_t *)PyBytes_AS_STRING(offs);
    int64_t *od = (int64_t *)PyBytes_AS_STRING(odd);
    int64_t count = 0, nodd = 0, off = pos;
    int stop = 0;
    while (off + 8 <= n) {
        const uint32_t btype = load32(buf + off, big);
        const int64_t blen = (int64_t)load32(buf + off + 4, big);
        int64_t least;
        if (btype == 6 || btype == 2)
            least = 32;
        else if (btype == 3)
            least = 16;
        else if (btype == 0x0A0D0D0A || btype == 1) {
            stop = 2;
            break;
        } else
            least = 12;
        if (blen < least || (blen & 3) || blen > max_block) {
            stop = 1;
            break;
        }
        if (off + blen > n)
            break;
        if (btype == 2 || btype == 3)
            od[nodd++] = count;
        if (btype == 2 || btype == 3 || btype == 6)
            o[count++] = off;
        off += blen;
    }
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&offs, (Py_ssize_t)(count * 8)) < 0) {
        Py_DECREF(odd);
        return NULL;
    }
    if (_PyBytes_Resize(&odd, (Py_ssize_t)(nodd * 8)) < 0) {
        Py_DECREF(offs);
        return NULL;
    }
    return Py_BuildValue("(NNLi)", offs, odd, (long long)off, stop);
}

static unsigned
be16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | (unsigned)p[1];
}

int
tcpsm_record(const unsigned char *d, int64_t end, int64_t hl, int64_t etoff, int raw, int64_t out[5])
{
    int64_t p; /* network header */
    int v;
    if (raw) {
        if (end < 1)
            return REC_OTHER;
        p = 0;
        v = d[0] >> 4;
    } else {
        if (end < hl)
            return REC_OTHER;
        p = hl;
        unsigned et = be16(d + etoff);
        int tags = 0;
        while (et == 0x8100 || et == 0x88A8 || et == 0x9100) {
            if (++tags > 16 || end < p + 4)
                return REC_OTHER;
            et = be16(d + p + 2);
            p += 4;
        }
        v = et == 0x0800 ? 4 : et == 0x86DD ? 6 : 0;
    }
    const unsigned char *h = d + p;
    out[0] = v;
    out[1] = p;
    if (v == 4) {
        if (end - p < 20 || (h[0] >> 4) != 4 || (h[0] & 15) < 5)
            return REC_OTHER;
        const int64_t ihl = (int64_t)(h[0] & 15) * 4;
        const int64_t rem = end - p;
        if (rem < ihl || (be16(h + 6) & 0x3FFF) != 0)
            return REC_OTHER;
        int64_t tot = be16(h + 2);
        if (h[9] != 6) {
            out[2] = p + ihl;
            out[3] = tot == 0 || end < p + tot ? end : p + tot;
            out[4] = h[9];
            return REC_NOT_TCP;
        }
        if (rem < ihl + 20)
            return REC_OTHER;
        if (tot == 0)
            tot = rem;
        if (tot < ihl + 20)
            return REC_OTHER;
        out[2] = p + ihl;
        out[3] = tot - ihl;
    } else if (v == 6) {
        if (end - p < 40 || (h[0] >> 4) != 6)
            return REC_OTHER;
        int64_t plen = be16(h + 4);
        const unsigned nh = h[6];
        if (nh != 6) {
            if (nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51 || nh == 135 || nh == 139 ||
                nh == 140)
                return REC_OTHER; /* extension headers, a fragment */
            out[2] = p + 40;
            out[3] = plen == 0 || end < p + 40 + plen ? end : p + 40 + plen;
            out[4] = nh;
            return REC_NOT_TCP;
        }
        if (end - (p + 40) < 20)
            return REC_OTHER;
        if (plen == 0)
            plen = end - p - 40;
        if (plen < 20)
            return REC_OTHER;
        out[2] = p + 40;
        out[3] = plen;
    } else {
        return REC_NOT_IP;
    }
    const int64_t thl = (int64_t)(d[out[2] + 12] >> 4) * 4;
    if (thl < 20 || out[3] - thl < 0)
        return REC_OTHER;
    out[4] = thl;
    return REC_TCP;
}

/*
 * decode_tcp(buf, d, cap, hl, etoff, raw, rec, slow, fam, src, dst, sport, dport, seq, ack,
 *            flags, win, length, mark, ooff, opt) -> (fast, slow)
 *
 *     The common case of the reader's decoding, a record at a time: a link header with an
 *     ethertype (hl bytes, the ethertype at etoff, any VLAN tags up to 16) or raw IP (raw
 *     true), then IPv4 without fragmentation or IPv6 without extension headers, carrying a
 *     whole TCP header whose lengths add up. Such a record's segment is written to the next
 *     row of the outputs (int64 columns, addresses as 16 bytes, an IPv4 one in the last four,
 *     option bytes packed in opt with bounds in ooff, mark TRUNCATED = 2 when the capture cut
 *     the payload) and its index to rec. Every other record (truncated, not IP, malformed, a
 *     fragment, not TCP, a tunnel, extension headers) goes to slow, for the numpy decoder,
 *     which owns every skip reason. The checks are exactly the numpy decoder's, so the
 *     records taken here are the ones it would decode, into the same fields.
 */
static PyObject *
decode_tcp(PyObject *self, PyObject *args)
{
    Py_buffer b[21];
    Py_ssize_t hl, etoff;
    int raw;
    (void)self;
    memset(b, 0, sizeof(b));
    if (!PyArg_ParseTuple(args, "y*y*y*nnpw*w*w*w*w*w*w*w*w*w*w*w*w*w*w*", &b[0], &b[1], &b[2], &hl, &etoff,
                          &raw, &b[3], &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12],
                          &b[13], &b[14], &b[15], &b[16], &b[17]))
        return NULL;
    PyObject *result = NULL;
    const unsigned char *buf = (const unsigned char *)b[0].buf;
    const int64_t blen = (int64_t)b[0].len;
    const int64_t *d = (const int64_t *)b[1].buf;
    const int64_t *cap = (const int64_t *)b[2].buf;
    const Py_ssize_t n = b[1].len / 8;
    int64_t *rec = (int64_t *)b[3].buf, *slow = (int64_t *)b[4].buf;
    unsigned char *fam = (unsigned char *)b[5].buf, *src = (unsigned char *)b[6].buf;
    unsigned char *dst = (unsigned char *)b[7].buf;
    int64_t *sport = (int64_t *)b[8].buf, *dport = (int64_t *)b[9].buf, *seq = (int64_t *)b[10].buf;
    int64_t *ack = (int64_t *)b[11].buf, *flags = (int64_t *)b[12].buf, *win = (int64_t *)b[13].buf;
    int64_t *length = (int64_t *)b[14].buf;
    unsigned char *mark = (unsigned char *)b[15].buf;
    int64_t *ooff = (int64_t *)b[16].buf;
    unsigned char *opt = (unsigned char *)b[17].buf;
    if (b[2].len != b[1].len || hl < 0 || etoff < 0 || (!raw && etoff + 2 > hl) ||
        b[3].len < n * 8 || b[4].len < n * 8 || b[5].len < n || b[6].len < n * 16 || b[7].len < n * 16 ||
        b[8].len < n * 8 || b[9].len < n * 8 || b[10].len < n * 8 || b[11].len < n * 8 ||
        b[12].len < n * 8 || b[13].len < n * 8 || b[14].len < n * 8 || b[15].len < n ||
        b[16].len < (n + 1) * 8 || b[17].len < n * 40) {
        PyErr_SetString(PyExc_ValueError, "decode_tcp: inconsistent lengths");
        goto done;
    }
    Py_ssize_t nf = 0, ns = 0;
    int64_t ob = 0; /* option bytes so far */
    ooff[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t start = d[i];
        const int64_t end = start + cap[i];
        if (start < 0 || cap[i] < 0 || end > blen) {
            PyErr_SetString(PyExc_IndexError, "decode_tcp: a record outside the buffer");
            goto done;
        }
        int64_t w[5];
        if (tcpsm_record(buf + start, end - start, hl, etoff, raw, w) != REC_TCP)
            goto not_fast;
        const int v = (int)w[0];
        const unsigned char *h = buf + start + w[1];
        const int64_t tcp = start + w[2], thl = w[4], len = w[3] - w[4];
        const unsigned char *t = buf + tcp;
        /* a fast segment */
        rec[nf] = i;
        if (v == 4) {
            fam[nf] = 4;
            memset(src + nf * 16, 0, 12);
            memcpy(src + nf * 16 + 12, h + 12, 4);
            memset(dst + nf * 16, 0, 12);
            memcpy(dst + nf * 16 + 12, h + 16, 4);
        } else {
            fam[nf] = 6;
            memcpy(src + nf * 16, h + 8, 16);
            memcpy(dst + nf * 16, h + 24, 16);
        }
        sport[nf] = be16(t);
        dport[nf] = be16(t + 2);
        seq[nf] = ((int64_t)be16(t + 4) << 16) | be16(t + 6);
        ack[nf] = ((int64_t)be16(t + 8) << 16) | be16(t + 10);
        flags[nf] = t[13];
        win[nf] = be16(t + 14);
        length[nf] = len;
        {
            const int64_t a = tcp + 20;
            int64_t oend = tcp + thl < end ? tcp + thl : end;
            int64_t olen = oend - a;
            if (olen < 0)
                olen = 0;
            memcpy(opt + ob, buf + a, (size_t)olen); /* at most 40 bytes */
            ob += olen;
            ooff[nf + 1] = ob;
            const int64_t at = tcp + thl;
            const int64_t pend = end < at + len ? end : at + len;
            mark[nf] = pend - at < len ? 2 : 0;
        }
        nf++;
        continue;
    not_fast:
        slow[ns++] = i;
    }
    result = Py_BuildValue("(nn)", nf, ns);
done:
    for (int k = 0; k < 21; k++)
        if (b[k].obj != NULL)
            PyBuffer_Release(&b[k]);
    return result;
}

char *
tcpsm_put_decimal(char *p, unsigned long long v)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        *p++ = tmp[--k];
    return p;
}

/*
 * addr_names(fam, addr) -> list[str]
 *     The text of each address: fam[i] (one byte) 4 or 6, addr 16 bytes per row (an IPv4
 *     address in the last four), written by the C library's inet_ntop, as socket.inet_ntop.
 */
static PyObject *
addr_names(PyObject *self, PyObject *args)
{
    Py_buffer fam, addr;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*", &fam, &addr))
        return NULL;
    PyObject *out = NULL;
    const Py_ssize_t n = fam.len;
    if (addr.len != n * 16) {
        PyErr_SetString(PyExc_ValueError, "addr_names: 16 address bytes per family byte");
        goto done;
    }
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    const unsigned char *f = (const unsigned char *)fam.buf;
    const unsigned char *a = (const unsigned char *)addr.buf;
    char text[INET6_ADDRSTRLEN];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s;
        if (f[i] == 4) { /* dotted quad, as inet_ntop writes it, without its printf */
            const unsigned char *q = a + i * 16 + 12;
            char *e = text;
            for (int k = 0; k < 4; k++) {
                if (k)
                    *e++ = '.';
                e = tcpsm_put_decimal(e, q[k]);
            }
            s = PyUnicode_FromStringAndSize(text, e - text);
        } else {
            const char *ok = inet_ntop(AF_INET6, a + i * 16, text, sizeof(text));
            s = ok != NULL ? PyUnicode_FromString(text) : NULL;
        }
        if (s == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetFromErrno(PyExc_OSError);
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, s);
    }
done:
    PyBuffer_Release(&fam);
    PyBuffer_Release(&addr);
    return out;
}

/*
 * ts_cells(values) -> list[str]
 *     CSV cells of integer nanosecond timestamps (a list of int or None): exact epoch seconds
 *     with nine decimals ("1700000000.000123456", "-0.500000000"), "" for None. Anything
 *     else, or an int beyond 64 bits, raises TypeError / OverflowError (the caller then
 *     formats in Python).
 */
static PyObject *
ts_cells(PyObject *self, PyObject *values)
{
    (void)self;
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "ts_cells: a list");
        return NULL;
    }
    const Py_ssize_t n = PyList_GET_SIZE(values);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    PyObject *empty = NULL;
    char text[32];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        PyObject *s;
        if (v == Py_None) {
            if (empty == NULL && (empty = PyUnicode_FromString("")) == NULL)
                goto fail;
            Py_INCREF(empty);
            s = empty;
        } else {
            if (!PyLong_CheckExact(v)) {
                PyErr_SetString(PyExc_TypeError, "ts_cells: not an int");
                goto fail;
            }
            long long ns = PyLong_AsLongLong(v);
            if (ns == -1 && PyErr_Occurred())
                goto fail;
            unsigned long long mag = ns < 0 ? 0ULL - (unsigned long long)ns : (unsigned long long)ns;
            char *e = text;
            if (ns < 0)
                *e++ = '-';
            e = tcpsm_put_decimal(e, mag / 1000000000ULL);
            *e++ = '.';
            unsigned long long frac = mag % 1000000000ULL;
            for (int k = 8; k >= 0; k--) {
                e[k] = (char)('0' + frac % 10);
                frac /= 10;
            }
            e += 9;
            s = PyUnicode_FromStringAndSize(text, e - text);
            if (s == NULL)
                goto fail;
        }
        PyList_SET_ITEM(out, i, s);
    }
    Py_XDECREF(empty);
    return out;
fail:
    Py_XDECREF(empty);
    Py_DECREF(out);
    return NULL;
}

/* One CSV cell of a value that is not a timestamp, as tcptrace_sm.report._cell writes it, for
 * the exact built-in types; anything else goes to fallback(value). A new reference. */
static PyObject *
cell_of(PyObject *v, PyObject *fallback, PyObject *empty, PyObject *sep)
{
    if (v == Py_None) {
        Py_INCREF(empty);
        return empty;
    }
    if (v == Py_True)
        return PyUnicode_FromString("true");
    if (v == Py_False)
        return PyUnicode_FromString("false");
    if (PyUnicode_CheckExact(v)) {
        Py_INCREF(v);
        return v;
    }
    if (PyLong_CheckExact(v))
        return PyObject_Str(v);
    if (PyFloat_CheckExact(v)) {
        const double x = PyFloat_AS_DOUBLE(v);
        if (x == 0.0)
            return PyUnicode_FromString("0");
        char *text = PyOS_double_to_string(x, 'f', 6, 0, NULL);
        if (text == NULL)
            return NULL;
        size_t len = strlen(text);
        while (len > 0 && text[len - 1] == '0')
            len--;
        while (len > 0 && text[len - 1] == '.')
            len--;
        PyObject *out = PyUnicode_FromStringAndSize(text, (Py_ssize_t)len);
        PyMem_Free(text);
        return out;
    }
    if (PyList_CheckExact(v) || PyTuple_CheckExact(v)) {
        PyObject *seq = PySequence_Fast(v, "cells: a sequence");
        if (seq == NULL)
            return NULL;
        const Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
        PyObject *parts = PyList_New(k);
        if (parts == NULL) {
            Py_DECREF(seq);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *t = PyObject_Str(PySequence_Fast_GET_ITEM(seq, j));
            if (t == NULL) {
                Py_DECREF(parts);
                Py_DECREF(seq);
                return NULL;
            }
            PyList_SET_ITEM(parts, j, t);
        }
        PyObject *out = PyUnicode_Join(sep, parts);
        Py_DECREF(parts);
        Py_DECREF(seq);
        return out;
    }
    return PyObject_CallOneArg(fallback, v);
}

/*
 * cells(values, fallback) -> list[str]
 *     The CSV cells of one column (a list) that holds no timestamps: "" for None,
 *     "true" / "false", a str as it is, an int in decimal, a float with at most six decimals
 *     and no trailing zeros ("0" for zero), a list or tuple as its items joined by ";";
 *     anything else (subclasses included) as fallback(value) gives it.
 */
static PyObject *
cells(PyObject *self, PyObject *args)
{
    PyObject *values, *fallback;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &values, &fallback))
        return NULL;
    const Py_ssize_t n = PyList_GET_SIZE(values);
    PyObject *empty = PyUnicode_FromString("");
    PyObject *sep = PyUnicode_FromString(";");
    PyObject *out = empty != NULL && sep != NULL ? PyList_New(n) : NULL;
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = cell_of(PyList_GET_ITEM(values, i), fallback, empty, sep);
        if (c == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, c);
    }
done:
    Py_XDECREF(empty);
    Py_XDECREF(sep);
    return out;
}

/* the fast engine's chunk evaluation, in _fastpath.c */
PyObject *fast_fields(PyObject *self, PyObject *args);
PyObject *fast_apply(PyObject *self, PyObject *args);
PyObject *group_first(PyObject *self, PyObject *args);
PyObject *fast_segments(PyObject *self, PyObject *args);
PyObject *journal_rows(PyObject *self, PyObject *args);
PyObject *express(PyObject *self, PyObject *args);

static PyMethodDef scan_methods[] = {
    {"express", express, METH_VARARGS,
     "express(path, init, narrow, params, zchars, zcols, states, errnos, zstates, limits, sink) -> "
     "(0, stats) | (1, reason): a whole classic pcap through the fast paths, or why not"},
    {"fast_segments", fast_segments, METH_VARARGS,
     "fast_segments(order, slot, frame, ts, clock, flags, seq, ack, win, length, sport, src, mark, cport, "
     "cip, truncated, seg64, seg8) -> None: fast_apply's segments from a chunk's columns"},
    {"journal_rows", journal_rows, METH_VARARGS,
     "journal_rows(order, nrows, seg64, seg8, bounds, status, gslot, fid, gen, limit, out) -> int: the "
     "journal's "
     "rows of the committed groups, in capture order (-1: they need the wide form)"},
    {"group_first", group_first, METH_VARARGS,
     "group_first(h, first, inv) -> m: distinct uint64 values by first occurrence"},
    {"fast_fields", fast_fields, METH_NOARGS,
     "fast_fields() -> tuple[str, ...]: the store fields fast_apply reads and writes, in fmap's order"},
    {"fast_apply", fast_apply, METH_VARARGS,
     "fast_apply(d64, n64, d32, n32, fmap, bounds, gslot, created, seg64, seg8, params, status, p1pos) "
     "-> None: one chunk of the fast engine, connection by connection"},
    {"pcapng_walk", pcapng_walk, METH_VARARGS,
     "pcapng_walk(buf, pos, big, max_block) -> (offsets, odd, end, stop): the packet blocks of a section"},
    {"cells", cells, METH_VARARGS, "cells(values, fallback) -> list[str]: CSV cells of a column"},
    {"ts_cells", ts_cells, METH_O, "ts_cells(values) -> list[str]: CSV cells of nanosecond timestamps"},
    {"addr_names", addr_names, METH_VARARGS, "addr_names(fam, addr) -> list[str]: inet_ntop of each row"},
    {"decode_tcp", decode_tcp, METH_VARARGS,
     "decode_tcp(buf, d, cap, hl, etoff, raw, rec, slow, fam, src, dst, sport, dport, seq, ack, flags, "
     "win, length, mark, ooff, opt) -> (fast, slow): the common records' TCP segments"},
    {"syn_options", syn_options, METH_VARARGS,
     "syn_options(opt, ooff, rows, ws, tfo) -> None: window scale and Fast Open of SYNs"},
    {"gather", gather, METH_VARARGS, "gather(src, pos, width, out) -> None: rows of src at pos into out"},
    {"pcap_walk", pcap_walk, METH_VARARGS,
     "pcap_walk(buf, pos, hdr, big) -> (int64 offsets as bytes, end offset)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT, "_scan", "Compiled helpers of the capture reader and the fast engine.", -1,
    scan_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&scan_module);
}
