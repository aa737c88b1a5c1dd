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

/* ======================================================================================
 * The express path (tcptrace_sm.express): a whole classic pcap file through the same chunk
 * evaluation, in one C pass, for captures whose every connection stays on the fast paths.
 *
 * express(path, init, narrow, params, zchars, zcols, states, errnos, zstates, limits, sink,
 *         spill_open, progress) -> (0, stats) or (1, reason)
 *     path: the file (bytes); init: the NF int64 defaults of a new connection's row
 *     (fast_fields order) and narrow: NF bytes, 1 where the engine's store keeps the field in
 *     32 bits; params: the N_PARAMS of fast_apply; zchars / zcols: Zeek's history letters and
 *     the row index of each one's ordinal; states: the state names by code; errnos: the errno
 *     text by the RST receiver's state code (None: none), one more (None) at the end; zstates:
 *     the conn_state names by _zeek_parts' code; limits: int64 chunk bytes, open connections
 *     allowed, journal budget, closed connections kept in memory (the others go to a temporary
 *     file that spill_open() makes and returns the descriptor of), longest record, decapsulate
 *     (0 or 1), output bytes gathered before each call of sink(bytes), which receives the CSV
 *     rows, and the bits of the 4-tuple hash to use (0xFFFFFFFF; fewer only to test collisions).
 *     progress (None, or called with the bytes and records read after each chunk). limits[9]:
 *     the reader's first chunk (its look-ahead), limits[0] the others.
 *     Every step mirrors tcptrace_sm.engine.Engine over the reader's chunks; anything the
 *     engine would hand to its core, or the reader would skip, warn about or fix, makes the
 *     call give up (1, reason) at once, and the caller runs the full engine instead.
 * ====================================================================================== */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "_scan.h"
#include <unistd.h>

#define X_NEVER INT64_MAX

enum { X_FIN, X_HALF, X_RST, X_REFUSED, X_UNANSWERED, X_OPEN, X_NCLOSE };
static const char *const x_close_names[X_NCLOSE] = {"fin", "half", "rst", "refused", "unanswered", "open"};
enum { A_RST, A_SUPERSEDED, A_UNANSWERED, A_STUCK, A_N };
static const char *const x_anomaly_names[A_N] = {"rst_terminated", "superseded", "unanswered_syn",
                                                 "stuck_close_wait"};

typedef struct {
    int64_t fid, first_ts, last_ts, retire_at, compact_at;
    int64_t cpk, spk, cby, sby, tw_c, tw_s, since;
    int64_t c_isn, s_isn;
    int64_t rts;          /* when a new connection took its 4-tuple over (-1: none) */
    int64_t *S;           /* the row while the connection is live in the store; NULL once closed */
    int64_t chunk;        /* the chunk it was last seen in */
    int64_t ghead, gtail; /* its place among the chunk's connections, its last segment there */
    int64_t gen;          /* bumped when its schedule changes (heap entries of older ones are stale) */
    uint32_t hist;        /* interned history text */
    int32_t cs, ss, waits;
    uint8_t fam, close, rst_by, errno_i, zstate, anomalies, created;
    uint8_t store; /* closed here, but still in the engine's store (reset or refused) */
    uint8_t state; /* 0 in the table (live, or closed once S is NULL), 2 free, 3 retiring */
    uint16_t cport, sport;
    uint8_t cip[16], sip[16];
} XConn;

typedef struct {
    int64_t at;
    int64_t idx, gen;
} XHeapItem;

typedef struct {
    int64_t *v;
    int64_t n, cap;
} XList;

/* A closed connection written out to the spill file (its XConn, S NULL), in the queue of those
 * in retirement order: its flow_id and when it retires (-2 while it is being retired, -1 gone).
 * The n-th one written has code XCODE(n) (below -2) in the table and the lists of finished
 * ones, and is record n - spill_seq0 of the file. */
typedef struct {
    int64_t fid, at;
} XClosed;
#define XCODE(k) (-3 - (k))
#define X_MAX_SEQ ((1LL << 30) - 4)
/* A parked connection: an attempt nobody answered, quiet a while, written out whole (its XConn
 * and its row) to slot k of the park file; in memory its flow_id (-1: the slot is free). Its
 * code is PCODE(k), below every closed one's. */
#define PCODE(k) (INT32_MIN + (k))
#define PIDX(v) ((v) - (int64_t)INT32_MIN)
#define ISPARK(v) ((v) < -3 - (1LL << 30))

typedef struct {
    XHeapItem *a;
    int64_t n, cap;
} XHeap;

typedef struct {
    /* connections */
    XConn *conns;
    int64_t nconns, capconns;
    int64_t *free_list;
    int64_t nfree, capfree;
    /* 4-tuple -> connection: open addressing, linear probing; -1 empty, -2 deleted */
    int32_t *tab;   /* a connection's index, or a closed one's code (see XCODE) */
    uint32_t *tabh; /* the hash of each entry's 4-tuple */
    uint64_t tabmask;
    int64_t tabused, tabdead;
    uint32_t hash_mask; /* of the 4-tuple hashes (fewer bits: collisions, for the tests) */
    XHeap retire;       /* live connections, and closed ones kept in memory, by retire_at */
    /* closed connections written out (see XClosed), the spill file and a window on it */
    XClosed *cl;
    int64_t ncl, capcl, cl_base, cl_front, tail_at, spill_seq0;
    XList closing; /* a chunk's connections that only wait now */
    /* parked connections (see PCODE), their file and its records' buffer */
    int64_t *pk, npk, cappk, *pk_free, npk_free, cappk_free, park_after;
    int pk_fd;
    uint8_t *pbuf;
    XConn pone;
    int64_t pS[NF];
    XHeap parkh;
    PyObject *spill_open, *progress;
    int spill_fd;
    int64_t spill_n;
    XConn *win;
    int64_t win_lo, win_n;
    XConn one; /* the record read apart from the window */
    /* interned histories */
    char **hist;
    int64_t nhist, caphist;
    int64_t *hist_tab;
    uint64_t hist_mask;
    /* output */
    char *out;
    size_t outn;
    int64_t outcap;
    PyObject *sink;
    /* counts */
    int64_t live_open, journal, held, not_ip, not_tcp;
    int decapsulate;
    int64_t conns_out, close_n[X_NCLOSE], noted[A_N];
    /* settings */
    Params p;
    const int64_t *init;
    const uint8_t *narrow;
    const char *zchars;
    const int64_t *zcols;
    int nz;
    PyObject *states, *errnos, *zstates;
    int64_t max_open, journal_budget, held_in_memory, flush_at;
    size_t longest_name; /* of the state, errno and conn_state names */
    const char *bail;
} X;

/* Room for need items in the array ptr of capacity cap (a variable, updated), doubling from
 * first: 0, or -1 out of memory (ptr and cap as they were). */
#define XRESERVE(ptr, cap, need, first)                                                                      \
    __extension__({                                                                                          \
        int ok_ = 0;                                                                                         \
        if ((need) > (cap)) {                                                                                \
            int64_t nc_ = (cap) ? (cap) : (first);                                                           \
            while (nc_ < (need))                                                                             \
                nc_ *= 2;                                                                                    \
            void *a_ = realloc((ptr), (size_t)nc_ * sizeof *(ptr));                                          \
            if (a_ == NULL)                                                                                  \
                ok_ = -1;                                                                                    \
            else {                                                                                           \
                (ptr) = a_;                                                                                  \
                (cap) = nc_;                                                                                 \
            }                                                                                                \
        }                                                                                                    \
        ok_;                                                                                                 \
    })

static int
xheap_push(XHeap *h, int64_t at, int64_t idx, int64_t gen)
{
    if (XRESERVE(h->a, h->cap, h->n + 1, 1024) < 0)
        return -1;
    int64_t i = h->n++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (h->a[up].at <= at)
            break;
        h->a[i] = h->a[up];
        i = up;
    }
    h->a[i].at = at;
    h->a[i].idx = idx;
    h->a[i].gen = gen;
    return 0;
}

static XHeapItem
xheap_pop(XHeap *h)
{
    XHeapItem top = h->a[0], last = h->a[--h->n];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].at < h->a[c].at)
            c++;
        if (last.at <= h->a[c].at)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

static uint64_t
xend_hash(const uint8_t *addr, unsigned port, unsigned fam)
{
    uint64_t a, b;
    memcpy(&a, addr, 8);
    memcpy(&b, addr + 8, 8);
    return (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xBF58476D1CE4E5B9ULL) ^
           (((uint64_t)port << 8 | fam) * 0x94D049BB133111EBULL);
}

/* the same both ways round */
static uint64_t
xkey_hash(unsigned fam, const uint8_t *src, unsigned sp, const uint8_t *dst, unsigned dp)
{
    uint64_t h = xend_hash(src, sp, fam) + xend_hash(dst, dp, fam);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 32;
    return h;
}

static int
xsame(const XConn *c, unsigned fam, const uint8_t *src, unsigned sp, const uint8_t *dst, unsigned dp)
{
    if (c->fam != fam)
        return 0;
    if (c->cport == sp && c->sport == dp && !memcmp(c->cip, src, 16) && !memcmp(c->sip, dst, 16))
        return 1;
    return c->cport == dp && c->sport == sp && !memcmp(c->cip, dst, 16) && !memcmp(c->sip, src, 16);
}

static int
xtab_grow(X *x)
{
    uint64_t ncap = (x->tabmask + 1) * 2;
    if (x->tabused * 2 < (int64_t)(x->tabmask + 1))
        ncap = x->tabmask + 1; /* only tombstones to clear */
    int32_t *nt = malloc(ncap * sizeof(int32_t));
    uint32_t *nh = malloc(ncap * sizeof(uint32_t));
    if (nt == NULL || nh == NULL) {
        free(nt);
        free(nh);
        return -1;
    }
    for (uint64_t i = 0; i < ncap; i++)
        nt[i] = -1;
    for (uint64_t i = 0; i <= x->tabmask; i++) {
        int64_t v = x->tab[i];
        if (v == -1 || v == -2)
            continue;
        uint64_t h = x->tabh[i] & (ncap - 1);
        while (nt[h] != -1)
            h = (h + 1) & (ncap - 1);
        nt[h] = v;
        nh[h] = x->tabh[i];
    }
    free(x->tab);
    free(x->tabh);
    x->tab = nt;
    x->tabh = nh;
    x->tabmask = ncap - 1;
    x->tabdead = 0;
    return 0;
}

static const XConn *xspilled(X *x, int64_t k);
static const XConn *xparked(X *x, int64_t k);

/* the table slot holding the connection of this 4-tuple, or where a new one would go (*found 0) */
static uint64_t
xtab_find(X *x, unsigned fam, const uint8_t *src, unsigned sp, const uint8_t *dst, unsigned dp, int *found,
          uint32_t *hash)
{
    const uint32_t full = (uint32_t)xkey_hash(fam, src, sp, dst, dp) & x->hash_mask;
    *hash = full;
    uint64_t h = full & x->tabmask;
    int64_t first_dead = -1;
    for (;;) {
        int64_t v = x->tab[h];
        if (v == -1) {
            *found = 0;
            return first_dead >= 0 ? (uint64_t)first_dead : h;
        }
        if (v == -2) {
            if (first_dead < 0)
                first_dead = (int64_t)h;
        } else if (x->tabh[h] == full) {
            const XConn *c = v >= 0 ? &x->conns[v] : ISPARK(v) ? xparked(x, PIDX(v)) : xspilled(x, v);
            if (c == NULL) { /* the spill file does not read back */
                *found = -1;
                return h;
            }
            if (xsame(c, fam, src, sp, dst, dp)) {
                *found = 1;
                return h;
            }
        }
        h = (h + 1) & x->tabmask;
    }
}

/* the table entry of a closed connection (by its code), removed */
static void
xtab_remove_code(X *x, uint32_t hash, int32_t code)
{
    for (uint64_t h = hash & x->tabmask; x->tab[h] != -1; h = (h + 1) & x->tabmask)
        if (x->tab[h] == code) {
            x->tab[h] = -2;
            x->tabused--;
            x->tabdead++;
            return;
        }
}

/* The table slot of connection i (live or closed in memory); -1 (x->bail) if it is not there. */
static int64_t
xtab_slot(X *x, int64_t i)
{
    const XConn *c = &x->conns[i];
    int found;
    uint32_t hash;
    const uint64_t slot = xtab_find(x, c->fam, c->cip, c->cport, c->sip, c->sport, &found, &hash);
    if (found != 1 || x->tab[slot] != i) {
        x->bail = "a connection not in the table";
        return -1;
    }
    return (int64_t)slot;
}

static void xfree_conn(X *x, int64_t i);

static void
xtab_remove(X *x, const XConn *c)
{
    int found;
    uint32_t full;
    uint64_t h = xtab_find(x, c->fam, c->cip, c->cport, c->sip, c->sport, &found, &full);
    if (found) {
        x->tab[h] = -2;
        x->tabused--;
        x->tabdead++;
    }
}

static uint32_t
xintern(X *x, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    if (x->hist_tab == NULL ||
        x->nhist * 2 >= (int64_t)(x->hist_mask + 1)) { /* grow (and at first, make) the table */
        uint64_t ncap = x->hist_tab ? (x->hist_mask + 1) * 2 : 256;
        int64_t *nt = malloc(ncap * sizeof(int64_t));
        if (nt == NULL)
            return UINT32_MAX;
        for (uint64_t i = 0; i < ncap; i++)
            nt[i] = -1;
        for (int64_t k = 0; k < x->nhist; k++) {
            uint64_t g = 1469598103934665603ULL;
            for (const char *q = x->hist[k]; *q; q++)
                g = (g ^ (uint8_t)*q) * 1099511628211ULL;
            g &= ncap - 1;
            while (nt[g] != -1)
                g = (g + 1) & (ncap - 1);
            nt[g] = k;
        }
        free(x->hist_tab);
        x->hist_tab = nt;
        x->hist_mask = ncap - 1;
    }
    uint64_t i = h & x->hist_mask;
    while (x->hist_tab[i] != -1) {
        const char *t = x->hist[x->hist_tab[i]];
        if (strlen(t) == n && !memcmp(t, s, n))
            return (uint32_t)x->hist_tab[i];
        i = (i + 1) & x->hist_mask;
    }
    if (XRESERVE(x->hist, x->caphist, x->nhist + 1, 64) < 0)
        return UINT32_MAX;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return UINT32_MAX;
    memcpy(copy, s, n);
    copy[n] = 0;
    x->hist[x->nhist] = copy;
    x->hist_tab[i] = x->nhist;
    return (uint32_t)x->nhist++;
}

/* Engine.states of a live row (clock < 0: no TIME-WAIT runs out) */
static void
xstates(const X *x, const int64_t *S, int64_t clock, int64_t *cs_out, int64_t *ss_out, int64_t *twc,
        int64_t *tws)
{
    const Params *p = &x->p;
    const int64_t *cside = S + F_SIDES, *sside = S + F_SIDES + S_N;
    const int64_t ph = S[F_PHASE];
    int64_t cs = p->st_closed, ss = p->st_closed, tw_c = -1, tw_s = -1;
    if (ph == P_SYN)
        cs = p->st_syn_sent;
    if (ph == P_SYNACK) {
        cs = p->st_est;
        ss = p->st_syn_rcvd;
    }
    if (ph == P_EST) {
        cs = closing_state(cside, sside, p);
        ss = closing_state(sside, cside, p);
        if (cs == p->st_tw)
            tw_c = sside[S_FINT];
        if (ss == p->st_tw)
            tw_s = cside[S_FINT];
    }
    if (clock >= 0) {
        if (cs == p->st_tw && clock - tw_c >= p->tw_ns)
            cs = p->st_closed;
        if (ss == p->st_tw && clock - tw_s >= p->tw_ns)
            ss = p->st_closed;
    }
    *cs_out = cs;
    *ss_out = ss;
    *twc = tw_c;
    *tws = tw_s;
}

/* Engine._recycles for a store connection: its 4-tuple's first segment of the chunk is a plain
 * SYN from the client with another ISN, and the connection is over or an unanswered attempt */
static int
xrecycles(const X *x, const XConn *c, unsigned fam, const uint8_t *src, unsigned sp, int64_t seq, int64_t ts)
{
    const int64_t *S = c->S;
    const int from_client = fam == c->fam && sp == c->cport && memcmp(src, c->cip, 16) == 0;
    if (!from_client || seq == S[F_SIDES + S_ISN])
        return 0;
    int64_t cs, ss, a, b;
    xstates(x, S, ts, &cs, &ss, &a, &b);
    const Params *p = &x->p;
    const int over = (cs == p->st_closed || cs == p->st_tw) && (ss == p->st_closed || ss == p->st_tw);
    const int retry = S[F_PHASE] == P_SYN && S[F_SIDES + S_N + S_PK] == 0;
    return over || retry;
}

/* Engine._recycles for a closed connection (its record made, S gone): a plain SYN with another
 * ISN than its sender's; from the client only for one the engine still keeps in its store */
static int
xrecycles_closed(const XConn *c, unsigned fam, const uint8_t *src, unsigned sp, int64_t seq)
{
    const int from_client = fam == c->fam && sp == c->cport && memcmp(src, c->cip, 16) == 0;
    if (c->store && !from_client)
        return 0;
    return seq != (from_client ? c->c_isn : c->s_isn);
}

/* Everything a record needs, from the row (Engine.states with no clock, _zeek_parts, the close
 * kind, the RST's sender and errno, the anomalies but the stuck CLOSE-WAIT); 0, or -1 out of
 * memory. */
static int
xsummarize(X *x, XConn *c)
{
    const int64_t *S = c->S;
    const Params *p = &x->p;
    const int64_t *cside = S + F_SIDES, *sside = S + F_SIDES + S_N;
    const int64_t ph = S[F_PHASE];
    int64_t cs, ss, tw_c, tw_s;
    xstates(x, S, -1, &cs, &ss, &tw_c, &tw_s);
    c->cs = (int32_t)cs;
    c->ss = (int32_t)ss;
    c->tw_c = tw_c;
    c->tw_s = tw_s;
    c->last_ts = S[F_LAST_TS];
    c->cpk = cside[S_PK];
    c->spk = sside[S_PK];
    c->c_isn = cside[S_ISN];
    c->s_isn = sside[S_ISN];
    c->cby = cside[S_BY];
    c->sby = sside[S_BY];
    const int refused = S[F_REFUSED] == 1;
    const int64_t rb = S[F_RST_BY];
    const int o_fin = cside[S_FINO] >= 0, r_fin = sside[S_FINO] >= 0;
    c->close = refused            ? X_REFUSED
               : rb >= 0          ? X_RST
               : (o_fin && r_fin) ? X_FIN
               : (o_fin || r_fin) ? X_HALF
               : ph == P_SYN      ? X_UNANSWERED
                                  : X_OPEN;
    c->rst_by = (uint8_t)(rb + 1);
    const Py_ssize_t nerr = PyTuple_GET_SIZE(x->errnos);
    int64_t ys = rb >= 0 ? S[F_RST_YS] : nerr - 1;
    if (ys < 0 || ys >= nerr)
        ys = nerr - 1;
    c->errno_i = (uint8_t)ys;
    c->anomalies = (uint8_t)((rb >= 0 ? 1 << A_RST : 0) | (ph == P_SYN ? 1 << A_UNANSWERED : 0));
    c->waits = cs == p->st_cw ? 0 : ss == p->st_cw ? 1 : -1;
    if (c->waits >= 0) {
        const int64_t sent = c->waits == 0 ? cside[S_LSEND] : sside[S_LSEND];
        const int64_t fin = c->waits == 0 ? sside[S_FINT] : cside[S_FINT];
        c->since = sent > fin ? sent : fin;
    }
    /* conn_state */
    const int o_reset = rb == 0 && !refused && !(o_fin && r_fin);
    const int r_reset = (rb == 1 && !(o_fin && r_fin)) || refused;
    c->zstate = refused            ? 0
                : ph == P_SYN      ? 1
                : o_reset          ? 2
                : r_reset          ? 3
                : (o_fin && r_fin) ? 4
                : o_fin            ? 5
                : r_fin            ? 6
                                   : 7;
    /* history: the letters by ordinal, ties in letter order */
    int64_t key[64];
    int idx[64], m = 0;
    for (int i = 0; i < x->nz && i < 64; i++) {
        const int64_t v = S[x->zcols[i]];
        if (v < 0)
            continue;
        int j = m++;
        while (j > 0 && key[j - 1] > v) { /* insertion: stable */
            key[j] = key[j - 1];
            idx[j] = idx[j - 1];
            j--;
        }
        key[j] = v;
        idx[j] = i;
    }
    char text[64];
    for (int j = 0; j < m; j++)
        text[j] = x->zchars[idx[j]];
    const uint32_t h = xintern(x, text, (size_t)m);
    if (h == UINT32_MAX)
        return -1;
    c->hist = h;
    return 0;
}

static int
xout_reserve(X *x, size_t more)
{
    return XRESERVE(x->out, x->outcap, (int64_t)(x->outn + more), 1 << 20);
}

static int
xflush(X *x)
{
    if (!x->outn)
        return 0;
    PyObject *b = PyBytes_FromStringAndSize(x->out, (Py_ssize_t)x->outn);
    if (b == NULL)
        return -1;
    PyObject *r = PyObject_CallOneArg(x->sink, b);
    Py_DECREF(b);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    x->outn = 0;
    return 0;
}

static char *
xput_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *
xput_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return tcpsm_put_decimal(o, (unsigned long long)(-(v + 1)) + 1);
    }
    return tcpsm_put_decimal(o, (unsigned long long)v);
}

static char *
xput_ts(char *o, int64_t ns)
{
    if (ns < 0) {
        *o++ = '-';
        ns = -ns;
    }
    o = tcpsm_put_decimal(o, (unsigned long long)(ns / 1000000000));
    *o++ = '.';
    int64_t f = ns % 1000000000;
    for (int64_t d = 100000000; d; d /= 10)
        *o++ = (char)('0' + (f / d) % 10);
    return o;
}

static char *
xput_addr(char *o, unsigned fam, const uint8_t *a)
{
    if (fam == 4) {
        for (int k = 0; k < 4; k++) {
            if (k)
                *o++ = '.';
            o = tcpsm_put_decimal(o, a[12 + k]);
        }
        return o;
    }
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, a, text, sizeof text) == NULL)
        text[0] = 0;
    return xput_str(o, text);
}

static const char *
xutf8(PyObject *tuple, Py_ssize_t i)
{
    PyObject *s = PyTuple_GET_ITEM(tuple, i);
    return s == Py_None ? "" : PyUnicode_AsUTF8(s);
}

/* One CSV line of a connection finished at end (with the stuck CLOSE-WAIT rule when final). */
static int
xrender(X *x, XConn *c, int64_t end, int final)
{
    if (c->rts >= 0) { /* it ended where a new SYN took its 4-tuple over */
        end = c->rts;
        final = 0;
    }
    int64_t cs = c->cs, ss = c->ss;
    if (cs == x->p.st_tw && end - c->tw_c >= x->p.tw_ns)
        cs = x->p.st_closed;
    if (ss == x->p.st_tw && end - c->tw_s >= x->p.tw_ns)
        ss = x->p.st_closed;
    int an = c->anomalies;
    if (c->rts >= 0) { /* what was left of it is gone */
        if (cs == x->p.st_tw || cs == x->p.st_syn_sent)
            cs = x->p.st_closed;
        if (ss == x->p.st_tw)
            ss = x->p.st_closed;
        if (c->close == X_UNANSWERED)
            an |= 1 << A_SUPERSEDED;
    }
    if (final && c->waits >= 0 && end - c->since >= x->p.cw_ns)
        an |= 1 << A_STUCK;
    if (xout_reserve(x, 640 + 4 * x->longest_name + 2 * INET6_ADDRSTRLEN + strlen(x->hist[c->hist])) < 0)
        return -1;
    char *o = x->out + x->outn;
    o = xput_i64(o, c->fid);
    *o++ = ',';
    o = xput_addr(o, c->fam, c->cip);
    *o++ = ',';
    o = xput_i64(o, c->cport);
    *o++ = ',';
    o = xput_addr(o, c->fam, c->sip);
    *o++ = ',';
    o = xput_i64(o, c->sport);
    *o++ = ',';
    o = xput_ts(o, c->first_ts);
    *o++ = ',';
    o = xput_ts(o, c->last_ts);
    *o++ = ',';
    {
        const double d = (double)(c->last_ts - c->first_ts) / 1e9;
        if (d == 0.0) {
            *o++ = '0';
        } else {
            char t[64];
            int n = snprintf(t, sizeof t, "%.6f", d);
            while (n > 0 && t[n - 1] == '0')
                n--;
            if (n > 0 && t[n - 1] == '.')
                n--;
            memcpy(o, t, (size_t)n);
            o += n;
        }
    }
    *o++ = ',';
    o = xput_i64(o, c->cpk + c->spk);
    *o++ = ',';
    o = xput_i64(o, c->cby + c->sby);
    *o++ = ',';
    o = xput_i64(o, c->cpk);
    *o++ = ',';
    o = xput_i64(o, c->spk);
    *o++ = ',';
    o = xput_i64(o, c->cby);
    *o++ = ',';
    o = xput_i64(o, c->sby);
    *o++ = ',';
    o = xput_str(o, xutf8(x->states, cs));
    *o++ = ',';
    o = xput_str(o, xutf8(x->states, ss));
    *o++ = ',';
    o = xput_str(o, x_close_names[c->close]);
    *o++ = ',';
    o = xput_str(o, c->rst_by == 1 ? "client" : c->rst_by == 2 ? "server" : "");
    *o++ = ',';
    o = xput_str(o, xutf8(x->errnos, c->errno_i));
    *o++ = ',';
    o = xput_str(o, "false,");
    int first = 1;
    for (int a = 0; a < A_N; a++) {
        if (!(an >> a & 1))
            continue;
        if (!first)
            *o++ = ';';
        o = xput_str(o, x_anomaly_names[a]);
        first = 0;
        x->noted[a]++;
    }
    *o++ = ',';
    o = xput_str(o, xutf8(x->zstates, c->zstate));
    *o++ = ',';
    o = xput_str(o, x->hist[c->hist]);
    *o++ = '\n';
    x->outn = (size_t)(o - x->out);
    x->conns_out++;
    x->close_n[c->close]++;
    return (int64_t)x->outn >= x->flush_at ? xflush(x) : 0;
}

static XClosed *
xclosed(const X *x, int64_t code)
{
    return &x->cl[XCODE(code) - x->cl_base];
}

static int64_t
xfid(const X *x, int64_t code)
{
    return code >= 0 ? x->conns[code].fid : ISPARK(code) ? x->pk[PIDX(code)] : xclosed(x, code)->fid;
}

#define PREC (sizeof(XConn) + NF * sizeof(int64_t))

/* parked connection k's record, read into x->pone and x->pS (pone.S points there); NULL when it
 * does not read back */
static const XConn *
xparked(X *x, int64_t k)
{
    if (pread(x->pk_fd, x->pbuf, PREC, (off_t)(k * (int64_t)PREC)) != (ssize_t)PREC)
        return NULL;
    memcpy(&x->pone, x->pbuf, sizeof(XConn));
    memcpy(x->pS, x->pbuf + sizeof(XConn), NF * sizeof(int64_t));
    x->pone.S = x->pS;
    return &x->pone;
}

static int xopen_spill(X *x, int *fd);

static int
xcmp_fid(const void *a, const void *b, void *ctx)
{
    const X *x = ctx;
    const int64_t fa = xfid(x, *(const int64_t *)a), fb = xfid(x, *(const int64_t *)b);
    return fa < fb ? -1 : fa > fb;
}

static int
xcmp_retire(const void *a, const void *b, void *ctx)
{
    const XConn *conns = ctx;
    const int64_t ra = conns[*(const int64_t *)a].retire_at, rb = conns[*(const int64_t *)b].retire_at;
    return ra < rb ? -1 : ra > rb;
}

#define X_WINDOW 4096 /* records read from the spill file at once */

/* the record of a closed connection (by its code) from the spill file (NULL: it does not read
 * back) */
static const XConn *
xspilled(X *x, int64_t code)
{
    const int64_t rec = XCODE(code) - x->spill_seq0;
    if (rec < 0 || rec >= x->spill_n)
        return NULL;
    if (rec >= x->win_lo && rec < x->win_lo + x->win_n)
        return &x->win[rec - x->win_lo];
    if (x->win == NULL && (x->win = malloc(X_WINDOW * sizeof(XConn))) == NULL)
        return NULL;
    int64_t want = x->spill_n - rec < X_WINDOW ? x->spill_n - rec : X_WINDOW;
    ssize_t got =
        pread(x->spill_fd, x->win, (size_t)want * sizeof(XConn), (off_t)(rec * (int64_t)sizeof(XConn)));
    if (got < (ssize_t)sizeof(XConn)) {
        x->win_n = 0;
        return NULL;
    }
    x->win_lo = rec;
    x->win_n = got / (ssize_t)sizeof(XConn);
    return x->win;
}

/* a temporary file from spill_open() into *fd (once): 0, 1 give up, -1 error */
static int
xopen_spill(X *x, int *fd)
{
    if (*fd >= 0)
        return 0;
    PyObject *r = PyObject_CallNoArgs(x->spill_open);
    if (r == NULL)
        return -1;
    *fd = (int)PyLong_AsLong(r);
    Py_DECREF(r);
    if (*fd < 0) {
        if (PyErr_Occurred())
            return -1;
        x->bail = "no temporary file";
        return 1;
    }
    return 0;
}

/* Closed connection i (its record made) out to the spill file, at the end of the queue, its
 * slot freed: 0, 1 give up (x->bail), -1 error. */
static int
xspill(X *x, int64_t i)
{
    XConn *c = &x->conns[i];
    const int o = xopen_spill(x, &x->spill_fd);
    if (o != 0)
        return o;
    const int64_t slot = xtab_slot(x, i);
    if (slot < 0)
        return 1;
    const int64_t seq = x->cl_base + x->ncl;
    if (seq >= X_MAX_SEQ) {
        x->bail = "too many closed connections";
        return 1;
    }
    if (XRESERVE(x->cl, x->capcl, x->ncl + 1, 4096) < 0)
        return -1;
    const int64_t rec = seq - x->spill_seq0;
    if (pwrite(x->spill_fd, c, sizeof(XConn), (off_t)(rec * (int64_t)sizeof(XConn))) !=
        (ssize_t)sizeof(XConn)) {
        x->bail = "the temporary file could not be written";
        return 1;
    }
    x->spill_n = rec + 1;
    x->cl[x->ncl].fid = c->fid;
    x->cl[x->ncl].at = c->retire_at;
    x->ncl++;
    x->tail_at = c->retire_at;
    x->tab[slot] = (int32_t)XCODE(seq);
    xfree_conn(x, i);
    return 0;
}

/* Live connection i (an unanswered attempt) out to the park file, its slot freed: 0, 1, -1. */
static int
xpark(X *x, int64_t i)
{
    XConn *c = &x->conns[i];
    const int o = xopen_spill(x, &x->pk_fd);
    if (o != 0)
        return o;
    const int64_t slot = xtab_slot(x, i);
    if (slot < 0)
        return 1;
    int64_t k;
    if (x->npk_free) {
        k = x->pk_free[--x->npk_free];
    } else {
        if (XRESERVE(x->pk, x->cappk, x->npk + 1, 1024) < 0 ||
            XRESERVE(x->pk_free, x->cappk_free, x->npk + 1, 1024) < 0)
            return -1;
        if (x->npk >= X_MAX_SEQ) {
            x->bail = "too many parked connections";
            return 1;
        }
        k = x->npk++;
    }
    if (x->pbuf == NULL && (x->pbuf = malloc(PREC)) == NULL)
        return -1;
    memcpy(x->pbuf, c, sizeof(XConn));
    memcpy(x->pbuf + sizeof(XConn), c->S, NF * sizeof(int64_t));
    if (pwrite(x->pk_fd, x->pbuf, PREC, (off_t)(k * (int64_t)PREC)) != (ssize_t)PREC) {
        x->pk_free[x->npk_free++] = k;
        x->bail = "the temporary file could not be written";
        return 1;
    }
    x->pk[k] = c->fid;
    x->tab[slot] = (int32_t)PCODE(k);
    xfree_conn(x, i);
    return 0;
}

static int64_t xalloc(X *x);

/* Parked connection k back into a slot of the table's entry ``slot``: its index, or -1 (error)
 * or -2 (give up, x->bail). */
static int64_t
xunpark(X *x, int64_t k, uint64_t slot)
{
    if (xparked(x, k) == NULL) {
        x->bail = "the temporary file could not be read";
        return -2;
    }
    const int64_t ci = xalloc(x);
    if (ci < 0)
        return -1;
    int64_t *S = malloc(NF * sizeof(int64_t));
    if (S == NULL)
        return -1;
    XConn *c = &x->conns[ci];
    const int64_t g = c->gen;
    *c = x->pone;
    memcpy(S, x->pS, NF * sizeof(int64_t));
    c->S = S;
    c->gen = g + 1;
    c->state = 0;
    x->tab[slot] = (int32_t)ci;
    x->pk[k] = -1;
    x->pk_free[x->npk_free++] = k;
    return ci;
}

static void
xfree_conn(X *x, int64_t i)
{
    XConn *c = &x->conns[i];
    if (c->S != NULL) {
        free(c->S);
        c->S = NULL;
    } else {
        x->held--;
    }
    c->state = 2;
    c->gen++;
    x->free_list[x->nfree++] = i;
}

/* Engine._schedule of a connection whose group was committed */
static int
xschedule(X *x, int64_t i)
{
    XConn *c = &x->conns[i];
    const int64_t *S = c->S;
    const int64_t *cside = S + F_SIDES, *sside = S + F_SIDES + S_N;
    const int64_t ph = S[F_PHASE];
    const int both = ph == P_EST && cside[S_FAO] >= 0 && sside[S_FAO] >= 0;
    const int64_t last = S[F_LAST_TS];
    const int64_t old_retire = c->retire_at;
    int64_t retire = X_NEVER;
    if (ph == P_DONE || both)
        retire = last >= X_NEVER - x->p.tw_ns ? X_NEVER : last + x->p.tw_ns;
    const int quiet =
        both && cside[S_BEND] < 0 && sside[S_BEND] < 0 && cside[S_ZBLO] < 0 && sside[S_ZBLO] < 0;
    int64_t compact = X_NEVER;
    if (quiet)
        compact = cside[S_FINCLK] > sside[S_FINCLK] ? cside[S_FINCLK] : sside[S_FINCLK];
    if ((old_retire == X_NEVER) != (retire == X_NEVER))
        x->live_open += retire == X_NEVER ? 1 : -1;
    c->gen++; /* (its retirement is scheduled at the end of the chunk) */
    c->retire_at = retire;
    c->compact_at = compact;
    return 0;
}

/* a connection that is live and in the store only waits now: its record, closed */
static int
xclose(X *x, int64_t i)
{
    XConn *c = &x->conns[i];
    if (xsummarize(x, c) < 0)
        return -1;
    x->journal -= c->cpk + c->spk;
    free(c->S);
    c->S = NULL;
    x->held++;
    return 0;
}

static int
xlist_add(XList *l, int64_t v)
{
    if (XRESERVE(l->v, l->cap, l->n + 1, 256) < 0)
        return -1;
    l->v[l->n++] = v;
    return 0;
}

/* The records of these connections, finished at end, in flow_id order; releases them. */
static int
xemit(X *x, XList *l, int64_t end, int final)
{
    if (!l->n)
        return 0;
    qsort_r(l->v, (size_t)l->n, sizeof(int64_t), xcmp_fid, x);
    for (int64_t k = 0; k < l->n; k++) {
        const int64_t i = l->v[k];
        if (i < 0 && ISPARK(i)) { /* a parked attempt (only the end of the capture finishes one) */
            if (xparked(x, PIDX(i)) == NULL) {
                x->bail = "the temporary file could not be read";
                return 1;
            }
            if (xsummarize(x, &x->pone) < 0)
                return -1;
            int64_t e = end;
            if (final && x->pone.last_ts > e)
                e = x->pone.last_ts;
            if (!final && (x->pone.cs == x->p.st_cw || x->pone.ss == x->p.st_cw)) {
                x->bail = "a CLOSE-WAIT to time";
                return 1;
            }
            if (xrender(x, &x->pone, e, final) < 0)
                return -1;
            x->pk[PIDX(i)] = -1;
            x->pk_free[x->npk_free++] = PIDX(i);
            continue;
        }
        if (i < 0) { /* a closed connection from the spill file */
            const XConn *c = xspilled(x, i);
            if (c == NULL) {
                x->bail = "the temporary file could not be read";
                return 1;
            }
            x->one = *c;
            int64_t e = end;
            if (final && x->one.last_ts > e)
                e = x->one.last_ts;
            if (xrender(x, &x->one, e, final) < 0)
                return -1;
            xclosed(x, i)->at = -1;
            continue;
        }
        XConn *c = &x->conns[i];
        if (c->S != NULL) {
            if (xsummarize(x, c) < 0)
                return -1;
            x->journal -= c->cpk + c->spk;
        }
        int64_t e = end;
        if (final && c->last_ts > e)
            e = c->last_ts;
        if (!final && (c->cs == x->p.st_cw || c->ss == x->p.st_cw)) {
            x->bail = "a CLOSE-WAIT to time";
            return 1;
        }
        if (xrender(x, c, e, final) < 0)
            return -1;
        if (c->retire_at == X_NEVER && c->S != NULL)
            x->live_open--;
        xfree_conn(x, i);
    }
    l->n = 0;
    return 0;
}

static int64_t
xalloc(X *x)
{
    if (x->nfree) {
        int64_t i = x->free_list[--x->nfree];
        return i;
    }
    if (XRESERVE(x->conns, x->capconns, x->nconns + 1, 4096) < 0 ||
        XRESERVE(x->free_list, x->capfree, x->nconns + 1, 4096) < 0)
        return -1;
    x->conns[x->nconns].gen = 0;
    return x->nconns++;
}

/* the segments of one chunk, in capture order */
typedef struct {
    int64_t n, cap;
    /* conn: the connection's place among the chunk's; next: room for the groups' bounds */
    int64_t *frame, *ts, *flags, *seq, *ack, *win, *len, *ws, *conn, *next;
    uint8_t *cl, *tfo, *cut, *bad;
    /* in group order, for run_group */
    int64_t *g64;
    uint8_t *g8;
    XList touched; /* the chunk's connections, in order of their first segment */
    int64_t clock; /* the capture clock at the chunk's last segment */
} XSegs;

static int
xsegs_reserve(XSegs *s, int64_t n)
{
    if (n <= s->cap)
        return 0;
    int64_t nc = s->cap ? s->cap : 1 << 14;
    while (nc < n)
        nc *= 2;
    int64_t **cols64[] = {&s->frame, &s->ts,  &s->flags, &s->seq,  &s->ack,
                          &s->win,   &s->len, &s->ws,    &s->conn, &s->next};
    for (size_t k = 0; k < sizeof cols64 / sizeof cols64[0]; k++) {
        int64_t *a = realloc(*cols64[k], (size_t)(nc + 1) * sizeof(int64_t));
        if (a == NULL)
            return -1;
        *cols64[k] = a;
    }
    uint8_t **cols8[] = {&s->cl, &s->tfo, &s->cut, &s->bad};
    for (size_t k = 0; k < sizeof cols8 / sizeof cols8[0]; k++) {
        uint8_t *a = realloc(*cols8[k], (size_t)nc);
        if (a == NULL)
            return -1;
        *cols8[k] = a;
    }
    int64_t *g = realloc(s->g64, (size_t)nc * 9 * sizeof(int64_t));
    if (g == NULL)
        return -1;
    s->g64 = g;
    uint8_t *g8 = realloc(s->g8, (size_t)nc * 4);
    if (g8 == NULL)
        return -1;
    s->g8 = g8;
    s->cap = nc;
    return 0;
}

static unsigned
xbe16(const uint8_t *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* An IP packet that is not TCP (protocol proto, payload from pay to lim): 0 when the reader
 * skips it as not_tcp, 1 when it could be a tunnel the reader opens (with decapsulation):
 * IP-in-IP, GRE, a UDP tunnel port, or Teredo recognised by its contents. */
static int
xnot_tcp(const uint8_t *d, unsigned proto, int64_t pay, int64_t lim, int decap)
{
    if (!decap)
        return 0;
    if (proto == 4 || proto == 41 || proto == 47)
        return 1;
    if (proto != 17)
        return 0;
    if (lim < pay)
        lim = pay;
    if (lim - pay < 8)
        return 0;
    const uint8_t *u = d + pay;
    const unsigned sp = xbe16(u), dp = xbe16(u + 2);
    if (sp == 4789 || sp == 6081 || sp == 2152 || sp == 3544 || dp == 4789 || dp == 6081 || dp == 2152 ||
        dp == 3544)
        return 1;
    const int64_t ulen = xbe16(u + 4);
    const int64_t decl = ulen >= 8 ? pay + ulen : lim;
    const int64_t e = lim < decl ? lim : decl;
    const int64_t pos = pay + 8;
    if (e - pos < 40)
        return 0;
    const uint8_t *q = d + pos;
    if (q[0] == 0 && q[1] <= 1)
        return 1; /* Teredo's own headers first */
    if ((q[0] >> 4) != 6)
        return 0;
    static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};
    const int ends = pos + 40 + (int64_t)xbe16(q + 4) == decl;
    return ends && (!memcmp(q + 8, teredo, 4) || !memcmp(q + 24, teredo, 4));
}

/* Records of a chunk (offsets into buf), decoded and added to its segments (a chunk's records
 * come in several pieces of it, each decoded while it is still in the cache). 0 done, 1 give
 * up (x->bail), -1 error (exception set or out of memory). */
static int
xrecords(X *x, XSegs *sg, const uint8_t *buf, const int64_t *offs, int64_t nrec, int big, int64_t mul, int hl,
         int etoff, int raw, int64_t *frame, int64_t chunk, int64_t *last_ts, int64_t *first_ts, XList *done)
{
    if (xsegs_reserve(sg, sg->n + nrec) < 0)
        return -1;
    XList *touched_ = &sg->touched;
#define touched (*touched_)
    int rc = 0;
    int64_t seg_clock_next = 0;
    for (int64_t r = 0; r < nrec; r++) {
        const uint8_t *h = buf + offs[r];
        uint32_t sec, frac, caplen;
        memcpy(&sec, h, 4);
        memcpy(&frac, h + 4, 4);
        memcpy(&caplen, h + 8, 4);
        if (big) {
            sec = __builtin_bswap32(sec);
            frac = __builtin_bswap32(frac);
            caplen = __builtin_bswap32(caplen);
        }
        const int64_t ts = (int64_t)sec * 1000000000 + (int64_t)frac * mul;
        const int64_t fr = ++*frame;
        if (*first_ts < 0)
            *first_ts = ts;
        if (ts < *last_ts) {
            x->bail = "time goes back";
            rc = 1;
            goto out;
        }
        *last_ts = ts;
        seg_clock_next = ts;
        /* decode_tcp's common case; a record that is not IP, or IP but not TCP (nor a tunnel
         * the reader would open), is skipped as the reader does */
        const uint8_t *d = h + 16;
        const int64_t end = caplen;
        int64_t w[5];
        const int kind = tcpsm_record(d, end, hl, etoff, raw, w);
        if (kind == REC_NOT_IP) {
            x->not_ip++;
            continue;
        }
        if (kind == REC_NOT_TCP && !xnot_tcp(d, (unsigned)w[4], w[2], w[3], x->decapsulate)) {
            x->not_tcp++;
            continue;
        }
        if (kind != REC_TCP)
            goto not_fast;
        const int v = (int)w[0];
        const uint8_t *ip = d + w[1];
        const int64_t tcp = w[2], thl = w[4], len = w[3] - w[4];
        const uint8_t *t = d + tcp;
        uint8_t src[16], dst[16];
        unsigned fam;
        if (v == 4) {
            fam = 4;
            memset(src, 0, 12);
            memcpy(src + 12, ip + 12, 4);
            memset(dst, 0, 12);
            memcpy(dst + 12, ip + 16, 4);
        } else {
            fam = 6;
            memcpy(src, ip + 8, 16);
            memcpy(dst, ip + 24, 16);
        }
        const unsigned sp = xbe16(t), dp = xbe16(t + 2);
        const int64_t flags = t[13];
        const int64_t seq = ((int64_t)xbe16(t + 4) << 16) | xbe16(t + 6);
        const int64_t ackn = ((int64_t)xbe16(t + 8) << 16) | xbe16(t + 10);
        const int64_t pend_at = tcp + thl;
        const int64_t pend = end < pend_at + len ? end : pend_at + len;
        const int cut = pend - pend_at < len;
        const int plain_syn = (flags & (T_SYN | T_ACK | T_RST | T_FIN)) == T_SYN && len == 0;
        /* the connection */
        int found;
        uint32_t hash;
        uint64_t slot = xtab_find(x, fam, src, sp, dst, dp, &found, &hash);
        if (found < 0) {
            x->bail = "the temporary file could not be read";
            rc = 1;
            goto out;
        }
        int64_t ci = found ? x->tab[slot] : -1;
        if (ci < -2 && ISPARK(ci)) { /* a parked attempt: back in the table */
            ci = xunpark(x, PIDX(ci), slot);
            if (ci < 0) {
                rc = ci == -1 ? -1 : 1;
                goto out;
            }
        }
        if (ci < -2) { /* a closed connection in the spill file */
            const XConn *c = xspilled(x, ci);
            if (c != NULL && ts < c->retire_at && plain_syn && xrecycles_closed(c, fam, src, sp, seq)) {
                /* taken over by a new connection: back in memory, to be finished with the chunk */
                const int64_t ni = xalloc(x);
                if (ni < 0) {
                    rc = -1;
                    goto out;
                }
                const int64_t g = x->conns[ni].gen;
                x->conns[ni] = *c;
                XConn *n = &x->conns[ni];
                n->gen = g + 1;
                n->S = NULL;
                n->rts = ts;
                n->state = 3;
                n->chunk = chunk;
                x->held++;
                x->tab[slot] = -2;
                x->tabused--;
                x->tabdead++;
                xclosed(x, ci)->at = -1;
                if (xlist_add(done, ni) < 0) {
                    rc = -1;
                    goto out;
                }
                ci = -1;
                slot = xtab_find(x, fam, src, sp, dst, dp, &found, &hash);
                goto placed;
            }
            if (c == NULL || ts < c->retire_at) {
                x->bail = c == NULL ? "the temporary file could not be read" : "more on a closed connection";
                rc = 1;
                goto out;
            }
            x->tab[slot] = -2; /* over and quiet: its record now, the 4-tuple free */
            x->tabused--;
            x->tabdead++;
            xclosed(x, ci)->at = -2;
            if (xlist_add(done, ci) < 0) {
                rc = -1;
                goto out;
            }
            ci = -1;
            slot = xtab_find(x, fam, src, sp, dst, dp, &found, &hash);
        } else if (ci >= 0) {
            XConn *c = &x->conns[ci];
            if (c->chunk != chunk) { /* its first segment of the chunk */
                if (ts >= c->retire_at && c->retire_at != X_NEVER) {
                    /* over and quiet: its record now, the 4-tuple free */
                    xtab_remove(x, c);
                    c->chunk = chunk;
                    if (xlist_add(done, ci) < 0) {
                        rc = -1;
                        goto out;
                    }
                    c->state = 3;
                    ci = -1;
                    slot = xtab_find(x, fam, src, sp, dst, dp, &found, &hash);
                } else if (c->S == NULL ? plain_syn && xrecycles_closed(c, fam, src, sp, seq)
                                        : plain_syn && xrecycles(x, c, fam, src, sp, seq, ts)) {
                    /* Engine._recycles: a new connection takes the 4-tuple over */
                    xtab_remove(x, c);
                    c->chunk = chunk;
                    c->rts = ts;
                    if (xlist_add(done, ci) < 0) {
                        rc = -1;
                        goto out;
                    }
                    c->state = 3;
                    ci = -1;
                    slot = xtab_find(x, fam, src, sp, dst, dp, &found, &hash);
                } else if (c->S == NULL) {
                    x->bail = "more on a closed connection";
                    rc = 1;
                    goto out;
                }
            } else if (plain_syn) {
                /* _generations: only the same SYN again, right after itself */
                const int64_t pk = c->gtail;
                const int again = pk >= 0 && (sg->flags[pk] & (T_SYN | T_ACK | T_RST | T_FIN)) == T_SYN &&
                                  sg->len[pk] == 0 && sg->seq[pk] == seq;
                if (!again) {
                    x->bail = "a second connection on a 4-tuple within a chunk";
                    rc = 1;
                    goto out;
                }
            }
        }
    placed:
        if (ci < 0) {
            if (!plain_syn) {
                x->bail = "a segment of no fast connection";
                rc = 1;
                goto out;
            }
            ci = xalloc(x);
            if (ci < 0) {
                rc = -1;
                goto out;
            }
            XConn *c = &x->conns[ci];
            int64_t g = c->gen;
            memset(c, 0, sizeof *c);
            c->gen = g + 1;
            c->S = malloc(NF * sizeof(int64_t));
            if (c->S == NULL) {
                rc = -1;
                goto out;
            }
            memcpy(c->S, x->init, NF * sizeof(int64_t));
            c->fid = fr;
            c->first_ts = ts;
            c->S[F_LAST_TS] = ts;
            c->S[F_FIRST_CLOCK] = ts;
            c->S[F_LAST_CLOCK] = ts;
            c->S[F_SIDES + S_ISN] = seq;
            c->retire_at = c->compact_at = X_NEVER;
            c->rts = -1;
            c->fam = (uint8_t)fam;
            memcpy(c->cip, src, 16);
            memcpy(c->sip, dst, 16);
            c->cport = (uint16_t)sp;
            c->sport = (uint16_t)dp;
            c->created = 1;
            c->chunk = -1;
            x->live_open++;
            if (found == 0) {
                if (x->tab[slot] == -2)
                    x->tabdead--;
                x->tab[slot] = (int32_t)ci;
                x->tabh[slot] = hash;
                x->tabused++;
            }
            if ((x->tabused + x->tabdead) * 4 >= (int64_t)(x->tabmask + 1) * 3 && xtab_grow(x) < 0) {
                rc = -1;
                goto out;
            }
        }
        XConn *c = &x->conns[ci];
        if (c->chunk != chunk) {
            c->chunk = chunk;
            c->gtail = -1;
            c->ghead = touched.n; /* its place among the chunk's connections */
            if (xlist_add(&touched, ci) < 0) {
                rc = -1;
                goto out;
            }
        }
        const int64_t k = sg->n++;
        sg->clock = seg_clock_next;
        sg->frame[k] = fr;
        sg->ts[k] = ts;
        sg->flags[k] = flags;
        sg->seq[k] = seq;
        sg->ack[k] = ackn;
        sg->win[k] = xbe16(t + 14);
        sg->len[k] = len;
        sg->ws[k] = -1;
        sg->tfo[k] = 0;
        if (flags & T_SYN) {
            const int64_t a = tcp + 20;
            const int64_t oend = tcp + thl < end ? tcp + thl : end;
            tcpsm_syn_options(d, a, oend > a ? oend : a, &sg->ws[k], &sg->tfo[k]);
        }
        sg->cl[k] = sp == c->cport && memcmp(src, c->cip, 16) == 0;
        sg->cut[k] = (uint8_t)cut;
        const int64_t f6 = flags & 0x3F;
        sg->bad[k] = f6 == 0x3F || f6 == 0 || (flags & 0x03) == 0x03 || (flags & 0x06) == 0x06 ||
                     (flags & 0x05) == 0x05;
        sg->conn[k] = c->ghead;
        c->gtail = k;
        continue;
    not_fast:
        x->bail = "a record the common decoder does not take";
        rc = 1;
        goto out;
    }
out:
#undef touched
    return rc;
}

/* The end of a chunk: its segments evaluated connection by connection, then the sweep at its
 * clock; the segments and the chunk's connections are reset for the next one. */
static int
xchunk_end(X *x, XSegs *sg, XList *done)
{
    XList *touched_ = &sg->touched;
#define touched (*touched_)
    int rc = 0;
    const int64_t seg_clock = sg->clock;
    if (!sg->n) /* no segment: the reader hands the engine nothing for this chunk */
        goto out;
    /* the groups, each connection's segments together */
    {
        const int64_t n = sg->n;
        int64_t *g64 = sg->g64;
        uint8_t *g8 = sg->g8;
        /* (the capture clock is the time: timestamps never go back on the express path) */
        const Segs g = {g64,         g64 + n,     g64 + n, g64 + 3 * n, g64 + 4 * n, g64 + 5 * n, g64 + 6 * n,
                        g64 + 7 * n, g64 + 8 * n, g8,      g8 + n,      g8 + 2 * n,  g8 + 3 * n};
        /* each connection's segments together, in capture order: a counting sort */
        int64_t *start = sg->next; /* touched.n + 1 <= n + 1 entries */
        memset(start, 0, (size_t)(touched.n + 1) * sizeof(int64_t));
        for (int64_t k = 0; k < n; k++)
            start[sg->conn[k] + 1]++;
        for (int64_t u = 0; u < touched.n; u++)
            start[u + 1] += start[u];
        for (int64_t k = 0; k < n; k++) {
            const int64_t at = start[sg->conn[k]]++;
            g64[at] = sg->frame[k];
            g64[n + at] = sg->ts[k];
            g64[3 * n + at] = sg->flags[k];
            g64[4 * n + at] = sg->seq[k];
            g64[5 * n + at] = sg->ack[k];
            g64[6 * n + at] = sg->win[k];
            g64[7 * n + at] = sg->len[k];
            g64[8 * n + at] = sg->ws[k];
            g8[at] = sg->cl[k];
            g8[n + at] = sg->tfo[k];
            g8[2 * n + at] = sg->cut[k];
            g8[3 * n + at] = sg->bad[k];
        }
        /* start[u] is now the end of group u, the start of group u + 1 */
        int64_t S0[NF];
        for (int64_t u = 0; u < touched.n; u++) {
            const int64_t ci = touched.v[u];
            XConn *c = &x->conns[ci];
            const int64_t lo = u ? start[u - 1] : 0, pos = start[u];
            memcpy(S0, c->S, sizeof S0);
            int r = 0, force2 = 0;
            int64_t p1;
            for (int attempt = 0; attempt < 3; attempt++) {
                memcpy(c->S, S0, sizeof S0);
                r = run_group(c->S, &g, lo, pos, c->created, &x->p, &p1, force2);
                if (r < 2)
                    break;
                force2 |= 1 << (r - 2);
                r = 1;
            }
            if (r != 0) {
                x->bail = "a connection leaves the fast paths";
                rc = 1;
                goto out;
            }
            for (int i = 0; i < NF; i++) /* as the store keeps it */
                if (x->narrow[i])
                    c->S[i] = (int32_t)c->S[i];
            c->created = 0;
            x->journal += pos - lo;
            if (xschedule(x, ci) < 0) {
                rc = -1;
                goto out;
            }
        }
    }
    /* the sweep at the chunk's clock */
    {
        const int64_t clock = seg_clock;
        /* connections of earlier chunks whose time is up (Engine._sweep's done) */
        while (x->retire.n && x->retire.a[0].at <= clock) {
            XHeapItem it = xheap_pop(&x->retire);
            XConn *c = &x->conns[it.idx];
            if (c->gen != it.gen || c->state != 0 || c->retire_at != it.at)
                continue;
            xtab_remove(x, c);
            c->state = 3;
            if (xlist_add(done, it.idx) < 0) {
                rc = -1;
                goto out;
            }
        }
        /* this chunk's: retired, closed (Engine._compact_closed; here also those reset or
         * refused, whose 4-tuples then leave the fast paths) or scheduled */
        x->closing.n = 0;
        for (int64_t u = 0; u < touched.n; u++) {
            const int64_t ci = touched.v[u];
            XConn *c = &x->conns[ci];
            if (c->state != 0 || c->S == NULL)
                continue;
            if (c->retire_at != X_NEVER && c->retire_at <= clock) {
                xtab_remove(x, c);
                c->state = 3;
                if (xlist_add(done, ci) < 0) {
                    rc = -1;
                    goto out;
                }
            } else if (c->compact_at != X_NEVER || c->S[F_PHASE] == P_DONE) {
                if (xlist_add(&x->closing, ci) < 0) {
                    rc = -1;
                    goto out;
                }
            } else if (c->retire_at != X_NEVER) {
                if (xheap_push(&x->retire, c->retire_at, ci, c->gen) < 0) {
                    rc = -1;
                    goto out;
                }
            } else if (c->S[F_PHASE] == P_SYN &&
                       xheap_push(&x->parkh, c->S[F_LAST_TS] + x->park_after, ci, c->gen) < 0) {
                rc = -1;
                goto out;
            }
        }
        /* attempts nobody answered, quiet for park_after: out to the park file */
        while (x->parkh.n && x->parkh.a[0].at <= clock) {
            XHeapItem it = xheap_pop(&x->parkh);
            XConn *c = &x->conns[it.idx];
            if (c->gen != it.gen || c->state != 0 || c->S == NULL || c->S[F_PHASE] != P_SYN)
                continue;
            rc = xpark(x, it.idx);
            if (rc != 0)
                goto out;
        }
        /* closed: kept in memory up to held_in_memory, else written out in retirement order */
        if (x->closing.n > 1)
            qsort_r(x->closing.v, (size_t)x->closing.n, sizeof(int64_t), xcmp_retire, x->conns);
        for (int64_t k = 0; k < x->closing.n; k++) {
            const int64_t ci = x->closing.v[k];
            XConn *c = &x->conns[ci];
            c->store = c->S[F_PHASE] == P_DONE;
            if (xclose(x, ci) < 0) {
                rc = -1;
                goto out;
            }
            if (x->held <= x->held_in_memory || c->retire_at < x->tail_at) {
                if (xheap_push(&x->retire, c->retire_at, ci, c->gen) < 0) {
                    rc = -1;
                    goto out;
                }
                continue;
            }
            rc = xspill(x, ci);
            if (rc != 0)
                goto out;
        }
        /* the written-out ones whose time is up */
        while (x->cl_front < x->ncl) {
            XClosed *e = &x->cl[x->cl_front];
            if (e->at >= 0 && e->at > clock)
                break;
            const int64_t code = XCODE(x->cl_base + x->cl_front);
            x->cl_front++;
            if (e->at < 0)
                continue; /* retired when its 4-tuple came back */
            const XConn *c = xspilled(x, code);
            if (c == NULL) {
                x->bail = "the temporary file could not be read";
                rc = 1;
                goto out;
            }
            xtab_remove_code(x,
                             (uint32_t)xkey_hash(c->fam, c->cip, c->cport, c->sip, c->sport) & x->hash_mask,
                             (int32_t)code);
            e->at = -2;
            if (xlist_add(done, code) < 0) {
                rc = -1;
                goto out;
            }
        }
        if (x->live_open > x->max_open) {
            x->bail = "more open connections than the table holds";
            rc = 1;
            goto out;
        }
        if (2 * x->journal + sg->n > x->journal_budget) {
            x->bail = "the journals' budget";
            rc = 1;
            goto out;
        }
        rc = xemit(x, done, clock, 0);
        if (rc == 0 && x->cl_front == x->ncl) { /* the queue is empty: the file from the start */
            x->cl_base += x->ncl;
            x->ncl = x->cl_front = 0;
            x->spill_seq0 = x->cl_base;
            x->spill_n = 0;
            x->win_n = 0;
        } else if (rc == 0 && x->cl_front > 4096 && 2 * x->cl_front > x->ncl) {
            memmove(x->cl, x->cl + x->cl_front, (size_t)(x->ncl - x->cl_front) * sizeof(XClosed));
            x->cl_base += x->cl_front;
            x->ncl -= x->cl_front;
            x->cl_front = 0;
        }
    }
out:
    touched.n = 0;
    sg->n = 0;
#undef touched
    return rc;
}

static void
xrelease(X *x, XSegs *sg)
{
    for (int64_t i = 0; i < x->nconns; i++)
        if (x->conns[i].state != 2)
            free(x->conns[i].S);
    free(x->conns);
    free(x->free_list);
    free(x->tab);
    free(x->tabh);
    free(x->cl);
    free(x->closing.v);
    free(x->pk);
    free(x->pk_free);
    free(x->pbuf);
    free(x->parkh.a);
    free(x->win);
    free(x->retire.a);
    for (int64_t k = 0; k < x->nhist; k++)
        free(x->hist[k]);
    free(x->hist);
    free(x->hist_tab);
    free(x->out);
    int64_t *cols64[] = {sg->frame, sg->ts, sg->flags, sg->seq,  sg->ack, sg->win,
                         sg->len,   sg->ws, sg->conn,  sg->next, sg->g64};
    for (size_t k = 0; k < sizeof cols64 / sizeof cols64[0]; k++)
        free(cols64[k]);
    uint8_t *cols8[] = {sg->cl, sg->tfo, sg->cut, sg->bad, sg->g8};
    for (size_t k = 0; k < sizeof cols8 / sizeof cols8[0]; k++)
        free(cols8[k]);
    free(sg->touched.v);
}

/* the whole file; 0 done, 1 give up, -1 error */
static int
xrun(X *x, XSegs *sg, FILE *f, int64_t first_bytes, int64_t chunk_bytes, int64_t max_cap, int64_t stats[4])
{
    uint8_t head[24];
    if (fread(head, 1, 24, f) != 24) {
        x->bail = "no pcap file header";
        return 1;
    }
    uint32_t magic;
    memcpy(&magic, head, 4);
    int big;
    int64_t mul;
    if (magic == 0xa1b2c3d4U || magic == 0xd4c3b2a1U) {
        mul = 1000;
        big = magic == 0xd4c3b2a1U;
    } else if (magic == 0xa1b23c4dU || magic == 0x4d3cb2a1U) {
        mul = 1;
        big = magic == 0x4d3cb2a1U;
    } else {
        x->bail = "not a classic pcap file";
        return 1;
    }
    uint32_t linktype;
    memcpy(&linktype, head + 20, 4);
    if (big)
        linktype = __builtin_bswap32(linktype);
    int hl = 0, etoff = 0, raw = 0;
    switch (linktype & 0xFFFF) {
    case 1: /* Ethernet */
        hl = 14;
        etoff = 12;
        break;
    case 113: /* Linux cooked */
        hl = 16;
        etoff = 14;
        break;
    case 276: /* Linux cooked v2 */
        hl = 20;
        etoff = 0;
        break;
    case 12:
    case 14:
    case 101:
    case 228:
    case 229:
        raw = 1;
        break;
    default:
        x->bail = "a link type the common decoder does not take";
        return 1;
    }
    /* The reader's chunks are first_bytes of the file (its look-ahead: the file header is part
     * of it), then chunk_bytes at a time: the records complete in each make one chunk for the
     * engine. They are read here
     * in smaller pieces, each one's records decoded while they are in the cache. */
    const size_t piece = 256 << 10;
    size_t cap = piece * 2 + (size_t)max_cap + 64;
    uint8_t *buf = malloc(cap);
    int64_t *offs = malloc((piece / 16 + 2) * 2 * sizeof(int64_t));
    XList done = {0};
    int rc = 0;
    if (buf == NULL || offs == NULL) {
        rc = -1;
        goto out;
    }
    size_t n = 0, pos = 0;
    int64_t frame = 0, chunk = 0, last_ts = INT64_MIN, first_ts = -1;
    int64_t left = first_bytes - 24; /* of the chunk being read (the header is the first's) */
    int64_t consumed = 0;            /* bytes of the file read */
    for (;;) {
        memmove(buf, buf + pos, n - pos);
        n -= pos;
        pos = 0;
        const size_t want = (size_t)left < piece ? (size_t)left : piece;
        size_t got = 0;
        while (got < want) {
            size_t k = fread(buf + n + got, 1, want - got, f);
            if (k == 0)
                break;
            got += k;
        }
        if (ferror(f)) {
            x->bail = "a read error";
            rc = 1;
            goto out;
        }
        const int eof = got < want;
        n += got;
        left -= (int64_t)got;
        int64_t nrec = 0;
        size_t off = pos;
        while (off + 16 <= n) {
            uint32_t caplen;
            memcpy(&caplen, buf + off + 8, 4);
            if (big)
                caplen = __builtin_bswap32(caplen);
            if ((int64_t)caplen > max_cap) {
                x->bail = "a record longer than the common ones";
                rc = 1;
                goto out;
            }
            if (off + 16 + caplen > n)
                break;
            offs[nrec++] = (int64_t)off;
            off += 16 + caplen;
        }
        if (nrec) {
            rc = xrecords(x, sg, buf, offs, nrec, big, mul, hl, etoff, raw, &frame, chunk, &last_ts,
                          &first_ts, &done);
            if (rc != 0)
                goto out;
        }
        pos = off;
        if (left == 0 || eof) { /* the end of a chunk */
            rc = xchunk_end(x, sg, &done);
            if (rc != 0)
                goto out;
            chunk++;
            consumed += chunk_bytes - left;
            left = chunk_bytes;
            if (x->progress != Py_None) {
                PyObject *r = PyObject_CallFunction(x->progress, "LL", (long long)consumed, (long long)frame);
                if (r == NULL) {
                    rc = -1;
                    goto out;
                }
                Py_DECREF(r);
            }
            if (PyErr_CheckSignals() < 0) {
                rc = -1;
                goto out;
            }
        }
        if (eof) {
            if (pos < n) {
                x->bail = "the capture is cut mid-record";
                rc = 1;
            }
            break;
        }
    }
    if (rc == 0 && frame == 0) {
        x->bail = "no packets";
        rc = 1;
    }
    if (rc == 0) { /* Engine.finish at the last timestamp */
        for (int64_t i = 0; i < x->nconns; i++)
            if (x->conns[i].state == 0 && xlist_add(&done, i) < 0) {
                rc = -1;
                goto out;
            }
        for (int64_t k = 0; k < x->npk; k++)
            if (x->pk[k] >= 0 && xlist_add(&done, PCODE(k)) < 0) {
                rc = -1;
                goto out;
            }
        for (int64_t j = x->cl_front; j < x->ncl; j++)
            if (x->cl[j].at >= 0 && xlist_add(&done, XCODE(x->cl_base + j)) < 0) {
                rc = -1;
                goto out;
            }
        rc = xemit(x, &done, last_ts, 1);
        if (rc == 0)
            rc = xflush(x) < 0 ? -1 : 0;
        stats[0] = frame;
        stats[1] = frame - x->not_ip - x->not_tcp;
        stats[2] = first_ts;
        stats[3] = last_ts;
    }
out:
    free(buf);
    free(offs);
    free(done.v);
    return rc;
}

PyObject *
express(PyObject *self, PyObject *args)
{
    Py_buffer bpath, binit, bnarrow, bparams, bzchars, bzcols, blimits;
    PyObject *states, *errnos, *zstates, *sink, *spill_open, *progress;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*O!O!O!y*OOO", &bpath, &binit, &bnarrow, &bparams, &bzchars,
                          &bzcols, &PyTuple_Type, &states, &PyTuple_Type, &errnos, &PyTuple_Type, &zstates,
                          &blimits, &sink, &spill_open, &progress))
        return NULL;
    Py_buffer *all[] = {&bpath, &binit, &bnarrow, &bparams, &bzchars, &bzcols, &blimits};
    PyObject *result = NULL;
    X x;
    XSegs sg;
    memset(&x, 0, sizeof x);
    memset(&sg, 0, sizeof sg);
    const char *err = NULL;
    if (binit.len != NF * 8 || bnarrow.len != NF || bparams.len != N_PARAMS * 8 ||
        bzcols.len != bzchars.len * 8 || bzchars.len > 64 || blimits.len != 10 * 8 ||
        ((const int64_t *)blimits.buf)[9] < 24 || PyTuple_GET_SIZE(zstates) != 8 ||
        PyTuple_GET_SIZE(errnos) < 1)
        err = "express: inconsistent arguments";
    const int64_t *zc = bzcols.buf;
    for (Py_ssize_t i = 0; err == NULL && i < bzchars.len; i++)
        if (zc[i] < 0 || zc[i] >= NF)
            err = "express: a history column out of range";
    const int64_t *pv = bparams.buf;
    for (Py_ssize_t i = 0; err == NULL && i < PyTuple_GET_SIZE(states); i++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(states, i)))
            err = "express: state names are str";
    for (int i = 4; err == NULL && i < N_PARAMS; i++)
        if (i != 7 && i != 14 &&
            (pv[i] < 0 || pv[i] >= PyTuple_GET_SIZE(states) || pv[i] >= PyTuple_GET_SIZE(errnos) - 1))
            err = "express: a state code out of range";
    if (err != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        goto done;
    }
    x.p = (Params){pv[0], pv[1], pv[2],  pv[3],  pv[4],  pv[5],  pv[6], pv[7],
                   pv[8], pv[9], pv[10], pv[11], pv[12], pv[13], pv[14]};
    x.init = binit.buf;
    x.narrow = bnarrow.buf;
    x.zchars = bzchars.buf;
    x.zcols = zc;
    x.nz = (int)bzchars.len;
    x.states = states;
    x.errnos = errnos;
    x.zstates = zstates;
    x.sink = sink;
    const int64_t *lim = blimits.buf;
    x.max_open = lim[1];
    x.journal_budget = lim[2];
    x.held_in_memory = lim[3];
    x.decapsulate = lim[5] != 0;
    x.flush_at = lim[6];
    x.hash_mask = (uint32_t)lim[7];
    x.park_after = lim[8];
    PyObject *name_sets[] = {states, errnos, zstates};
    for (int k = 0; k < 3; k++)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(name_sets[k]); i++) {
            PyObject *o = PyTuple_GET_ITEM(name_sets[k], i);
            if (o == Py_None)
                continue;
            Py_ssize_t len;
            if (!PyUnicode_Check(o) || PyUnicode_AsUTF8AndSize(o, &len) == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "express: names are str (or None for no errno)");
                goto done;
            }
            if ((size_t)len > x.longest_name)
                x.longest_name = (size_t)len;
        }
    x.tabmask = (1 << 12) - 1;
    x.tab = malloc((x.tabmask + 1) * sizeof(int32_t));
    x.tabh = malloc((x.tabmask + 1) * sizeof(uint32_t));
    x.spill_fd = -1;
    x.pk_fd = -1;
    x.spill_open = spill_open;
    x.progress = progress;
    if (x.tab == NULL || x.tabh == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (uint64_t i = 0; i <= x.tabmask; i++)
        x.tab[i] = -1;
    char *path = PyMem_Malloc((size_t)bpath.len + 1);
    if (path == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(path, bpath.buf, (size_t)bpath.len);
    path[bpath.len] = 0;
    FILE *f = fopen(path, "rb");
    PyMem_Free(path);
    if (f == NULL) {
        result = Py_BuildValue("(is)", 1, "the file does not open");
        goto done;
    }
    int64_t stats[4] = {0, 0, 0, 0};
    int rc = xrun(&x, &sg, f, lim[9], lim[0], lim[4], stats);
    fclose(f);
    if (rc < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    if (rc == 1) {
        result = Py_BuildValue("(is)", 1, x.bail ? x.bail : "?");
        goto done;
    }
    result = Py_BuildValue("(i(LLLLLLL(LLLLLL)(LLLL)))", 0, (long long)stats[0], (long long)stats[1],
                           (long long)x.not_ip, (long long)x.not_tcp, (long long)stats[2],
                           (long long)stats[3], (long long)x.conns_out, (long long)x.close_n[0],
                           (long long)x.close_n[1], (long long)x.close_n[2], (long long)x.close_n[3],
                           (long long)x.close_n[4], (long long)x.close_n[5], (long long)x.noted[0],
                           (long long)x.noted[1], (long long)x.noted[2], (long long)x.noted[3]);
done:
    xrelease(&x, &sg);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        PyBuffer_Release(all[i]);
    return result;
}
