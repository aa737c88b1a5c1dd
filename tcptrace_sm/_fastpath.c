/*
 * The fast engine's evaluation of one chunk (tcptrace_sm.engine.Engine._fast), compiled:
 * connection by connection, segment by segment, the same rules the numpy formulation applies
 * to whole chunks at once. Part of the tcptrace_sm._scan module (see _scan.c).
 *
 * fast_fields() -> tuple[str, ...]
 *     The store fields the evaluation reads and writes, in the order of fmap below.
 *
 * fast_apply(d64, n64, d32, n32, fmap, bounds, gslot, created, seg64, seg8, params,
 *            status, p1pos) -> None
 *     d64 / d32: the store's 64- and 32-bit tables (rows of n64 / n32 fields, writable).
 *     fmap: for each name of fast_fields(), kind << 32 | column (kind 0: d64, 1: d32).
 *     bounds: the groups' first positions and the end (G + 1 int64): a group is one slot's
 *     segments of the chunk, in capture order. gslot: each group's slot; created: 1 where
 *     the connection began in this chunk (its first segment is its SYN).
 *     seg64: 9 rows of n int64: frame, ts, capture clock, flags, seq, ack, win, length, and
 *     the window scale of a SYN (-1: none). seg8: 4 rows of n bytes: from the client, SYN
 *     with a TFO cookie, payload cut by the snaplen, flags the core rejects.
 *     params: int64 tw_ns, zeek timer, journal cap, limit, CLOSED, SYN-SENT, ESTABLISHED,
 *     Zeek's shortest inactivity timeout.
 *     status (per group, written): 0 committed to the store, 1 to hand over to the core
 *     (the store row is left as it was).
 *     p1pos (per group, written): the position of the SYN-ACK that answered, else -1.
 *
 * A group is evaluated on a copy of its row and written back only when every segment stayed
 * on the common paths; one that leaves them is handed over whole, as in numpy, so the
 * sequence of checks is free to stop at the first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define T_FIN 0x01
#define T_SYN 0x02
#define T_RST 0x04
#define T_ACK 0x10
#define MASK32 0xFFFFFFFFLL

enum { P_SYN, P_SYNACK, P_EST, P_DONE };

/* connection fields */
enum {
    F_FIRST_CLOCK,
    F_LAST_TS,
    F_LAST_CLOCK,
    F_PHASE,
    F_SA_F,
    F_SA_T,
    F_SA_O,
    F_HS_F,
    F_HS_T,
    F_HS_O,
    F_RST_F,
    F_RST_T,
    F_RST_O,
    F_RST_BY,
    F_RST_XS,
    F_RST_YS,
    F_REFUSED,
    F_ZS,
    F_ZH,
    F_ZR0,
    F_SIDES
};
static const char *const conn_names[F_SIDES] = {
    "first_clock", "last_ts", "last_clock", "phase", "sa_f", "sa_t", "sa_o", "hs_f", "hs_t", "hs_o",
    "rst_f", "rst_t", "rst_o", "rst_by", "rst_xs", "rst_ys", "refused", "zS", "zH", "zr0",
};

/* fields of each side */
enum {
    S_PK, S_BY, S_ISN, S_NXT, S_FIN, S_FINF, S_FINT, S_FINCLK, S_FINO, S_PPF, S_FAF, S_FAT, S_FAO,
    S_LACK, S_WIN, S_WS, S_LSEND, S_LTX, S_RTX, S_BEND, S_BEDGE, S_BF, S_BT, S_ZMAX,
    S_ZA, S_ZD, S_ZF, S_ZR, S_ZTN, S_ZWN, S_ZGN,
    S_ZT0, S_ZT1, S_ZT2, S_ZT3, S_ZW0, S_ZW1, S_ZW2, S_ZW3, S_ZG0, S_ZG1, S_ZG2, S_ZG3,
    S_ZTR, S_ZTRIM, S_ZRE, S_ZACK, S_ZBLO, S_ZBHI,
    S_N
};
static const char *const side_names[S_N] = {
    "pk", "by", "isn", "nxt", "fin", "finf", "fint", "finclk", "fino", "ppf", "faf", "fat", "fao",
    "lack", "win", "ws", "lsend", "ltx", "rtx", "bend", "bedge", "bf", "bt", "zmax",
    "zA", "zD", "zF", "zR", "zTn", "zWn", "zGn",
    "zT0", "zT1", "zT2", "zT3", "zW0", "zW1", "zW2", "zW3", "zG0", "zG1", "zG2", "zG3",
    "ztr", "ztrim", "zre", "zack", "zblo", "zbhi",
};
#define NF (F_SIDES + 2 * S_N)

PyObject *
fast_fields(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    PyObject *out = PyTuple_New(NF);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < F_SIDES; i++) {
        PyObject *s = PyUnicode_FromString(conn_names[i]);
        if (s == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, s);
    }
    for (int x = 0; x < 2; x++) {
        for (int i = 0; i < S_N; i++) {
            PyObject *s = PyUnicode_FromFormat("%c_%s", x ? 's' : 'c', side_names[i]);
            if (s == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyTuple_SET_ITEM(out, F_SIDES + x * S_N + i, s);
        }
    }
    return out;
}

/* One more of a side's Zeek events (T, W or G: count at side[n], ordinals of the 1st, 10th,
 * 100th and 1000th at side[first..first+3]); 1 once it reaches 10000, which Zeek writes in
 * ways the core keeps to itself. */
static int
zeek_event(int64_t *side, int n, int first, int64_t ordn, int sub)
{
    const int64_t count = ++side[n];
    int i = count == 1 ? 0 : count == 10 ? 1 : count == 100 ? 2 : count == 1000 ? 3 : -1;
    if (i >= 0)
        side[first + i] = ordn * 4 + sub;
    return count >= 10000;
}

typedef struct {
    int64_t tw_ns, zeek_timer, journal_cap, limit, st_closed, st_syn_sent, st_est, zeek_idle;
    int64_t st_fw1, st_fw2, st_cw, st_last_ack, st_tw, st_syn_rcvd, cw_ns;
} Params;
#define N_PARAMS 15

/* A synchronised side's state from the FINs so far (as the store's states() reads them):
 * FIN-WAIT-1/2 until the peer's FIN, then TIME-WAIT; CLOSE-WAIT after the peer's FIN, then
 * LAST-ACK and CLOSED once its own FIN is acknowledged. */
static int64_t
closing_state(const int64_t *me, const int64_t *peer, const Params *p)
{
    const int sent = me[S_FINO] >= 0, peer_sent = peer[S_FINO] >= 0;
    const int first = sent && (!peer_sent || me[S_FINO] < peer[S_FINO]);
    if (first)
        return peer_sent ? p->st_tw : (me[S_FAO] >= 0 ? p->st_fw2 : p->st_fw1);
    if (peer_sent)
        return sent ? (me[S_FAO] >= 0 ? p->st_closed : p->st_last_ack) : p->st_cw;
    return p->st_est;
}

/* Zeek's reassembler for one side whose payload is partly cut by the snaplen, over one
 * chunk: the rules of tcptrace_sm.zeek.GapCounter (TCP_Reassembler's DataSent and
 * AckReceived, with TCP_Endpoint::Size), relative sequence numbers. The side is established
 * throughout; its peer stops being so at an RST, after which no gap is counted. */
#define Z_MAX_INITIAL_WINDOW 16384
#define Z_MAX_ABOVE_HOLE 16384
#define Z_MAX_BUFFERED (10 * 1024 * 1024)
#define Z_MAX_BLOCKS 16

typedef struct {
    int64_t trim, reassem, ack_rel, last_rel, fin_seq;
    int fin_cnt, skip, peer_reset, nb;
    int64_t lo[Z_MAX_BLOCKS + 1], hi[Z_MAX_BLOCKS + 1]; /* held ranges, sorted and disjoint */
} Reasm;

static int64_t
rz_size(const Reasm *r)
{
    int64_t size = r->last_rel > r->ack_rel ? r->last_rel : r->ack_rel;
    if (size > 0) {
        size -= 1;
        if (r->fin_cnt && size)
            size -= 1;
    }
    return size > 0 ? size : 0;
}

static void
rz_pop(Reasm *r)
{
    r->nb -= 1;
    memmove(r->lo, r->lo + 1, (size_t)r->nb * sizeof(int64_t));
    memmove(r->hi, r->hi + 1, (size_t)r->nb * sizeof(int64_t));
}

/* the held ranges from the first on that now touch what was delivered, delivered too */
static void
rz_absorb(Reasm *r)
{
    while (r->nb && r->lo[0] <= r->reassem) {
        if (r->hi[0] > r->reassem)
            r->reassem = r->hi[0];
        rz_pop(r);
    }
}

static void
rz_insert(Reasm *r, int64_t lo, int64_t hi)
{
    const int n = r->nb;
    int i = 0;
    while (i < n && r->hi[i] < lo)
        i++;
    int j = i;
    while (j < n && r->lo[j] <= hi) {
        if (r->lo[j] < lo)
            lo = r->lo[j];
        if (r->hi[j] > hi)
            hi = r->hi[j];
        j++;
    }
    memmove(r->lo + i + 1, r->lo + j, (size_t)(n - j) * sizeof(int64_t));
    memmove(r->hi + i + 1, r->hi + j, (size_t)(n - j) * sizeof(int64_t));
    r->lo[i] = lo;
    r->hi[i] = hi;
    r->nb = n - (j - i) + 1;
    if (r->nb > Z_MAX_BLOCKS)
        r->nb = Z_MAX_BLOCKS; /* the lowest are kept */
}

static int
rz_unacked(const Reasm *r)
{
    return r->ack_rel == 0 || r->ack_rel == 1;
}

/* the side sent up to end (its FIN at fin, where fin_at) */
static void
rz_sent(Reasm *r, int64_t end, int fin_at, int64_t fin)
{
    if (end > r->last_rel)
        r->last_rel = end;
    if (fin_at && !r->fin_cnt) {
        r->fin_cnt = 1;
        r->fin_seq = fin + 1;
    }
}

static void
rz_data_sent(Reasm *r, int64_t seq, int64_t len)
{
    if (r->skip)
        return;
    const int64_t upper = seq + len;
    if (seq < r->ack_rel) {
        if (upper <= r->ack_rel)
            return;
        seq = r->ack_rel;
    }
    if (upper <= r->trim)
        return;
    if (seq < r->trim)
        seq = r->trim;
    if (seq <= r->reassem) {
        if (upper > r->reassem) {
            r->reassem = upper;
            rz_absorb(r);
            if (rz_unacked(r) && rz_size(r) > Z_MAX_INITIAL_WINDOW)
                r->trim = r->reassem;
        }
    } else {
        rz_insert(r, seq, upper);
    }
    if (r->nb) {
        int64_t held = 0;
        for (int i = 0; i < r->nb; i++)
            held += r->hi[i] - r->lo[i];
        if ((rz_unacked(r) && r->hi[r->nb - 1] - r->reassem > Z_MAX_ABOVE_HOLE) ||
            r->reassem - r->trim + held > Z_MAX_BUFFERED) {
            r->nb = 0;
            r->skip = 1;
        }
    } else if (r->reassem - r->trim > Z_MAX_BUFFERED) {
        r->skip = 1;
    }
}

/* payload [lo, lo + len) captured whole */
static void
rz_data(Reasm *r, int64_t lo, int64_t len)
{
    if (r->skip)
        return;
    const int64_t hi = lo + len;
    if (r->ack_rel <= lo && r->trim <= lo && lo <= r->reassem && r->reassem < hi && !r->nb) {
        r->reassem = hi; /* in order: delivered at once */
        if (rz_unacked(r) && rz_size(r) > Z_MAX_INITIAL_WINDOW)
            r->trim = hi;
        else if (hi - r->trim > Z_MAX_BUFFERED)
            r->skip = 1;
    } else {
        rz_data_sent(r, lo, len);
    }
}

/* the peer's ACK (with RST where reset): how many content gaps it shows */
static int
rz_ack(Reasm *r, int64_t rel_ack, int reset)
{
    int gaps = 0;
    if (rel_ack > r->ack_rel && !reset)
        r->ack_rel = rel_ack;
    if (reset)
        r->peer_reset = 1;
    if (r->fin_cnt && rel_ack >= r->fin_seq)
        rel_ack = r->fin_seq - 1;
    if (rel_ack <= r->trim)
        return 0;
    if (rel_ack <= r->reassem) {
        r->trim = rel_ack;
        return 0;
    }
    if (!r->skip) {
        while (r->nb && r->lo[0] < rel_ack) {
            const int64_t lo = r->lo[0], hi = r->hi[0];
            rz_pop(r);
            if (lo > r->reassem && !r->peer_reset)
                gaps++;
            if (hi > r->reassem)
                r->reassem = hi;
            rz_absorb(r);
        }
        if (rel_ack > r->reassem && !r->peer_reset)
            gaps++;
    }
    if (rel_ack > r->reassem)
        r->reassem = rel_ack;
    while (r->nb && r->hi[0] <= rel_ack)
        rz_pop(r);
    r->trim = rel_ack;
    return gaps;
}

typedef struct {
    const int64_t *frame, *ts, *clk, *flags, *seq, *ack, *win, *len, *ws;
    const uint8_t *cl, *tfo, *cut, *bad;
} Segs;

/* The RST that ends the connection: sent by side ``by`` from state xs to a receiver in ys;
 * nothing may follow it (P_DONE: the core's). */
static void
record_rst(int64_t *S, int64_t frame, int64_t t, int64_t ordn, int64_t by, int64_t xs, int64_t ys)
{
    S[F_RST_F] = frame;
    S[F_RST_T] = t;
    S[F_RST_O] = ordn;
    S[F_RST_BY] = by;
    S[F_RST_XS] = xs;
    S[F_RST_YS] = ys;
    S[F_PHASE] = P_DONE;
}

/* One group: 0 commit, 1 hand over, 2 + x run it again with side x's payload through Zeek's
 * reassembler (bit x of force2: a hole in its stream); S holds the row on entry, the new row
 * on 0. */
static int
run_group(int64_t *S, const Segs *g, int64_t lo, int64_t hi, int created, const Params *p, int64_t *p1pos,
          int force2)
{
#define SD(x, f) S[F_SIDES + (x) * S_N + (f)]
    const int64_t pk_g = SD(0, S_PK) + SD(1, S_PK);
    if (pk_g + (hi - lo) > p->journal_cap)
        return 1;
    /* Zeek's reassembler mode of each side's payload for the chunk (-1 none yet, 0 whole, 1
     * cut, 2 both: Zeek's reassembler runs, see Reasm). Every
     * plain data segment counts here; one that is not synchronised hands the group over
     * anyway, so the mode only matters where all are. */
    int has_cut[2] = {0, 0}, has_whole[2] = {0, 0};
    for (int64_t k = lo; k < hi; k++) {
        const int64_t f = g->flags[k];
        if ((f & T_ACK) && !(f & (T_SYN | T_RST)) && !g->bad[k] && g->len[k] > 0) {
            int x = g->cl[k] ? 0 : 1;
            if (g->cut[k])
                has_cut[x] = 1;
            else
                has_whole[x] = 1;
        }
    }
    int64_t mode[2];
    Reasm rz[2];
    for (int x = 0; x < 2; x++) {
        int64_t m0 = SD(x, S_ZTR);
        if (m0 == 2 || (force2 >> x & 1) || (has_cut[x] && (has_whole[x] || m0 == 0)) ||
            (has_whole[x] && m0 == 1))
            mode[x] = 2;
        else
            mode[x] = has_cut[x] ? 1 : (has_whole[x] ? 0 : m0);
        if (mode[x] == 2) { /* Zeek's reassembler from where the last chunk left it */
            Reasm *r = &rz[x];
            r->trim = SD(x, S_ZTRIM);
            r->reassem = SD(x, S_ZRE);
            r->ack_rel = SD(x, S_ZACK);
            r->last_rel = SD(x, S_NXT);
            r->fin_cnt = r->skip = r->peer_reset = r->nb = 0;
            r->fin_seq = 0;
            if (SD(x, S_ZBLO) >= 0) {
                r->lo[0] = SD(x, S_ZBLO);
                r->hi[0] = SD(x, S_ZBHI);
                r->nb = 1;
            }
            if (SD(x, S_FIN) >= 0)
                rz_sent(r, SD(x, S_NXT), 1, SD(x, S_FIN));
        }
    }
    const int64_t quiet_for = p->zeek_timer < p->tw_ns ? p->zeek_timer : p->tw_ns;
    int64_t prev_ts = S[F_LAST_TS], prev_clk = S[F_LAST_CLOCK];
    *p1pos = -1;
    /* each side's data beyond the peer's window, not judged yet (one at a time): its end,
     * the edge it passed, frame and time; fresh if recorded in this chunk (the store keeps
     * the edge, frame and time of the last one left pending at the end of a chunk) */
    struct {
        int64_t end, edge, frame, ts;
        int fresh;
    } pend[2];
    for (int x = 0; x < 2; x++) {
        pend[x].end = SD(x, S_BEND);
        pend[x].edge = pend[x].frame = pend[x].ts = 0;
        pend[x].fresh = 0;
    }
    for (int64_t k = lo; k < hi; k++) {
        const int64_t fl = g->flags[k];
        const int f_syn = (fl & T_SYN) != 0, f_ack = (fl & T_ACK) != 0;
        const int f_rst = (fl & T_RST) != 0, f_fin = (fl & T_FIN) != 0;
        const int bad = g->bad[k] != 0;
        const int syn = f_syn && !f_ack && !bad;
        const int synack = f_syn && f_ack && !bad;
        const int rst = f_rst && !bad;
        const int plain = f_ack && !f_syn && !f_rst && !bad;
        const int fin = plain && f_fin;
        const int64_t t = g->ts[k], ck = g->clk[k], len = g->len[k], win = g->win[k];
        const int64_t seq = g->seq[k], ack = g->ack[k], frame = g->frame[k];
        const int x = g->cl[k] ? 0 : 1, y = 1 - x;
        const int64_t ordn = pk_g + (k - lo);
        if (bad || (!f_ack && !f_syn && !f_rst))
            return 1;
        /* time never goes back within a connection; no pause reaches Zeek's timers, but for
         * one while both sides are synchronised and neither has closed (Zeek's timers only
         * re-arm then) that stays short of its inactivity timeout, and one before a resend of
         * an unanswered SYN (Zeek's attempt timer ends its connection, whose record stays the
         * flow's, and the resend opens the next; the answer is judged below) */
        if (t < prev_ts)
            return 1;
        if (ck - prev_clk >= p->zeek_timer && !(S[F_PHASE] == P_SYN && x == 0) &&
            !(S[F_PHASE] == P_EST && SD(0, S_FIN) < 0 && SD(1, S_FIN) < 0 && ck - prev_clk < p->zeek_idle))
            return 1;
        if (win == 0 && ((f_syn && !bad) || fin))
            return 1;
        int est = 0;
        const int64_t phase = S[F_PHASE];
        if (phase == P_SYN) {
            if (x == 0) { /* the SYN, or a resend of it */
                if (!(syn && seq == SD(0, S_ISN) && len == 0 && !g->tfo[k]))
                    return 1;
                if (!(k == lo && created))
                    SD(0, S_RTX) += 1;
                SD(0, S_LTX) = t;
                if (k == lo && created) {
                    SD(0, S_WS) = g->ws[k];
                    SD(0, S_LSEND) = t;
                    S[F_ZS] = 0;
                }
            } else { /* the server's first word: a SYN-ACK, or an RST refusing */
                const int64_t isn1 = (SD(0, S_ISN) + 1) & MASK32;
                const int ans_synack = synack && ack == isn1 && len == 0;
                const int ans_refuse = rst && f_ack && ack == isn1 && len == 0;
                if (!(ans_synack || ans_refuse))
                    return 1;
                /* a SYN-ACK after a silence longer than TIME-WAIT is a new connection's */
                if (synack && t - prev_ts > p->tw_ns)
                    return 1;
                /* Zeek: an answer tcp_attempt_delay after the SYN starts a new connection */
                if (ck - S[F_FIRST_CLOCK] >= p->zeek_timer)
                    return 1;
                S[F_SA_F] = frame;
                S[F_SA_T] = t;
                S[F_SA_O] = ordn;
                if (ans_synack) {
                    SD(1, S_ISN) = seq;
                    SD(1, S_WS) = g->ws[k];
                    SD(1, S_LSEND) = t;
                    SD(1, S_LTX) = t;
                    S[F_PHASE] = P_SYNACK;
                    S[F_ZH] = ordn * 4;
                    *p1pos = k;
                } else {
                    S[F_REFUSED] = 1;
                    record_rst(S, frame, t, ordn, 1, p->st_closed, p->st_syn_sent);
                    S[F_ZR0] = ordn * 4;
                }
            }
        } else if (phase == P_SYNACK) {
            /* the client's ACK of the SYN-ACK completes the handshake; the server waits. Or
             * the client resets (a SYN scan, a SYN-ACK its kernel did not expect), at its
             * SND.NXT, acknowledging no more than the SYN-ACK: nothing may follow */
            if (x == 1)
                return 1;
            const int64_t ak1 = ((ack - SD(1, S_ISN)) & MASK32) == 1;
            if (rst && len == 0 && ((seq - SD(0, S_ISN)) & MASK32) == 1 && (!f_ack || ak1)) {
                record_rst(S, frame, t, ordn, 0, p->st_est, p->st_syn_rcvd);
                if (SD(0, S_ZR) < 0)
                    SD(0, S_ZR) = ordn * 4;
            } else {
                if (!(plain && !f_fin && ak1))
                    return 1;
                S[F_HS_F] = frame;
                S[F_HS_T] = t;
                S[F_HS_O] = ordn;
                S[F_PHASE] = P_EST;
                est = 1;
            }
        } else if (phase == P_EST) {
            est = 1;
        } else {
            return 1;
        }
        int64_t ak = 0;
        if (est) {
            if (f_syn || !(plain || rst))
                return 1;
            const int64_t sq = (seq - SD(x, S_ISN)) & MASK32;
            ak = (ack - SD(y, S_ISN)) & MASK32;
            const int64_t end = sq + len;
            if (sq >= p->limit || (f_ack && ak >= p->limit))
                return 1;
            const int own_fin_before = SD(x, S_FIN) >= 0, peer_fin_before = SD(y, S_FIN) >= 0;
            const int at_own_fin = fin && !own_fin_before;
            if (own_fin_before && (len > 0 || f_fin))
                return 1;
            const int counted = plain && !own_fin_before;
            const int64_t cend = end + f_fin;
            const int64_t own_before = SD(x, S_NXT);
            /* a hole in the stream (a segment the capture missed, or one to come out of order):
             * Zeek's reassembler keeps what is above it; no ACK of data never seen */
            if (counted && sq > own_before && mode[x] != 2)
                return 2 + x;
            if (f_ack && ak > SD(y, S_NXT))
                return 1;
            /* the FIN at or after SND.NXT, acknowledging the peer's FIN if that came first */
            if (at_own_fin && end < own_before)
                return 1;
            if (at_own_fin && peer_fin_before && ak <= SD(y, S_FIN))
                return 1;
            /* the second closer is CLOSED once its FIN is acknowledged: silence */
            if (SD(x, S_FAO) >= 0 && SD(y, S_FINO) >= 0 && SD(x, S_FINO) > SD(y, S_FINO))
                return 1;
            /* once both FINs are acknowledged anything more is for the core */
            if (SD(0, S_FAO) >= 0 && SD(1, S_FAO) >= 0)
                return 1;
            /* TIME-WAIT from the second FIN on: a segment after its timer (or after Zeek's
             * tcp_close_delay, or the core's clock-driven retirement) goes to the core */
            if (SD(0, S_FINO) >= 0 && SD(1, S_FINO) >= 0) {
                const int second = SD(0, S_FINO) < SD(1, S_FINO) ? 1 : 0;
                if (t - SD(second, S_FINT) >= p->tw_ns || ck - SD(second, S_FINCLK) >= quiet_for)
                    return 1;
            }
            /* an RST exactly at SND.NXT (nothing may follow it: the connection is P_DONE from
             * there, whose segments all go to the core), also after FINs, but not into a
             * TIME-WAIT (RFC 1337: the core's) */
            const int at_rst = rst;
            int64_t rst_xs = p->st_est, rst_ys = p->st_est;
            if (at_rst) {
                if (!(sq == own_before && len == 0))
                    return 1;
                rst_xs = closing_state(&SD(x, 0), &SD(y, 0), p);
                rst_ys = closing_state(&SD(y, 0), &SD(x, 0), p);
                if (rst_ys == p->st_tw || rst_ys == p->st_closed)
                    return 1;
                /* a CLOSE-WAIT it ends that lasted the close-wait timeout (since the peer's FIN
                 * or the side's last send) is a stuck one: the core notes that */
                for (int w = 0; w < 2; w++) {
                    if ((w == x ? rst_xs : rst_ys) != p->st_cw)
                        continue;
                    const int64_t sent = SD(w, S_LSEND), since = SD(1 - w, S_FINT);
                    if (t - (sent > since ? sent : since) >= p->cw_ns)
                        return 1;
                }
            }
            /* windows: data beyond the receiver's window is judged at its next segment */
            const int both_ws = SD(0, S_WS) >= 0 && SD(1, S_WS) >= 0;
            const int64_t sh_x = both_ws ? SD(x, S_WS) : 0, sh_y = both_ws ? SD(y, S_WS) : 0;
            const int64_t y_lack = SD(y, S_LACK);
            const int64_t y_edge = y_lack + (SD(y, S_WIN) << sh_y);
            if (plain && pend[y].end >= 0) { /* this one judges the peer's */
                if (pend[y].end > ak + (win << sh_x) + 1)
                    return 1;
                pend[y].end = -1;
            }
            const int fresh = (len > 0 || f_fin) && cend > own_before;
            if (plain && fresh && len > 0 && y_lack >= 0 && end > y_edge + 1 && pend[x].end < 0) {
                pend[x].end = end;
                pend[x].edge = y_edge;
                pend[x].frame = frame;
                pend[x].ts = t;
                pend[x].fresh = 1;
            }
            /* Zeek: payload retransmissions (T) and zero windows (W) */
            const int data = plain && len > 0;
            const int z_t = data && end <= SD(x, S_ZMAX);
            if (data && end > SD(x, S_ZMAX))
                SD(x, S_ZMAX) = end;
            const int z_w = plain && !f_fin && win == 0;
            if (z_w && (own_fin_before || peer_fin_before))
                return 1; /* Zeek does not count those: the core's */
            /* Zeek's history letters: the first of each kind */
            if (plain && !f_fin && len == 0 && SD(x, S_ZA) < 0)
                SD(x, S_ZA) = ordn * 4;
            if (plain && !f_fin && len > 0 && SD(x, S_ZD) < 0)
                SD(x, S_ZD) = ordn * 4;
            if (at_own_fin && SD(x, S_ZF) < 0)
                SD(x, S_ZF) = ordn * 4;
            if (at_rst && SD(x, S_ZR) < 0)
                SD(x, S_ZR) = ordn * 4;
            /* in Zeek's order within a segment: its letters, W, T, then the gap its ACK shows */
            if (z_w && zeek_event(&SD(x, 0), S_ZWN, S_ZW0, ordn, 1))
                return 1;
            if (z_t && zeek_event(&SD(x, 0), S_ZTN, S_ZT0, ordn, 2))
                return 1;
            /* Zeek's reassembler: this side's whole payload, the peer's trimmed by this ACK;
             * a peer's payload all cut makes every ACK past what was acknowledged a gap; a
             * side with payload both cut and whole runs the reassembler itself */
            if (mode[x] == 2 && plain) {
                rz_sent(&rz[x], cend, at_own_fin, end);
                if (data && !g->cut[k])
                    rz_data(&rz[x], sq, len);
            } else if (data && !g->cut[k] && end > SD(x, S_ZRE)) {
                SD(x, S_ZRE) = end;
            }
            if (mode[y] == 2 && f_ack) {
                const int got = rz_ack(&rz[y], ak, f_rst);
                if (got > 1)
                    return 1; /* two gaps at once: the core writes those */
                if (got == 1 && zeek_event(&SD(y, 0), S_ZGN, S_ZG0, ordn, 3))
                    return 1;
            } else if (f_ack && !f_rst) {
                const int64_t yfin = SD(y, S_FIN);
                const int64_t capped = (yfin >= 0 && ak > yfin) ? yfin : ak;
                const int gap = mode[y] == 1 && capped > SD(y, S_ZTRIM);
                if (capped > SD(y, S_ZTRIM))
                    SD(y, S_ZTRIM) = capped;
                if (ak > SD(y, S_ZACK))
                    SD(y, S_ZACK) = ak;
                if (mode[y] == 1 && SD(y, S_ZTRIM) > SD(y, S_ZRE))
                    SD(y, S_ZRE) = SD(y, S_ZTRIM);
                if (gap && zeek_event(&SD(y, 0), S_ZGN, S_ZG0, ordn, 3))
                    return 1;
            }
            /* the peer's FIN acknowledged */
            if (plain && SD(y, S_FIN) >= 0 && ak > SD(y, S_FIN) && SD(y, S_FAO) < 0) {
                SD(y, S_FAF) = frame;
                SD(y, S_FAT) = t;
                SD(y, S_FAO) = ordn;
            }
            /* the core's retransmissions, last sends, SND.NXT */
            if (counted && len > 0 && end <= own_before)
                SD(x, S_RTX) += 1;
            if ((counted && len > 0 && end > own_before) || at_own_fin)
                SD(x, S_LSEND) = t;
            if (counted && cend > own_before)
                SD(x, S_NXT) = cend;
            if (at_own_fin) {
                SD(x, S_LTX) = t;
                SD(x, S_FIN) = end;
                SD(x, S_FINF) = frame;
                SD(x, S_FINT) = t;
                SD(x, S_FINCLK) = ck;
                SD(x, S_FINO) = ordn;
                SD(x, S_PPF) = SD(y, S_PK);
            }
            if (at_rst)
                record_rst(S, frame, t, ordn, x, rst_xs, rst_ys);
        } else if (f_ack) {
            ak = (ack - SD(y, S_ISN)) & MASK32;
        }
        SD(x, S_PK) += 1;
        SD(x, S_BY) += len;
        SD(x, S_WIN) = win;
        if (f_ack)
            SD(x, S_LACK) = ak;
        prev_ts = t;
        prev_clk = ck;
    }
    S[F_LAST_TS] = prev_ts;
    S[F_LAST_CLOCK] = prev_clk;
    for (int x = 0; x < 2; x++) {
        if (mode[x] == 2) { /* carried on only as the store can hold it: one block at most */
            const Reasm *r = &rz[x];
            if (r->nb > 1 || r->skip)
                return 1;
            SD(x, S_ZTRIM) = r->trim;
            SD(x, S_ZRE) = r->reassem;
            SD(x, S_ZACK) = r->ack_rel;
            SD(x, S_ZBLO) = r->nb ? r->lo[0] : -1;
            SD(x, S_ZBHI) = r->nb ? r->hi[0] : -1;
        }
        SD(x, S_ZTR) = mode[x];
        SD(x, S_BEND) = pend[x].end;
        if (pend[x].end >= 0 && pend[x].fresh) {
            SD(x, S_BEDGE) = pend[x].edge;
            SD(x, S_BF) = pend[x].frame;
            SD(x, S_BT) = pend[x].ts;
        }
    }
    return 0;
#undef SD
}

PyObject *
fast_apply(PyObject *self, PyObject *args)
{
    Py_buffer b64, b32, bmap, bbounds, bslot, bcreated, bseg64, bseg8, bparams, bstatus, bp1;
    Py_ssize_t n64, n32;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*nw*ny*y*y*y*y*y*y*w*w*", &b64, &n64, &b32, &n32, &bmap, &bbounds, &bslot,
                          &bcreated, &bseg64, &bseg8, &bparams, &bstatus, &bp1))
        return NULL;
    Py_buffer *all[] = {&b64, &b32, &bmap, &bbounds, &bslot, &bcreated, &bseg64, &bseg8, &bparams, &bstatus, &bp1};
    const char *err = NULL;
    const int64_t ngroups = (int64_t)(bslot.len / 8);
    const int64_t nseg = (int64_t)(bseg8.len / 4);
    const int64_t cap = n64 > 0 ? (int64_t)(b64.len / 8) / n64 : 0;
    if (n64 <= 0 || n32 <= 0 || (int64_t)(b32.len / 4) / n32 != cap)
        err = "fast_apply: the store's tables do not match";
    else if (bmap.len != NF * 8)
        err = "fast_apply: fmap must hold one entry per field of fast_fields()";
    else if (bbounds.len != (ngroups + 1) * 8 || bcreated.len != ngroups || bstatus.len != ngroups ||
             bp1.len != ngroups * 8)
        err = "fast_apply: one bound, slot, created flag, status and position per group";
    else if (bseg64.len != nseg * 9 * 8 || bparams.len != N_PARAMS * 8)
        err = "fast_apply: seg64 must be 9 rows of the segments, params 15 values";
    const int64_t *fmap = (const int64_t *)bmap.buf;
    const int64_t *bounds = (const int64_t *)bbounds.buf;
    const int64_t *gslot = (const int64_t *)bslot.buf;
    if (err == NULL) {
        for (int i = 0; i < NF && err == NULL; i++) {
            int64_t kind = fmap[i] >> 32, col = fmap[i] & MASK32;
            if (kind < 0 || kind > 1 || col >= (kind ? n32 : n64))
                err = "fast_apply: a field's column is out of range";
        }
        for (int64_t gi = 0; gi < ngroups && err == NULL; gi++) {
            if (gslot[gi] < 0 || gslot[gi] >= cap || bounds[gi] < 0 || bounds[gi] >= bounds[gi + 1] ||
                bounds[gi + 1] > nseg)
                err = "fast_apply: a group's slot or bounds are out of range";
        }
    }
    if (err != NULL) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            PyBuffer_Release(all[i]);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    int64_t *d64 = (int64_t *)b64.buf;
    int32_t *d32 = (int32_t *)b32.buf;
    const int64_t *s64 = (const int64_t *)bseg64.buf;
    const uint8_t *s8 = (const uint8_t *)bseg8.buf;
    const int64_t *pv = (const int64_t *)bparams.buf;
    const Params prm = {pv[0], pv[1], pv[2],  pv[3],  pv[4],  pv[5],  pv[6], pv[7],
                        pv[8], pv[9], pv[10], pv[11], pv[12], pv[13], pv[14]};
    const Segs g = {s64, s64 + nseg, s64 + 2 * nseg, s64 + 3 * nseg, s64 + 4 * nseg, s64 + 5 * nseg,
                    s64 + 6 * nseg, s64 + 7 * nseg, s64 + 8 * nseg, s8, s8 + nseg, s8 + 2 * nseg, s8 + 3 * nseg};
    const uint8_t *created = (const uint8_t *)bcreated.buf;
    uint8_t *status = (uint8_t *)bstatus.buf;
    int64_t *p1 = (int64_t *)bp1.buf;
    int64_t S[NF];
    Py_BEGIN_ALLOW_THREADS
    for (int64_t gi = 0; gi < ngroups; gi++) {
        const int64_t row = gslot[gi];
        int r = 0, force2 = 0;
        for (int attempt = 0; attempt < 3; attempt++) { /* again: with a side's reassembler */
            for (int i = 0; i < NF; i++) {
                int64_t col = fmap[i] & MASK32;
                S[i] = (fmap[i] >> 32) ? (int64_t)d32[row * n32 + col] : d64[row * n64 + col];
            }
            r = run_group(S, &g, bounds[gi], bounds[gi + 1], created[gi] != 0, &prm, &p1[gi], force2);
            if (r < 2)
                break;
            force2 |= 1 << (r - 2);
            r = 1;
        }
        status[gi] = (uint8_t)r;
        if (r != 0)
            continue;
        for (int i = 0; i < NF; i++) {
            int64_t col = fmap[i] & MASK32;
            if (fmap[i] >> 32)
                d32[row * n32 + col] = (int32_t)S[i];
            else
                d64[row * n64 + col] = S[i];
        }
    }
    Py_END_ALLOW_THREADS
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        PyBuffer_Release(all[i]);
    Py_RETURN_NONE;
}

/*
 * group_first(h, first, inv) -> m
 *     The distinct values of the uint64 array h: first[j] (int64, room for len(h)) is the
 *     position of the j-th distinct value's first occurrence, in order of first occurrence,
 *     and inv[i] (int64) the j of h[i]; returns the number of distinct values. One pass over
 *     an open-addressing table twice as large as h.
 */
PyObject *
group_first(PyObject *self, PyObject *args)
{
    Py_buffer bh, bfirst, binv;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*w*", &bh, &bfirst, &binv))
        return NULL;
    const int64_t n = (int64_t)(bh.len / 8);
    if (bfirst.len < n * 8 || binv.len < n * 8) {
        PyBuffer_Release(&bh);
        PyBuffer_Release(&bfirst);
        PyBuffer_Release(&binv);
        PyErr_SetString(PyExc_ValueError, "group_first: first and inv need room for len(h) int64 each");
        return NULL;
    }
    int64_t size = 16;
    while (size < 2 * n)
        size <<= 1;
    int64_t *slot = PyMem_Malloc((size_t)size * sizeof(int64_t)); /* group + 1, 0: empty */
    if (slot == NULL) {
        PyBuffer_Release(&bh);
        PyBuffer_Release(&bfirst);
        PyBuffer_Release(&binv);
        return PyErr_NoMemory();
    }
    memset(slot, 0, (size_t)size * sizeof(int64_t));
    const uint64_t *h = (const uint64_t *)bh.buf;
    int64_t *first = (int64_t *)bfirst.buf, *inv = (int64_t *)binv.buf;
    const uint64_t mask = (uint64_t)size - 1;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t v = h[i];
        uint64_t b = (v ^ (v >> 29)) * 0xBF58476D1CE4E5B9ULL;
        b = (b ^ (b >> 32)) & mask;
        for (;;) {
            const int64_t g = slot[b];
            if (g == 0) {
                slot[b] = m + 1;
                first[m] = i;
                inv[i] = m++;
                break;
            }
            if (h[first[g - 1]] == v) {
                inv[i] = g - 1;
                break;
            }
            b = (b + 1) & mask;
        }
    }
    PyMem_Free(slot);
    PyBuffer_Release(&bh);
    PyBuffer_Release(&bfirst);
    PyBuffer_Release(&binv);
    return PyLong_FromLongLong((long long)m);
}

/* Release every buffer of a call (those that were filled: the first n). */
static void
release_all(Py_buffer *b, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&b[i]);
}

/*
 * fast_segments(order, slot, frame, ts, clock, flags, seq, ack, win, length, sport, src, mark,
 *               cport, cip, truncated, seg64, seg8) -> None
 *     The segments of fast_apply's groups (seg64, seg8; see fast_apply) from the chunk's
 *     columns: order (n int64) the chunk's rows in group order, slot (n int64) each one's
 *     slot; frame, ts, clock, flags, seq, ack, win, length, sport: the chunk's int64 columns;
 *     src its source addresses (16 bytes each), mark its marks (bytes, truncated: the mark
 *     of a payload cut by the snaplen); cport, cip the store's client port (int64) and
 *     address (16 bytes) per slot. The window scale row of seg64 is -1 throughout (the
 *     caller fills the SYNs'); seg8 gets from the client, 0, cut, flags the core rejects.
 */
PyObject *
fast_segments(PyObject *self, PyObject *args)
{
    enum { NB = 17 };
    Py_buffer b[NB];
    long truncated;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*y*y*y*y*lw*w*", &b[0], &b[1], &b[2], &b[3], &b[4],
                          &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12], &b[13], &b[14],
                          &truncated, &b[15], &b[16]))
        return NULL;
    const int64_t n = (int64_t)(b[0].len / 8);
    const int64_t rows = (int64_t)(b[2].len / 8);
    const int64_t cap = (int64_t)(b[13].len / 8);
    const char *err = NULL;
    if (b[1].len != n * 8 || b[15].len != n * 9 * 8 || b[16].len != n * 4)
        err = "fast_segments: slot, seg64 and seg8 must match order";
    else if (b[11].len != rows * 16 || b[12].len != rows || b[14].len != cap * 16)
        err = "fast_segments: src, mark and cip must match the columns and the store";
    for (int i = 3; i <= 10 && err == NULL; i++)
        if (b[i].len != rows * 8)
            err = "fast_segments: the chunk's columns must be int64 of one length";
    const int64_t *order = (const int64_t *)b[0].buf, *slot = (const int64_t *)b[1].buf;
    for (int64_t k = 0; k < n && err == NULL; k++)
        if (order[k] < 0 || order[k] >= rows || slot[k] < 0 || slot[k] >= cap)
            err = "fast_segments: a row or slot is out of range";
    if (err != NULL) {
        release_all(b, NB);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    const int64_t *frame = b[2].buf, *ts = b[3].buf, *clk = b[4].buf, *flags = b[5].buf, *seq = b[6].buf;
    const int64_t *ack = b[7].buf, *win = b[8].buf, *len = b[9].buf, *sport = b[10].buf;
    const uint8_t *src = b[11].buf, *mark = b[12].buf, *cip = b[14].buf;
    const int64_t *cport = b[13].buf;
    int64_t *s64 = b[15].buf;
    uint8_t *s8 = b[16].buf;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t k = 0; k < n; k++) {
        const int64_t r = order[k], s = slot[k], f = flags[r];
        s64[k] = frame[r];
        s64[n + k] = ts[r];
        s64[2 * n + k] = clk[r];
        s64[3 * n + k] = f;
        s64[4 * n + k] = seq[r];
        s64[5 * n + k] = ack[r];
        s64[6 * n + k] = win[r];
        s64[7 * n + k] = len[r];
        s64[8 * n + k] = -1;
        s8[k] = sport[r] == cport[s] && memcmp(src + r * 16, cip + s * 16, 16) == 0;
        s8[n + k] = 0;
        s8[2 * n + k] = (mark[r] & truncated) != 0;
        const int64_t f6 = f & 0x3F; /* FIN SYN RST PSH ACK URG */
        s8[3 * n + k] = f6 == 0x3F || f6 == 0 || (f & 0x03) == 0x03 || (f & 0x06) == 0x06 || (f & 0x05) == 0x05;
    }
    Py_END_ALLOW_THREADS
    release_all(b, NB);
    Py_RETURN_NONE;
}

/*
 * journal_rows(order, nrows, seg64, seg8, bounds, status, gslot, fid, gen, limit, out) -> int
 *     The journal's rows (the engine's 40-byte _NARROW_DT, packed: slot i4, gen u4, dframe
 *     u4, dclock u4, ts i8, seq u4, ack u4, length i4, win u2, flags u1, up u1) of the
 *     segments of the groups fast_apply committed (status 0), in capture order: order, seg64,
 *     seg8, bounds, status and gslot as fast_apply had them, nrows the chunk's length, fid and
 *     gen each group's first frame and generation in the store (int64); out room for
 *     len(order) rows. Returns the number of rows written, or -1 (nothing usable written)
 *     where a frame lies limit (at most 2**32) or more after its connection's first, or a
 *     clock that far ahead of its segment's time.
 */
PyObject *
journal_rows(PyObject *self, PyObject *args)
{
    enum { NB = 9 };
    Py_buffer b[NB];
    Py_ssize_t nrows;
    long long limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*y*y*y*Lw*", &b[0], &nrows, &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &b[7], &limit, &b[8]))
        return NULL;
    const int64_t n = (int64_t)(b[0].len / 8);
    const int64_t ngroups = (int64_t)(b[5].len / 8);
    const char *err = NULL;
    if (b[1].len != n * 9 * 8 || b[2].len != n * 4 || b[8].len != n * 40)
        err = "journal_rows: seg64, seg8 and out must match order";
    else if (b[3].len != (ngroups + 1) * 8 || b[4].len != ngroups || b[6].len != ngroups * 8 ||
             b[7].len != ngroups * 8 || nrows < 0 || limit < 0 || limit > MASK32 + 1)
        err = "journal_rows: one bound, status, slot, first frame and generation per group";
    const int64_t *order = b[0].buf, *bounds = b[3].buf, *gslot = b[5].buf;
    for (int64_t k = 0; k < n && err == NULL; k++)
        if (order[k] < 0 || order[k] >= nrows)
            err = "journal_rows: a row is out of range";
    for (int64_t gi = 0; gi < ngroups && err == NULL; gi++)
        if (gslot[gi] < 0 || gslot[gi] > INT32_MAX || bounds[gi] < 0 || bounds[gi] > bounds[gi + 1] ||
            bounds[gi + 1] > n)
            err = "journal_rows: a group's slot or bounds are out of range";
    int64_t *at = NULL;
    if (err == NULL && (at = PyMem_Malloc((size_t)(nrows + 1) * sizeof(int64_t))) == NULL) {
        release_all(b, NB);
        return PyErr_NoMemory();
    }
    if (err != NULL) {
        release_all(b, NB);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    const int64_t *s64 = b[1].buf, *fid = b[6].buf, *gen = b[7].buf;
    const uint8_t *s8 = b[2].buf, *status = b[4].buf;
    uint8_t *out = b[8].buf;
    int64_t written = 0;
    Py_BEGIN_ALLOW_THREADS
    /* at[r]: 1 where chunk row r is kept, then (prefix sums) its place in capture order */
    memset(at, 0, (size_t)(nrows + 1) * sizeof(int64_t));
    for (int64_t gi = 0; gi < ngroups; gi++)
        if (status[gi] == 0)
            for (int64_t k = bounds[gi]; k < bounds[gi + 1]; k++)
                at[order[k]] = 1;
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t keep = at[r];
        at[r] = keep ? written : -1;
        written += keep;
    }
    for (int64_t gi = 0; gi < ngroups && written >= 0; gi++) {
        if (status[gi] != 0)
            continue;
        const int32_t slot32 = (int32_t)gslot[gi];
        const uint32_t gen32 = (uint32_t)gen[gi];
        for (int64_t k = bounds[gi]; k < bounds[gi + 1]; k++) {
            const int64_t dframe = s64[k] - fid[gi], dclock = s64[2 * n + k] - s64[n + k];
            if (dframe < 0 || dframe >= limit || dclock < 0 || dclock >= limit) {
                written = -1;
                break;
            }
            uint8_t *o = out + at[order[k]] * 40;
            const uint32_t df = (uint32_t)dframe, dc = (uint32_t)dclock;
            const uint32_t sq = (uint32_t)s64[4 * n + k], ak = (uint32_t)s64[5 * n + k];
            const int32_t ln = (int32_t)s64[7 * n + k];
            const uint16_t wn = (uint16_t)s64[6 * n + k];
            memcpy(o, &slot32, 4);
            memcpy(o + 4, &gen32, 4);
            memcpy(o + 8, &df, 4);
            memcpy(o + 12, &dc, 4);
            memcpy(o + 16, &s64[n + k], 8);
            memcpy(o + 24, &sq, 4);
            memcpy(o + 28, &ak, 4);
            memcpy(o + 32, &ln, 4);
            memcpy(o + 36, &wn, 2);
            o[38] = (uint8_t)s64[3 * n + k];
            o[39] = (uint8_t)(s8[k] | (s8[2 * n + k] << 1));
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(at);
    release_all(b, NB);
    return PyLong_FromLongLong((long long)written);
}
