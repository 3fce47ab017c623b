/*
 * Channels: the public shmx_channel_* API and its shared-memory transport.
 *
 * Sending: a payload of up to inline_max bytes is written straight into a ring
 * record (frame header, then payload); a larger one goes into a pool slot and
 * the record carries the frame header and a reference to the slot. Receiving
 * peeks records in order; every view handed out stays held (ring space and
 * slot) until it is released, in the order received. The receiver keeps a
 * private FIFO of what it holds, so releasing trusts nothing the peer wrote.
 *
 * The hot path (space and data available) makes no system call, allocation,
 * division or lock: a ring claim, the CRC over the frame, a ring commit; a
 * peek, the CRC check, a ring release. Waits run in slices so that a peer
 * that hung up its bootstrap socket is noticed even if it never rings.
 *
 * The uds transport (channel_uds.c) sends the same frames over the socket;
 * the public calls below dispatch to it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel_internal.h"
#include "shmx/errors.h"
#include "shmx/frame.h"

#define HDR SHMX_FRAME_HEADER_SIZE
#define SLOT_BODY (HDR + (uint32_t)sizeof(shmx_slot_ref_t)) /* body of a SLOT record */
#define NO_SLOT UINT32_MAX

/* Longest sleep between two looks at the bootstrap socket while waiting on a ring. */
#define RING_SLICE_NS 100000000LL
/* A pool wait is not woken by close: look at the closed flag (and the socket) this often. */
#define POOL_SLICE_NS 10000000LL
/* Receives that time out within one slice look at the socket every this many times (power of two). */
#define EMPTY_POLLS_PER_CHECK 64u
/* Marks a deadline not computed yet (a wait that never happens never reads the clock). */
#define NO_DEADLINE INT64_MIN
#define PRE_SPIN 256u /* clock-free polls a receive makes before it starts timing its wait */

/* A received record the receiver still holds, in receive order. */
typedef struct held {
    uint64_t end;        /* the record's end: the message's end_ */
    uint64_t release_to; /* ring position to release up to (covers records dropped behind it) */
    shmx_slot_ref_t ref; /* cls NO_SLOT: inline */
} held_t;

/*
 * A shm channel: the contract's struct first (so the pointer is the same, and
 * shmx_channel_destroy frees either transport with one free()), then the
 * receiver's held FIFO. Every real (decodable) record is at least
 * align8(8 + 24) = 32 bytes and held records never span more than the ring,
 * so ring_bytes / 32 entries always suffice.
 */
typedef struct shm_channel {
    struct shmx_channel ch;
    uint32_t held_mask;   /* FIFO capacity - 1 (a power of two) */
    uint32_t held_first;  /* index of the oldest entry */
    uint32_t held_count;
    uint32_t empty_polls; /* short receives that found nothing (see EMPTY_POLLS_PER_CHECK) */
    held_t held[];
} shm_channel_t;

static inline shm_channel_t *shm_of(shmx_channel_t *ch) { return (shm_channel_t *)ch; }

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * ch->closed is a plain int in the contract struct but is set by close() from
 * any thread while a sender or receiver runs: accessed with the __atomic
 * builtins. Release here pairs with the acquire load in channel_uds.c (the shm
 * transport reads the rings' closed flags instead).
 */
static inline void set_closed_locally(shmx_channel_t *ch) { __atomic_store_n(&ch->closed, 1, __ATOMIC_RELEASE); }

/* 1 if the bootstrap socket shows that the other side hung up (never without a socket). */
static int sock_hung_up(int sock) {
    if (sock < 0) return 0;
    struct pollfd p = {.fd = sock, .events = POLLRDHUP, .revents = 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

/* The idle strategy of a wait slice after the first: a call spins only once. */
static inline shmx_idle_t later_slices(const shmx_idle_t *idle) {
    shmx_idle_t l = {.spin_iterations = idle->spin_iterations == UINT32_MAX ? UINT32_MAX : 0u,
                     .yield_iterations = 0};
    return l;
}

/* The end of the next wait slice, and whether it is a whole slice (not cut by the deadline). */
static inline int64_t slice_end(int64_t now, int64_t deadline, int64_t slice, int *whole) {
    *whole = deadline - now > slice;
    return *whole ? now + slice : deadline;
}

/* ---- opening and closing --------------------------------------------------- */

int shmx_channel_open_shm(shmx_segment_t *seg, shmx_pool_t *pool, uint32_t index, int is_host, int sock,
                          shmx_channel_t **out) {
    if (seg == NULL || pool == NULL || out == NULL || index >= seg->config.max_channels) return -SHMX_EINVAL;
    const shmx_config_t *cfg = &seg->config; /* the validated private copy */
    shmx_channel_ctl_t *ctl = shmx_segment_channel(seg, index);
    /* Acquire: pairs with the host's release store of ACTIVE after it formatted the rings. */
    if (atomic_load_explicit(&ctl->state, memory_order_acquire) != SHMX_CHANNEL_ACTIVE) return -SHMX_ESTATE;

    uint32_t entries = cfg->ring_bytes / 32u;
    shm_channel_t *x = calloc(1, sizeof(*x) + (size_t)entries * sizeof(held_t));
    if (x == NULL) return -ENOMEM;
    shmx_channel_t *ch = &x->ch;
    x->held_mask = entries - 1u;

    int tx_ring = is_host ? SHMX_RING_HOST_TO_GUEST : SHMX_RING_GUEST_TO_HOST;
    int rx_ring = is_host ? SHMX_RING_GUEST_TO_HOST : SHMX_RING_HOST_TO_GUEST;
    int rc = shmx_ring_attach(&ch->tx, shmx_segment_ring_ctl(seg, index, tx_ring),
                              shmx_segment_ring_data(seg, index, tx_ring), cfg->ring_bytes);
    if (rc == 0)
        rc = shmx_ring_attach(&ch->rx, shmx_segment_ring_ctl(seg, index, rx_ring),
                              shmx_segment_ring_data(seg, index, rx_ring), cfg->ring_bytes);
    if (rc != 0) {
        free(x); /* the caller keeps @sock: no channel exists to own it */
        return rc == -SHMX_EINVAL ? -SHMX_ECORRUPT : rc;
    }

    ch->transport = SHMX_TRANSPORT_SHM;
    ch->is_host = is_host != 0;
    ch->index = index;
    /* Acquire: pairs with the host's release of the entry (the epoch is written before ACTIVE). */
    ch->epoch = atomic_load_explicit(&ctl->epoch, memory_order_acquire);
    ch->self_owner = is_host ? SHMX_OWNER_HOST : index;
    ch->peer_owner = is_host ? index : SHMX_OWNER_HOST;
    ch->max_payload = cfg->max_payload;
    ch->inline_max = cfg->inline_max; /* validated to fit half a ring with its record and frame headers */
    ch->idle.spin_iterations = cfg->spin_iterations;
    ch->idle.yield_iterations = cfg->yield_iterations;
    ch->next_id = 1;
    ch->sock = sock;
    ch->seg = seg;
    ch->pool = pool;
    ch->ctl = ctl;
    *out = ch;
    return 0;
}

int shmx_channel_close(shmx_channel_t *ch) {
    if (ch == NULL) return 0;
    set_closed_locally(ch);
    if (ch->transport == SHMX_TRANSPORT_SHM) {
        /* Both rings: our receiver and sender and the peer's wake up at once. */
        shmx_ring_close(ch->tx.ctl);
        shmx_ring_close(ch->rx.ctl);
    } else if (ch->sock >= 0) {
        /*
         * Both directions: the peer sees EOF and its sends fail; our own blocked
         * poll() calls wake with POLLHUP (a write shutdown alone would not wake
         * them). Bytes already queued to us can still be read.
         */
        shutdown(ch->sock, SHUT_RDWR);
    }
    return 0;
}

/*
 * Give back what this side still holds in the shared pool: the open claim's
 * slot and the slots of received, unreleased messages. Done in
 * shmx_channel_free (segment still mapped), not in shmx_channel_destroy
 * (which host.c and guest.c may call when the segment is already gone).
 */
static void shm_return_slots(shm_channel_t *x) {
    shmx_channel_t *ch = &x->ch;
    if (ch->claim_open && ch->claim_in_slot) shmx_pool_free(ch->pool, &ch->claim_slot, ch->self_owner);
    ch->claim_open = 0;
    for (uint32_t i = 0; i < x->held_count; i++) {
        const held_t *h = &x->held[(x->held_first + i) & x->held_mask];
        if (h->ref.cls != NO_SLOT) shmx_pool_free(ch->pool, &h->ref, ch->self_owner);
    }
    x->held_count = 0;
}

void shmx_channel_free(shmx_channel_t *ch) {
    if (ch == NULL) return;
    shmx_channel_close(ch);
    if (ch->transport == SHMX_TRANSPORT_SHM) shm_return_slots(shm_of(ch));
    if (ch->is_host && ch->host != NULL) shmx_host_forget_channel(ch->host, ch); /* destroys it */
    else shmx_channel_destroy(ch);
}

void shmx_channel_destroy(shmx_channel_t *ch) {
    if (ch == NULL) return;
    if (ch->sock >= 0) close(ch->sock);
    free(ch->uds_tx);
    free(ch->uds_rx);
    free(ch);
}

/* ---- sending ----------------------------------------------------------------- */

/* Claim a ring record, waiting for space until the deadline (*@deadline computed on first need). */
static int shm_claim_record(shmx_channel_t *ch, uint32_t body_len, uint16_t kind, int64_t timeout_ns,
                            int64_t *deadline, void **body) {
    int rc = shmx_ring_claim(&ch->tx, body_len, kind, body);
    if (rc != -SHMX_EWOULDBLOCK || timeout_ns == 0) return rc;
    if (*deadline == NO_DEADLINE) *deadline = shmx_deadline(timeout_ns);
    shmx_idle_t idle = ch->idle;
    for (;;) {
        int64_t now = shmx_now_ns();
        if (now >= *deadline) return -SHMX_EWOULDBLOCK;
        int whole;
        int64_t end = slice_end(now, *deadline, RING_SLICE_NS, &whole);
        rc = shmx_ring_wait_space(&ch->tx, body_len, end, &idle);
        if (rc != 0 && rc != -ETIMEDOUT) return rc; /* closed, corrupt */
        rc = shmx_ring_claim(&ch->tx, body_len, kind, body);
        if (rc != -SHMX_EWOULDBLOCK) return rc;
        /* A receiver that hung up never frees space. */
        if (whole && sock_hung_up(ch->sock)) return -SHMX_ECLOSED;
        idle = later_slices(&ch->idle);
    }
}

/* Allocate a slot, waiting in slices (a close or a hang-up must not leave us asleep until the deadline). */
static int shm_alloc_slot(shmx_channel_t *ch, uint32_t len, int64_t deadline, shmx_slot_ref_t *ref) {
    shmx_idle_t idle = ch->idle;
    for (;;) {
        int64_t now = shmx_now_ns();
        int64_t end = deadline - now > POOL_SLICE_NS ? now + POOL_SLICE_NS : deadline;
        int rc = shmx_pool_alloc(ch->pool, len, ch->self_owner, end, &idle, ref);
        if (rc != -SHMX_EWOULDBLOCK) return rc;
        if (shmx_ring_is_closed(ch->tx.ctl)) return -SHMX_ECLOSED;
        if (shmx_now_ns() >= deadline) return -SHMX_EWOULDBLOCK;
        if (sock_hung_up(ch->sock)) return -SHMX_ECLOSED;
        idle = later_slices(&ch->idle);
    }
}

static int shm_claim(shmx_channel_t *ch, uint32_t len, int64_t timeout_ns, void **data) {
    int64_t deadline = NO_DEADLINE;
    void *body;
    if (len <= ch->inline_max) {
        int rc = shm_claim_record(ch, HDR + len, SHMX_RECORD_INLINE, timeout_ns, &deadline, &body);
        if (rc != 0) return rc;
        ch->claim_in_slot = 0;
        ch->claim_payload = (uint8_t *)body + HDR;
    } else {
        if (shmx_ring_is_closed(ch->tx.ctl)) return -SHMX_ECLOSED;
        deadline = shmx_deadline(timeout_ns);
        shmx_slot_ref_t ref;
        int rc = shm_alloc_slot(ch, len, deadline, &ref);
        if (rc != 0) return rc;
        void *slot;
        uint32_t size;
        rc = shmx_pool_resolve(ch->pool, &ref, SHMX_SLOT_CLAIMED, ch->self_owner, &slot, &size);
        if (rc == 0) rc = shm_claim_record(ch, SLOT_BODY, SHMX_RECORD_SLOT, timeout_ns, &deadline, &body);
        if (rc != 0) {
            shmx_pool_free(ch->pool, &ref, ch->self_owner);
            return rc;
        }
        ch->claim_in_slot = 1;
        ch->claim_slot = ref;
        ch->claim_payload = slot;
    }
    ch->claim_open = 1;
    ch->claim_len = len;
    ch->claim_body = body;
    *data = ch->claim_payload;
    return 0;
}

int shmx_channel_claim(shmx_channel_t *ch, uint32_t len, int64_t timeout_ns, void **data) {
    if (ch == NULL || data == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return shmx_uds_claim(ch, len, shmx_deadline(timeout_ns), data);
    if (ch->claim_open) return -SHMX_ESTATE;
    if (len > ch->max_payload) return -SHMX_ETOOBIG;
    return shm_claim(ch, len, timeout_ns, data);
}

/* Drop the open claim: the record never becomes visible, the slot goes back. */
static void shm_drop_claim(shmx_channel_t *ch) {
    shmx_ring_abort(&ch->tx);
    if (ch->claim_in_slot) shmx_pool_free(ch->pool, &ch->claim_slot, ch->self_owner);
    ch->claim_open = 0;
}

int64_t shmx_channel_commit(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return shmx_uds_commit(ch, type, flags, id);
    if (!ch->claim_open) return -SHMX_ESTATE;
    uint64_t use = id != 0 ? id : ch->next_id;
    int rc;
    /* A failed commit sends nothing and drops the claim, whatever the reason. */
    if (use > (uint64_t)INT64_MAX) {
        rc = -SHMX_EINVAL; /* not representable in the returned id */
    } else if (!ch->claim_in_slot) {
        /* The payload already sits right after the header: encode only computes the CRC. */
        rc = shmx_frame_encode(ch->claim_body, HDR + ch->claim_len, type, flags, use, ch->claim_payload,
                               ch->claim_len);
    } else {
        rc = shmx_frame_header_encode(ch->claim_body, type, flags, use, ch->claim_payload, ch->claim_len);
        if (rc >= 0) memcpy(ch->claim_body + HDR, &ch->claim_slot, sizeof(shmx_slot_ref_t));
    }
    /* The slot must stay ours (not yet SENT) if the ring closed: then we free it. */
    if (rc >= 0 && shmx_ring_is_closed(ch->tx.ctl)) rc = -SHMX_ECLOSED;
    if (rc < 0) {
        shm_drop_claim(ch);
        return rc;
    }
    if (ch->claim_in_slot) {
        rc = shmx_pool_send(ch->pool, &ch->claim_slot, ch->self_owner, ch->peer_owner);
        if (rc != 0) {
            /* The slot was reclaimed under us: it is no longer ours to free. */
            shmx_ring_abort(&ch->tx);
            ch->claim_open = 0;
            return rc;
        }
    }
    shmx_ring_commit(&ch->tx);
    ch->claim_open = 0;
    if (id == 0) ch->next_id++;
    return (int64_t)use;
}

int shmx_channel_abort(shmx_channel_t *ch) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (!ch->claim_open) return -SHMX_ESTATE;
    if (ch->transport == SHMX_TRANSPORT_UDS) ch->claim_open = 0; /* the claim is only our buffer */
    else shm_drop_claim(ch);
    return 0;
}

int64_t shmx_channel_send(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id, const void *payload,
                          uint32_t len, int64_t timeout_ns) {
    if (len != 0 && payload == NULL) return -SHMX_EINVAL;
    /* Refuse before taking any space: a bad flag would only fail at commit. */
    if ((flags & ~SHMX_FLAGS_KNOWN) != 0) return -SHMX_EFLAGS;
    void *dst;
    int rc = shmx_channel_claim(ch, len, timeout_ns, &dst);
    if (rc != 0) return rc;
    if (len != 0) memcpy(dst, payload, len);
    return shmx_channel_commit(ch, type, flags, id);
}

/* ---- receiving ---------------------------------------------------------------- */

/* Give back ring space now, or, behind held messages, when the newest of them is released. */
static void shm_consume(shm_channel_t *x, uint64_t end) {
    if (x->held_count == 0) shmx_ring_release(&x->ch.rx, end);
    else x->held[(x->held_first + x->held_count - 1u) & x->held_mask].release_to = end;
}

/* Put the last peeked record back: the next peek reads it again. */
static inline void shm_unpeek(shmx_channel_t *ch, const shmx_ring_record_t *rec) {
    /* The record starts after any padding peek skipped; restoring read there keeps read >= head. */
    ch->rx.read = rec->end - (((uint64_t)rec->body_len + 8u + 7u) & ~(uint64_t)7u);
}

/*
 * The slow path of a receive: wait for a record until the deadline, in
 * slices, looking at the bootstrap socket between them. Returns what the
 * final peek returned, or the peer-gone code once the ring is drained.
 */
static int shm_wait_record(shm_channel_t *x, shmx_ring_record_t *rec, int64_t timeout_ns) {
    shmx_channel_t *ch = &x->ch;
    int gone = ch->is_host ? -SHMX_ECLOSED : -SHMX_EHOSTGONE;
    if (timeout_ns != 0) {
        /* In a busy exchange the next record is usually a few hundred nanoseconds
         * away: look for it before reading the clock (tens of ns a read in a VM),
         * within the channel's own spin budget. */
        uint32_t n = ch->idle.spin_iterations < PRE_SPIN ? ch->idle.spin_iterations : PRE_SPIN;
        for (uint32_t i = 0; i < n; i++) {
            shmx_cpu_relax();
            int rc = shmx_ring_peek(&ch->rx, rec);
            if (rc != -SHMX_EEMPTY) return rc;
        }
    }
    int64_t deadline = timeout_ns == 0 ? NO_DEADLINE : shmx_deadline(timeout_ns);
    shmx_idle_t idle = ch->idle;
    for (;;) {
        int whole = 0;
        if (deadline != NO_DEADLINE) {
            int64_t now = shmx_now_ns();
            if (now < deadline) {
                shmx_ring_wait_data(&ch->rx, slice_end(now, deadline, RING_SLICE_NS, &whole), &idle);
                idle = later_slices(&ch->idle);
            }
        }
        int rc = shmx_ring_peek(&ch->rx, rec);
        if (rc != -SHMX_EEMPTY) return rc;
        /* A whole slice passed, or many short waits did: has the peer hung up? */
        if (whole || (++x->empty_polls & (EMPTY_POLLS_PER_CHECK - 1u)) == 0) {
            if (sock_hung_up(ch->sock)) {
                /* Records published just before the hang-up may have landed after our peek. */
                rc = shmx_ring_peek(&ch->rx, rec);
                return rc == -SHMX_EEMPTY ? gone : rc;
            }
        }
        if (!whole) return -SHMX_EEMPTY;
    }
}

/* The next record, waiting for it within the timeout (see shm_wait_record). */
static int shm_next_record(shm_channel_t *x, shmx_ring_record_t *rec, int64_t timeout_ns) {
    int rc = shmx_ring_peek(&x->ch.rx, rec);
    return rc == -SHMX_EEMPTY ? shm_wait_record(x, rec, timeout_ns) : rc;
}

/* Where a peeked record's frame lies. */
typedef struct located {
    uint8_t hdr[HDR];     /* private copy of the frame header */
    const uint8_t *src;   /* payload in shared memory */
    uint32_t payload_len; /* bytes to check the header's length against */
    shmx_slot_ref_t ref;  /* the slot (cls NO_SLOT if none or not ours) */
} located_t;

/* Find a record's header and payload. Returns 0 or a code (then loc->ref says what to free). */
static int shm_locate(shmx_channel_t *ch, const shmx_ring_record_t *rec, located_t *loc) {
    loc->ref = (shmx_slot_ref_t){.cls = NO_SLOT, .index = NO_SLOT, .generation = NO_SLOT, .reserved = 0};
    /* Too short for a frame header: a bad record, dropped like a frame that fails to
     * decode (-SHMX_ESHORT is kept for "your buffer is too small, nothing consumed"). */
    if (rec->body_len < HDR) return -SHMX_ETRUNC;
    memcpy(loc->hdr, rec->body, HDR);
    if (rec->kind == SHMX_RECORD_INLINE) {
        loc->src = rec->body + HDR;
        /* The payload fills the body exactly; a mismatch makes decode report -SHMX_ETRUNC. */
        loc->payload_len = rec->body_len - HDR;
        return 0;
    }
    if (rec->body_len != SLOT_BODY) return -SHMX_EBADSLOT;
    shmx_slot_ref_t ref;
    memcpy(&ref, rec->body + HDR, sizeof ref);
    void *slot;
    uint32_t size;
    int rc = shmx_pool_resolve(ch->pool, &ref, SHMX_SLOT_SENT, ch->self_owner, &slot, &size);
    if (rc != 0) return rc;
    loc->ref = ref;
    loc->src = slot;
    /* Longer than the slot: decode sees the mismatch and reports it. */
    uint32_t length = load_le32(loc->hdr + 8);
    loc->payload_len = length <= size ? length : size;
    return 0;
}

/* Drop a record that can not be delivered: free its slot (if ours) and its ring space. */
static void shm_drop_record(shm_channel_t *x, const shmx_ring_record_t *rec, const located_t *loc) {
    if (loc->ref.cls != NO_SLOT) shmx_pool_free(x->ch.pool, &loc->ref, x->ch.self_owner);
    shm_consume(x, rec->end);
}

/*
 * Receive one message. @defer: on a bad frame, leave it unread (for the next
 * call to report) instead of dropping it -- a batch stops there.
 */
static int shm_receive(shm_channel_t *x, shmx_message_t *msg, int64_t timeout_ns, int defer) {
    shmx_channel_t *ch = &x->ch;
    shmx_ring_record_t rec;
    int rc = shm_next_record(x, &rec, timeout_ns);
    if (rc != 0) return rc;

    located_t loc;
    shmx_frame_t f;
    rc = shm_locate(ch, &rec, &loc);
    if (rc == 0) rc = shmx_frame_header_decode(loc.hdr, loc.src, loc.payload_len, ch->max_payload, &f);
    if (rc != 0) {
        if (defer) shm_unpeek(ch, &rec);
        else shm_drop_record(x, &rec, &loc);
        return rc;
    }
    msg->data = f.payload;
    msg->length = f.length;
    msg->type = f.type;
    msg->flags = f.flags;
    msg->reserved_ = 0;
    msg->id = f.id;
    msg->end_ = rec.end;
    msg->slot_class_ = loc.ref.cls;
    msg->slot_index_ = loc.ref.index;
    msg->slot_generation_ = loc.ref.generation;
    msg->reserved2_ = 0;
    held_t *h = &x->held[(x->held_first + x->held_count) & x->held_mask];
    h->end = rec.end;
    h->release_to = rec.end;
    h->ref = loc.ref;
    x->held_count++;
    return 0;
}

int shmx_channel_receive(shmx_channel_t *ch, shmx_message_t *msg, int64_t timeout_ns) {
    if (ch == NULL || msg == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return shmx_uds_receive(ch, msg, shmx_deadline(timeout_ns));
    return shm_receive(shm_of(ch), msg, timeout_ns, 0);
}

int shmx_channel_receive_batch(shmx_channel_t *ch, shmx_message_t *msgs, int max, int64_t timeout_ns) {
    if (ch == NULL || msgs == NULL || max < 1) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) {
        /* One view of the receive buffer at a time. */
        int rc = shmx_uds_receive(ch, &msgs[0], shmx_deadline(timeout_ns));
        return rc < 0 ? rc : 1;
    }
    shm_channel_t *x = shm_of(ch);
    int rc = shm_receive(x, &msgs[0], timeout_ns, 0);
    if (rc < 0) return rc;
    int n = 1;
    /* Whatever stops the batch (empty, closed, a bad frame) is left for the next call to report. */
    while (n < max && shm_receive(x, &msgs[n], 0, 1) == 0) n++;
    return n;
}

int shmx_channel_release(shmx_channel_t *ch, const shmx_message_t *msg) {
    if (ch == NULL || msg == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return shmx_uds_release(ch, msg);
    shm_channel_t *x = shm_of(ch);
    if (x->held_count == 0) return -SHMX_EORDER;
    held_t *h = &x->held[x->held_first];
    if (h->end != msg->end_) return -SHMX_EORDER;
    int rc = 0;
    /* Our private record of the slot, not the caller's copy of it. */
    if (h->ref.cls != NO_SLOT) rc = shmx_pool_free(ch->pool, &h->ref, ch->self_owner);
    shmx_ring_release(&ch->rx, h->release_to); /* the ring space returns even if the slot was reclaimed */
    x->held_first = (x->held_first + 1u) & x->held_mask;
    x->held_count--;
    return rc;
}

static int64_t uds_receive_copy(shmx_channel_t *ch, void *dst, size_t cap, shmx_message_t *meta,
                                int64_t timeout_ns) {
    shmx_message_t m;
    int rc = shmx_uds_receive(ch, &m, shmx_deadline(timeout_ns));
    if (rc != 0) return rc;
    if (m.length > cap) {
        /* Un-hold without consuming: channel_uds.c delivers the same frame again next time. */
        ch->uds_rx_held = 0;
        if (meta != NULL) meta->length = m.length;
        return -SHMX_ESHORT;
    }
    /* uds_rx is private memory whose CRC was just checked: the copy is what was verified. */
    if (m.length != 0) memcpy(dst, m.data, m.length);
    if (meta != NULL) {
        *meta = m;
        meta->data = dst;
    }
    shmx_uds_release(ch, &m);
    return m.length;
}

int64_t shmx_channel_receive_copy(shmx_channel_t *ch, void *dst, size_t cap, shmx_message_t *meta,
                                  int64_t timeout_ns) {
    if (ch == NULL || (dst == NULL && cap != 0)) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return uds_receive_copy(ch, dst, cap, meta, timeout_ns);
    shm_channel_t *x = shm_of(ch);
    shmx_ring_record_t rec;
    int rc = shm_next_record(x, &rec, timeout_ns);
    if (rc != 0) return rc;

    located_t loc;
    shmx_frame_t f;
    rc = shm_locate(ch, &rec, &loc);
    if (rc == 0 && loc.payload_len > cap) {
        /* Too long for @dst: only a valid frame is kept for a larger buffer, a bad one is dropped. */
        rc = shmx_frame_header_decode(loc.hdr, loc.src, loc.payload_len, ch->max_payload, &f);
        if (rc == 0) {
            shm_unpeek(ch, &rec);
            if (meta != NULL) meta->length = f.length;
            return -SHMX_ESHORT;
        }
    } else if (rc == 0) {
        /* Copy first, then check the CRC over the copy: what the caller gets is what was verified. */
        if (loc.payload_len != 0) memcpy(dst, loc.src, loc.payload_len);
        rc = shmx_frame_header_decode(loc.hdr, dst, loc.payload_len, ch->max_payload, &f);
    }
    shm_drop_record(x, &rec, &loc); /* delivered (copied) or bad: either way consumed */
    if (rc != 0) return rc;
    if (meta != NULL)
        *meta = (shmx_message_t){.data = dst, .length = f.length, .type = f.type, .flags = f.flags, .id = f.id,
                                 .end_ = rec.end, .slot_class_ = NO_SLOT, .slot_index_ = NO_SLOT,
                                 .slot_generation_ = NO_SLOT};
    return f.length;
}

/* ---- properties ------------------------------------------------------------- */

int shmx_channel_transport(const shmx_channel_t *ch) { return (int)ch->transport; }

uint32_t shmx_channel_max_payload(const shmx_channel_t *ch) { return ch->max_payload; }

uint32_t shmx_channel_index(const shmx_channel_t *ch) { return ch->index; }

int shmx_channel_peer_alive(shmx_channel_t *ch) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (ch->sock < 0) return -EBADF;
    /* Relaxed: see channel_uds.c (a plain int the uds sender and receiver share). */
    if (__atomic_load_n(&ch->uds_peer_gone, __ATOMIC_RELAXED)) return 0;
    struct pollfd p = {.fd = ch->sock, .events = POLLRDHUP, .revents = 0};
    if (poll(&p, 1, 0) < 0) return -errno;
    return (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) ? 0 : 1;
}

void shmx_channel_set_idle(shmx_channel_t *ch, uint32_t spin_iterations, uint32_t yield_iterations) {
    if (ch == NULL) return;
    ch->idle.spin_iterations = spin_iterations;
    ch->idle.yield_iterations = yield_iterations;
}

int shmx_channel_region(const shmx_channel_t *ch, int i, void **base, size_t *len) {
    if (ch == NULL || base == NULL || len == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_SHM) {
        if (i != 0) return -SHMX_EINVAL;
        *base = ch->seg->base; /* every ring and every slot lies in the one mapping */
        *len = (size_t)ch->seg->size;
        return 0;
    }
    if (i != 0 && i != 1) return -SHMX_EINVAL;
    *base = i == 0 ? ch->uds_rx : ch->uds_tx;
    *len = ch->uds_buf_len;
    return 0;
}
