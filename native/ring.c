/*
 * SPSC ring of variable-length records; see ring.h.
 *
 * Shared words and their single writers:
 *   record header  producer, release at commit   -> consumer acquire in peek / data_ready
 *   ctl->head      consumer, release at release  -> producer acquire in claim / space_ready
 *   ctl->tail      producer, release at commit   -> attach (a fresh view starts there)
 *   ctl->closed    either side, release at close -> acquire in peek / ready functions
 *   ctl->armed     consumer sets 1 (arm), producer swaps to 0 (ring); a Dekker pair of full
 *                  fences with the record header, like the futex waiters word (wait.h)
 *
 * The consumer polls the 8-byte header of the next record, not ctl->tail: a
 * nonzero header is the publication. That keeps the producer's tail line out
 * of the consumer's cache, so a message costs the transfer of the lines that
 * hold it and nothing more (measured: about 1.4x the messages per second of
 * polling tail on this 2-core machine). It needs the data area to read zero
 * wherever nothing is published: format zeroes it, the consumer zeroes what
 * it releases before handing the space back, and abort zeroes what a claim
 * exposed. Bounds no longer come from tail: a header is checked against the
 * end of the data area and against head + capacity (the space the producer
 * may own), so a lying producer can make the consumer read stale bytes of
 * its own ring, never outside it; the frame CRC catches those.
 *
 * Each side keeps its own positions privately and treats every shared value
 * as a claim to validate, read once into a local.
 */
#include "ring.h"

#include <string.h>

#include "doorbell.h"

#include "shmx/errors.h"

/* Bytes a record with @body_len bytes of body occupies (64-bit: no overflow for any u32). */
static inline uint64_t record_bytes(uint64_t body_len) { return (8u + body_len + 7u) & ~(uint64_t)7u; }

/* Bytes needed at @tail for a record of @rec bytes: the record, plus padding up to the end if it would cross. */
static inline uint64_t space_needed(const shmx_ring_t *r, uint64_t tail, uint64_t rec) {
    uint64_t to_end = r->capacity - (tail & r->mask);
    return rec <= to_end ? rec : to_end + rec;
}

/* The record header at data offset @off as one 64-bit shared word (records are 8-byte aligned). */
static inline _Atomic uint64_t *header_word(const shmx_ring_t *r, uint32_t off) {
    return (_Atomic uint64_t *)(void *)(r->data + off);
}

static inline uint64_t pack_header(uint32_t body_len, uint16_t kind) {
    shmx_record_header_t h = {.body_len = body_len, .kind = kind, .reserved = 0};
    uint64_t word;
    memcpy(&word, &h, sizeof word);
    return word;
}

/* One read of a shared record header into a local (a peer may be rewriting it). */
static inline shmx_record_header_t load_header(const shmx_ring_t *r, uint32_t off) {
    /* Acquire: pairs with the release store of the header in shmx_ring_commit,
     * making the body written before it visible. */
    uint64_t word = atomic_load_explicit(header_word(r, off), memory_order_acquire);
    shmx_record_header_t h;
    memcpy(&h, &word, sizeof h);
    return h;
}

/* Zero @len bytes from position @pos (at most one wrap): nothing published there any more. */
static void zero_span(shmx_ring_t *r, uint64_t pos, uint64_t len) {
    uint32_t off = (uint32_t)(pos & r->mask);
    uint64_t first = r->capacity - off;
    if (len <= first) {
        memset(r->data + off, 0, len);
    } else {
        memset(r->data + off, 0, first);
        memset(r->data, 0, len - first);
    }
}

void shmx_ring_format(shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity) {
    /* A nonzero header is a published record: nothing may be left from an earlier user. */
    memset(data, 0, capacity);
    /* Relaxed: the host formats before any peer can see the ring; the segment's
     * (or channel's) release publication orders these stores for attachers. */
    atomic_store_explicit(&ctl->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->head, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->data.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->data.waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->armed, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->space.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->space.waiters, 0, memory_order_relaxed);
    atomic_store_explicit(&ctl->closed, 0, memory_order_relaxed);
}

/* A private view starting at @tail (producer) and @head (consumer), both validated or known. */
static void init_view(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity, uint64_t tail,
                      uint64_t head) {
    memset(r, 0, sizeof *r);
    r->ctl = ctl;
    r->data = data;
    r->capacity = capacity;
    r->mask = capacity - 1u;
    r->tail = tail;
    r->head_cache = head;
    r->head = head;
    r->read = head;
    r->bell_fd = -1;
}

static int shape_ok(uint32_t capacity, const uint8_t *data) {
    return capacity >= 64u && (capacity & (capacity - 1u)) == 0 && ((uintptr_t)data & 7u) == 0;
}

int shmx_ring_attach(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity) {
    if (!shape_ok(capacity, data)) return -SHMX_EINVAL;
    /* Acquire: pairs with the release stores in shmx_ring_commit / shmx_ring_release,
     * so records (and freed space) before these positions are visible. */
    uint64_t tail = atomic_load_explicit(&ctl->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&ctl->head, memory_order_acquire);
    if (tail - head > capacity || ((tail | head) & 7u) != 0) return -SHMX_ECORRUPT;
    init_view(r, ctl, data, capacity, tail, head);
    return 0;
}

int shmx_ring_attach_formatted(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity) {
    if (!shape_ok(capacity, data)) return -SHMX_EINVAL;
    init_view(r, ctl, data, capacity, 0, 0);
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

    /* Headers are written at commit: until then the consumer sees zero here. If the
     * record would cross the end, padding fills the rest and it starts at offset 0. */
    uint32_t off = need != rec ? 0u : (uint32_t)(tail & r->mask);
    *body = r->data + off + 8u;
    r->claim_pos = tail + (need - rec);
    r->claim_total = (uint32_t)need;
    r->claim_header = pack_header(body_len, kind);
    return 0;
}

static void ring_armed(shmx_ring_t *r);

int shmx_ring_commit(shmx_ring_t *r) {
    if (r->claim_total == 0) return -SHMX_ESTATE;
    uint32_t off = (uint32_t)(r->claim_pos & r->mask);
    /* Release: pairs with the consumer's acquire load of the header (peek,
     * data_ready), publishing the body written since the claim. */
    atomic_store_explicit(header_word(r, off), r->claim_header, memory_order_release);
    if (r->claim_pos != r->tail) {
        /* Padding last, also release: a consumer that sees it sees the record at 0. */
        uint32_t pad_off = (uint32_t)(r->tail & r->mask);
        atomic_store_explicit(header_word(r, pad_off), pack_header(r->capacity - pad_off - 8u, SHMX_RECORD_PAD),
                              memory_order_release);
    }
    r->tail += r->claim_total;
    r->claim_total = 0;
    /* Release: tail is read only to attach a fresh view (see the top of the file). */
    atomic_store_explicit(&r->ctl->tail, r->tail, memory_order_release);
    shmx_waitpoint_notify(&r->ctl->data);
    /* Relaxed: the full fence in shmx_waitpoint_notify orders our header store before this
     * load, pairing with the fence after the store of armed in shmx_ring_arm. One load of a
     * line the notify just read; the bell is rung only for a consumer that armed. */
    if (__builtin_expect(atomic_load_explicit(&r->ctl->armed, memory_order_relaxed) != 0, 0)) ring_armed(r);
    return 0;
}

/* The slow half of a commit or close: take the consumer's arm (one ring per arm) and ring. */
static __attribute__((noinline)) void ring_armed(shmx_ring_t *r) {
    /* Relaxed: the exchange only decides who rings; the ordering came from the fences. */
    if (atomic_exchange_explicit(&r->ctl->armed, 0, memory_order_relaxed) != 0 && r->bell_fd >= 0)
        shmx_doorbell_ring(r->bell_fd);
}

int shmx_ring_abort(shmx_ring_t *r) {
    if (r->claim_total == 0) return -SHMX_ESTATE;
    /* Nothing was published, but the caller may have written the body: zero it, or a
     * later record starting inside it would find a nonzero "header" there. */
    zero_span(r, r->claim_pos, r->claim_total - (r->claim_pos - r->tail));
    r->claim_total = 0;
    return 0;
}

int shmx_ring_shrink(shmx_ring_t *r, uint32_t body_len) {
    if (r->claim_total == 0) return -SHMX_ESTATE;
    uint32_t pad = (uint32_t)(r->claim_pos - r->tail);
    uint64_t old_rec = r->claim_total - pad;
    uint64_t new_rec = record_bytes(body_len);
    if (new_rec > old_rec) return -SHMX_EINVAL;
    /* The caller may have written past the new end: zero it, as abort does. */
    if (new_rec < old_rec) zero_span(r, r->claim_pos + new_rec, old_rec - new_rec);
    shmx_record_header_t h;
    memcpy(&h, &r->claim_header, sizeof h);
    r->claim_total = pad + (uint32_t)new_rec;
    r->claim_header = pack_header(body_len, h.kind);
    return 0;
}

int shmx_ring_released(shmx_ring_t *r, uint64_t *head) {
    int fits = refresh_space(r, 0);
    if (fits < 0) return fits;
    *head = r->head_cache;
    return 0;
}

struct released_wait {
    shmx_ring_t *r;
    uint64_t pos;
    int result; /* 1 reached, -SHMX_ECLOSED, -SHMX_ECORRUPT */
};

static int released_ready(void *arg) {
    struct released_wait *w = arg;
    /* Acquire: pairs with the release store in shmx_ring_close. */
    if (atomic_load_explicit(&w->r->ctl->closed, memory_order_acquire) != 0) {
        w->result = -SHMX_ECLOSED;
        return 1;
    }
    int rc = refresh_space(w->r, 0);
    w->result = rc < 0 ? rc : w->r->head_cache - w->pos < (1ull << 63); /* head >= pos, positions monotonic */
    return w->result != 0;
}

int shmx_ring_wait_released(shmx_ring_t *r, uint64_t pos, int64_t deadline_ns, const shmx_idle_t *idle) {
    if (pos - r->tail - 1u < (1ull << 63)) return -SHMX_EINVAL; /* beyond what was published */
    struct released_wait w = {.r = r, .pos = pos, .result = 0};
    /* The consumer's release notifies the space wait point (shmx_ring_release). */
    int rc = shmx_wait_until(&r->ctl->space, released_ready, &w, deadline_ns, idle);
    if (rc < 0) return rc;
    return w.result < 0 ? w.result : 0;
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

/*
 * Whether the word at read can hold a new record: not when the records this
 * side holds fill the ring, for then read has come round to the oldest of
 * them (whose header is still there).
 */
static inline int room_to_read(const shmx_ring_t *r) { return r->read - r->head < r->capacity; }

int shmx_ring_peek(shmx_ring_t *r, shmx_ring_record_t *out) {
    uint64_t read = r->read;
    uint32_t off = (uint32_t)(read & r->mask);
    shmx_record_header_t h = {0, 0, 0};
    if (room_to_read(r)) h = load_header(r, off);
    if (h.kind == 0 && h.body_len == 0 && h.reserved == 0) {
        /* Closed first, then the header again (both acquire, pairing with the release
         * stores in shmx_ring_close and shmx_ring_commit): a producer that committed
         * and then closed has its last records seen here before we report closed. */
        uint32_t closed = atomic_load_explicit(&r->ctl->closed, memory_order_acquire);
        if (room_to_read(r)) h = load_header(r, off);
        if (h.kind == 0 && h.body_len == 0 && h.reserved == 0) return closed ? -SHMX_ECLOSED : -SHMX_EEMPTY;
    }

    uint64_t to_end = r->capacity - off;
    if (h.kind == SHMX_RECORD_PAD) {
        /* Padding ends exactly at the end and is published after the record at offset 0
         * (commit stores that header first): padding with nothing after it is corrupt. */
        if (h.reserved != 0 || h.body_len != to_end - 8u) return -SHMX_ECORRUPT;
        read += to_end;
        off = 0;
        to_end = r->capacity;
        h = load_header(r, 0);
    }
    if (h.reserved != 0 || (h.kind != SHMX_RECORD_INLINE && h.kind != SHMX_RECORD_SLOT)) return -SHMX_ECORRUPT;
    uint64_t rec = record_bytes(h.body_len);
    /* Within the data area, and within head + capacity: no overlap with records still held. */
    if (rec > to_end || read - r->head + rec > r->capacity) return -SHMX_ECORRUPT;

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
    /* Zero before giving the space back: the producer's next headers land there. */
    zero_span(r, r->head, end - r->head);
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
     * Any nonzero header counts as ready, a corrupt one too: peek reports it. */
    return (room_to_read(r) &&
            atomic_load_explicit(header_word(r, (uint32_t)(r->read & r->mask)), memory_order_acquire) != 0) ||
           atomic_load_explicit(&r->ctl->closed, memory_order_acquire) != 0;
}

int shmx_ring_wait_data(shmx_ring_t *r, int64_t deadline_ns, const shmx_idle_t *idle, int *idled) {
    return shmx_wait_until_ex(&r->ctl->data, data_ready, r, deadline_ns, idle, idled);
}

void shmx_ring_close(shmx_ring_ctl_t *ctl) {
    /* Release: pairs with the acquire loads of closed in peek and the ready
     * functions; records committed before closing stay visible. */
    atomic_store_explicit(&ctl->closed, 1, memory_order_release);
    shmx_waitpoint_notify_all(&ctl->data);
    shmx_waitpoint_notify_all(&ctl->space);
}

void shmx_ring_close_bell(shmx_ring_t *r) {
    shmx_ring_close(r->ctl);
    /* The seq_cst RMWs in close do not order a later relaxed load in C11: fence explicitly
     * (pairs with the fence in shmx_ring_arm, as in commit). Cold path. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->ctl->armed, memory_order_relaxed) != 0) ring_armed(r);
}

int shmx_ring_arm(shmx_ring_t *r) {
    /* Relaxed store, then a full fence: pairs with the fence in shmx_waitpoint_notify (commit)
     * or in shmx_ring_close_bell. Either the producer's load of armed sees 1 and rings, or the
     * loads in data_ready see its header or closed. */
    atomic_store_explicit(&r->ctl->armed, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!data_ready(r)) return 0;
    /* Not sleeping after all: spare the producer a ring (relaxed: guards nothing). */
    atomic_store_explicit(&r->ctl->armed, 0, memory_order_relaxed);
    return 1;
}

int shmx_ring_is_closed(const shmx_ring_ctl_t *ctl) {
    /* Acquire: pairs with the release store in shmx_ring_close. */
    return atomic_load_explicit(&ctl->closed, memory_order_acquire) != 0;
}
