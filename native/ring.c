/*
 * SPSC ring of variable-length records; see ring.h.
 *
 * Shared words and their single writers:
 *   ctl->tail    producer, release at commit   -> consumer acquire in peek / data_ready
 *   ctl->head    consumer, release at release  -> producer acquire in claim / space_ready
 *   ctl->closed  either side, release at close -> acquire in peek / ready functions
 * Record headers are written by the producer before the tail store that
 * publishes them and read by the consumer once, into a local, after its
 * acquire load of tail. Each side keeps its own positions privately and
 * treats the other side's shared position as a claim to validate.
 */
#include "ring.h"

#include <string.h>

#include "shmx/errors.h"

/* Bytes a record with @body_len bytes of body occupies (64-bit: no overflow for any u32). */
static inline uint64_t record_bytes(uint64_t body_len) { return (8u + body_len + 7u) & ~(uint64_t)7u; }

/* Bytes needed at @tail for a record of @rec bytes: the record, plus padding up to the end if it would cross. */
static inline uint64_t space_needed(const shmx_ring_t *r, uint64_t tail, uint64_t rec) {
    uint64_t to_end = r->capacity - (tail & r->mask);
    return rec <= to_end ? rec : to_end + rec;
}

/* One read of a shared record header into a local (a peer may be rewriting it). */
static inline shmx_record_header_t load_header(const uint8_t *p) {
    uint64_t word = *(const volatile uint64_t *)(const void *)p;
    shmx_record_header_t h;
    memcpy(&h, &word, sizeof h);
    return h;
}

static inline void store_header(uint8_t *p, uint32_t body_len, uint16_t kind) {
    shmx_record_header_t h = {.body_len = body_len, .kind = kind, .reserved = 0};
    memcpy(p, &h, sizeof h);
}

void shmx_ring_format(shmx_ring_ctl_t *ctl) {
    /* Relaxed: the host formats before any peer can see the ring; the segment's
     * (or channel's) release publication orders these stores for attachers. */
    atomic_store_explicit(&ctl->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->head, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->data.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->data.waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->space.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->space.waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->closed, 0, memory_order_relaxed);
}

int shmx_ring_attach(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity) {
    if (capacity < 64u || (capacity & (capacity - 1u)) != 0 || ((uintptr_t)data & 7u) != 0)
        return -SHMX_EINVAL;
    /* Acquire: pairs with the release stores in shmx_ring_commit / shmx_ring_release,
     * so records (and freed space) before these positions are visible. */
    uint64_t tail = atomic_load_explicit(&ctl->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&ctl->head, memory_order_acquire);
    if (tail - head > capacity || ((tail | head) & 7u) != 0) return -SHMX_ECORRUPT;
    memset(r, 0, sizeof *r);
    r->ctl = ctl;
    r->data = data;
    r->capacity = capacity;
    r->mask = capacity - 1u;
    r->tail = tail;
    r->head_cache = head;
    r->head = head;
    r->read = head;
    r->tail_cache = tail;
    return 0;
}

uint32_t shmx_ring_max_body(const shmx_ring_t *r) {
    /* A record of half the ring fits after draining whatever padding it needs. */
    return r->capacity / 2u - 8u;
}

/*
 * Refresh the producer's view of head. Returns 1 if @need bytes fit at the
 * private tail, 0 if not, -SHMX_ECORRUPT if the consumer's head is impossible.
 */
static int refresh_space(shmx_ring_t *r, uint64_t need) {
    /* Acquire: pairs with the release store of head in shmx_ring_release, so the
     * consumer is done reading the space it gave back before we overwrite it. */
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    uint64_t used = r->tail - head; /* unsigned: a head beyond tail wraps to a huge value */
    if (used > r->capacity) return -SHMX_ECORRUPT;
    r->head_cache = head;
    return used + need <= r->capacity;
}

int shmx_ring_claim(shmx_ring_t *r, uint32_t body_len, uint16_t kind, void **body) {
    if (r->claim_total != 0) return -SHMX_ESTATE;
    if (kind != SHMX_RECORD_INLINE && kind != SHMX_RECORD_SLOT) return -SHMX_EINVAL;
    if (body_len > shmx_ring_max_body(r)) return -SHMX_ETOOBIG;
    /* Relaxed: closed is a one-way stop sign that guards no data; seeing it one
     * claim late only publishes a record the consumer may still drain. */
    if (atomic_load_explicit(&r->ctl->closed, memory_order_relaxed) != 0) return -SHMX_ECLOSED;

    uint64_t tail = r->tail;
    uint64_t rec = record_bytes(body_len);
    uint64_t need = space_needed(r, tail, rec);
    if (tail - r->head_cache + need > r->capacity) {
        int fits = refresh_space(r, need);
        if (fits < 0) return fits;
        if (!fits) return -SHMX_EWOULDBLOCK;
    }

    uint32_t off = (uint32_t)(tail & r->mask);
    if (need != rec) {
        /* Pad to the end; the record starts at offset 0. */
        uint32_t to_end = r->capacity - off;
        store_header(r->data + off, to_end - 8u, SHMX_RECORD_PAD);
        off = 0;
    }
    store_header(r->data + off, body_len, kind);
    *body = r->data + off + 8u;
    r->claim_pos = tail + (need - rec);
    r->claim_total = (uint32_t)need;
    return 0;
}

int shmx_ring_commit(shmx_ring_t *r) {
    if (r->claim_total == 0) return -SHMX_ESTATE;
    r->tail += r->claim_total;
    r->claim_total = 0;
    /* Release: pairs with the consumer's acquire load of tail (peek, data_ready),
     * publishing the record header, padding and body written since the claim. */
    atomic_store_explicit(&r->ctl->tail, r->tail, memory_order_release);
    shmx_waitpoint_notify(&r->ctl->data);
    return 0;
}

int shmx_ring_abort(shmx_ring_t *r) {
    if (r->claim_total == 0) return -SHMX_ESTATE;
    r->claim_total = 0; /* tail never moved: nothing was visible */
    return 0;
}

struct space_wait {
    shmx_ring_t *r;
    uint64_t need;
    int result; /* 1 fits, -SHMX_ECLOSED, -SHMX_ECORRUPT */
};

static int space_ready(void *arg) {
    struct space_wait *w = arg;
    /* Acquire: pairs with the release store in shmx_ring_close. */
    if (atomic_load_explicit(&w->r->ctl->closed, memory_order_acquire) != 0) {
        w->result = -SHMX_ECLOSED;
        return 1;
    }
    int fits = refresh_space(w->r, w->need);
    w->result = fits;
    return fits != 0;
}

int shmx_ring_wait_space(shmx_ring_t *r, uint32_t body_len, int64_t deadline_ns, const shmx_idle_t *idle) {
    if (body_len > shmx_ring_max_body(r)) return -SHMX_ETOOBIG;
    uint64_t need = space_needed(r, r->tail, record_bytes(body_len));
    if (r->tail - r->head_cache + need <= r->capacity &&
        atomic_load_explicit(&r->ctl->closed, memory_order_relaxed) == 0) /* relaxed: as in claim */
        return 0;
    struct space_wait w = {.r = r, .need = need, .result = 0};
    int rc = shmx_wait_until(&r->ctl->space, space_ready, &w, deadline_ns, idle);
    if (rc < 0) return rc;
    return w.result < 0 ? w.result : 0;
}

int shmx_ring_peek(shmx_ring_t *r, shmx_ring_record_t *out) {
    uint64_t read = r->read;
    uint64_t tail = r->tail_cache;
    if (read == tail) {
        /* Closed first, then tail (both acquire, pairing with the release stores in
         * shmx_ring_close and shmx_ring_commit): a producer that committed and then
         * closed has its last records seen here before we report closed. */
        uint32_t closed = atomic_load_explicit(&r->ctl->closed, memory_order_acquire);
        tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
        uint64_t used = tail - r->head; /* unsigned: a tail behind head wraps to a huge value */
        if (used > r->capacity || read - r->head > used) return -SHMX_ECORRUPT;
        r->tail_cache = tail;
        if (read == tail) return closed ? -SHMX_ECLOSED : -SHMX_EEMPTY;
    }

    uint64_t avail = tail - read; /* 0 < avail <= capacity, validated when tail was loaded */
    uint32_t off = (uint32_t)(read & r->mask);
    uint64_t to_end = r->capacity - off;
    shmx_record_header_t h = load_header(r->data + off);
    if (h.kind == SHMX_RECORD_PAD) {
        /* Padding ends exactly at the end and is published together with the record
         * after it (claim writes both, commit covers both): a lone one is corrupt. */
        if (h.reserved != 0 || h.body_len != to_end - 8u || to_end >= avail) return -SHMX_ECORRUPT;
        read += to_end;
        avail -= to_end;
        off = 0;
        to_end = r->capacity;
        h = load_header(r->data);
    }
    if (h.reserved != 0 || (h.kind != SHMX_RECORD_INLINE && h.kind != SHMX_RECORD_SLOT)) return -SHMX_ECORRUPT;
    uint64_t rec = record_bytes(h.body_len);
    if (rec > to_end || rec > avail) return -SHMX_ECORRUPT; /* crosses the end, or beyond what was published */

    out->kind = h.kind;
    out->body_len = h.body_len;
    out->body = r->data + off + 8u;
    out->end = read + rec;
    r->read = read + rec;
    return 0;
}

int shmx_ring_release(shmx_ring_t *r, uint64_t end) {
    /* head < end <= read, in unsigned distances from head. */
    if (end - r->head - 1u >= r->read - r->head) return -SHMX_EORDER;
    r->head = end;
    /* Release: pairs with the producer's acquire load of head (claim, space_ready):
     * our reads of the released records happen before it reuses their space. */
    atomic_store_explicit(&r->ctl->head, end, memory_order_release);
    shmx_waitpoint_notify(&r->ctl->space);
    return 0;
}

static int data_ready(void *arg) {
    const shmx_ring_t *r = arg;
    /* Acquire: pairs with the release stores in shmx_ring_commit and shmx_ring_close.
     * A corrupt tail also counts as ready: peek reports it. */
    return atomic_load_explicit(&r->ctl->tail, memory_order_acquire) != r->read ||
           atomic_load_explicit(&r->ctl->closed, memory_order_acquire) != 0;
}

int shmx_ring_wait_data(shmx_ring_t *r, int64_t deadline_ns, const shmx_idle_t *idle) {
    if (r->read != r->tail_cache) return 0;
    return shmx_wait_until(&r->ctl->data, data_ready, r, deadline_ns, idle);
}

void shmx_ring_close(shmx_ring_ctl_t *ctl) {
    /* Release: pairs with the acquire loads of closed in peek and the ready
     * functions; records committed before closing stay visible. */
    atomic_store_explicit(&ctl->closed, 1, memory_order_release);
    shmx_waitpoint_notify_all(&ctl->data);
    shmx_waitpoint_notify_all(&ctl->space);
}

int shmx_ring_is_closed(const shmx_ring_ctl_t *ctl) {
    /* Acquire: pairs with the release store in shmx_ring_close. */
    return atomic_load_explicit(&ctl->closed, memory_order_acquire) != 0;
}
