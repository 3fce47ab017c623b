/*
 * Channels: the public shmx_channel_* API, opening and closing, and the
 * receiving half of the shared-memory transport (channel_send.c has the
 * sending half).
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

#include "channel_shm.h"
#include "doorbell.h"
#include "host_internal.h"
#include "shmx/errors.h"
#include "shmx/frame.h"

/* Receives that time out within one slice look at the socket every this many times (power of two). */
#define EMPTY_POLLS_PER_CHECK 64u
#define PRE_SPIN 256u /* clock-free polls a receive makes before it starts timing its wait */

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

/* Declared in channel_shm.h: used by both halves' waits. */
int shmx_sock_hung_up(int sock) {
    if (sock < 0) return 0;
    struct pollfd p = {.fd = sock, .events = POLLRDHUP, .revents = 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

/*
 * Declared in channel_shm.h. Off the hot path: only after a call found the
 * channel closed or the peer gone. A guest remembers a gone or expelling
 * host, so every later call fails the same way at once (a dead host never
 * closes the rings, and the socket is only looked at now and then).
 */
int shmx_shm_end_code(shmx_channel_t *ch) {
    if (ch->is_host || __atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE)) return -SHMX_ECLOSED;
    int code;
    /* Relaxed: the host's announcements, read once each; a scribbling peer only misleads itself. */
    if (atomic_load_explicit(&ch->ctl->state, memory_order_relaxed) == SHMX_CHANNEL_EXPELLED &&
        atomic_load_explicit(&ch->ctl->epoch, memory_order_relaxed) == ch->epoch)
        code = -SHMX_EEXPELLED;
    else if (shmx_ring_is_closed(ch->tx.ctl) || shmx_ring_is_closed(ch->rx.ctl))
        return -SHMX_ECLOSED;
    else if (shmx_sock_hung_up(ch->sock))
        code = -SHMX_EHOSTGONE;
    else
        return -SHMX_ECLOSED;
    /* Relaxed: a one-way flag; a thread that misses it finds the same facts itself. */
    __atomic_store_n(&ch->peer_end, code, __ATOMIC_RELAXED);
    return code;
}

/* Declared in channel_shm.h. */
int shmx_shm_violation(shmx_channel_t *ch, int rc) {
    if (ch->is_host && ch->host != NULL && (rc == -SHMX_ECORRUPT || rc == -SHMX_EBADSLOT))
        shmx_host_quarantine(ch->host, ch, rc);
    return rc;
}

/* The slow end of a record fetch: what a failure means for this side. */
static __attribute__((noinline)) int shm_record_failed(shmx_channel_t *ch, int rc) {
    if (rc == -SHMX_ECLOSED) return shmx_shm_end_code(ch);
    return shmx_shm_violation(ch, rc);
}

/* ---- opening and closing --------------------------------------------------- */

int shmx_channel_open_shm(shmx_segment_t *seg, shmx_pool_t *pool, uint32_t index, int is_host, uint32_t epoch,
                          int sock, shmx_channel_t **out) {
    if (seg == NULL || pool == NULL || out == NULL || index >= seg->config.max_channels) return -SHMX_EINVAL;
    const shmx_config_t *cfg = &seg->config; /* the validated private copy */
    shmx_channel_ctl_t *ctl = shmx_segment_channel(seg, index);

    uint32_t entries = cfg->ring_bytes / 32u;
    shm_channel_t *x = calloc(1, sizeof(*x) + (size_t)entries * (sizeof(held_t) + sizeof(in_flight_t)));
    if (x == NULL) return -ENOMEM;
    shmx_channel_t *ch = &x->ch;
    x->fifo_mask = entries - 1u;
    x->flight = (in_flight_t *)&x->held[entries];
    x->window = cfg->window_bytes;

    int tx_ring = is_host ? SHMX_RING_HOST_TO_GUEST : SHMX_RING_GUEST_TO_HOST;
    int rx_ring = is_host ? SHMX_RING_GUEST_TO_HOST : SHMX_RING_HOST_TO_GUEST;
    /* The host formatted both rings just now: its truth is position 0, whatever the entry says by now. */
    int (*attach)(shmx_ring_t *, shmx_ring_ctl_t *, uint8_t *, uint32_t) =
        is_host ? shmx_ring_attach_formatted : shmx_ring_attach;
    int rc = attach(&ch->tx, shmx_segment_ring_ctl(seg, index, tx_ring), shmx_segment_ring_data(seg, index, tx_ring),
                    cfg->ring_bytes);
    if (rc == 0)
        rc = attach(&ch->rx, shmx_segment_ring_ctl(seg, index, rx_ring), shmx_segment_ring_data(seg, index, rx_ring),
                    cfg->ring_bytes);
    if (rc != 0) {
        free(x); /* the caller keeps @sock: no channel exists to own it */
        return rc == -SHMX_EINVAL ? -SHMX_ECORRUPT : rc;
    }

    ch->transport = SHMX_TRANSPORT_SHM;
    ch->is_host = is_host != 0;
    ch->index = index;
    ch->epoch = epoch;
    ch->self_owner = is_host ? SHMX_OWNER_HOST : index;
    ch->peer_owner = is_host ? index : SHMX_OWNER_HOST;
    ch->max_payload = cfg->max_payload;
    ch->max_message = cfg->max_message;
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
        shmx_ring_close_bell(&ch->tx); /* the peer's sleeper, through its bell */
        shmx_ring_close(ch->rx.ctl);
        shmx_channel_wake_local(ch);   /* our own sleeper: its bell is the peer's to ring */
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
        const held_t *h = &x->held[(x->held_first + i) & x->fifo_mask];
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
    shmx_channel_events_destroy(ch);
    free(ch->uds_tx);
    free(ch->uds_rx);
    free(ch);
}

/* ---- receiving ---------------------------------------------------------------- */

/* Give back ring space now, or, behind held messages, when the newest of them is released. */
static void shm_consume(shm_channel_t *x, uint64_t end) {
    if (x->held_count == 0) shmx_ring_release(&x->ch.rx, end);
    else x->held[(x->held_first + x->held_count - 1u) & x->fifo_mask].release_to = end;
}

/* Put the last peeked record back: the next peek reads it again. */
static inline void shm_unpeek(shmx_channel_t *ch, const shmx_ring_record_t *rec) {
    /* The record starts after any padding peek skipped; restoring read there keeps read >= head. */
    ch->rx.read = rec->end - (((uint64_t)rec->body_len + 8u + 7u) & ~(uint64_t)7u);
}

/*
 * Adaptive spinning. The configured spin budget is a ceiling: a receive whose
 * spin ran out before a record came (it had to yield or sleep) halves the
 * next receive's budget, down to SPIN_FLOOR; one that a spin served gets the
 * full budget back. Spinning pays only when the sender is running on another
 * CPU; with more waiting threads than CPUs (many guests on a small machine),
 * a full budget of spinning mostly keeps the thread that must answer off the
 * CPU: measured with shmx-attack-bench, paced 64 B round trips took 1-1.5 ms
 * at the full budget, against 10-30 us sleeping at once. A cut budget also
 * skips the yields. Every SPIN_PROBE_EVERY-th cut wait spins the full budget
 * once, so a pair that could spin again finds out.
 */
#define SPIN_FLOOR 64u
#define SPIN_PROBE_EVERY 256u /* power of two */

/* The spin budget after the cuts (the full one while uncut, or for the busy-spin strategy). */
static inline uint32_t cut_budget(const shm_channel_t *x) {
    uint32_t full = x->ch.idle.spin_iterations;
    if (x->spin_cut == 0 || full == UINT32_MAX) return full;
    uint32_t budget = x->spin_cut < 32u ? full >> x->spin_cut : 0u;
    uint32_t floor = full < SPIN_FLOOR ? full : SPIN_FLOOR; /* never above the configured budget */
    return budget < floor ? floor : budget;
}

/* The idle strategy of this receive's first wait slice. */
static inline shmx_idle_t first_slice(shm_channel_t *x) {
    shmx_idle_t idle = x->ch.idle;
    uint32_t budget = cut_budget(x);
    if (budget == idle.spin_iterations) return idle;
    if ((++x->spin_waits & (SPIN_PROBE_EVERY - 1u)) == 0) return idle; /* the probe */
    idle.spin_iterations = budget;
    idle.yield_iterations = 0;
    return idle;
}

uint32_t shmx_channel_spin_budget(const shmx_channel_t *ch) {
    return ch->transport == SHMX_TRANSPORT_SHM ? cut_budget((const shm_channel_t *)ch) : ch->idle.spin_iterations;
}

/* Learn from how the first wait slice ended: served while spinning (@idled 0, @found) or not. */
static inline void adapt_spin(shm_channel_t *x, int idled, int found) {
    if (!idled) {
        if (found) x->spin_cut = 0;
    } else if (cut_budget(x) > SPIN_FLOOR) {
        x->spin_cut++;
    }
}

/*
 * The slow path of a receive: wait for a record until the deadline, in
 * slices, looking at the bootstrap socket between them. Returns what the
 * final peek returned, or the peer-gone code once the ring is drained.
 */
static int shm_wait_record(shm_channel_t *x, shmx_ring_record_t *rec, int64_t timeout_ns) {
    shmx_channel_t *ch = &x->ch;
    shmx_idle_t idle = first_slice(x);
    if (timeout_ns != 0) {
        /* In a busy exchange the next record is usually a few hundred nanoseconds
         * away: look for it before reading the clock (tens of ns a read in a VM).
         * These polls are part of the channel's spin budget, not added to it. */
        uint32_t n = idle.spin_iterations < PRE_SPIN ? idle.spin_iterations : PRE_SPIN;
        for (uint32_t i = 0; i < n; i++) {
            shmx_cpu_relax();
            int rc = shmx_ring_peek(&ch->rx, rec);
            if (rc != -SHMX_EEMPTY) {
                adapt_spin(x, 0, 1);
                return rc;
            }
        }
        if (idle.spin_iterations != UINT32_MAX) idle.spin_iterations -= n;
    }
    int64_t deadline = timeout_ns == 0 ? NO_DEADLINE : shmx_deadline(timeout_ns);
    int first = 1;
    for (;;) {
        int whole = 0;
        if (deadline != NO_DEADLINE) {
            int64_t now = shmx_now_ns();
            if (now < deadline) {
                int idled;
                int rc = shmx_ring_wait_data(&ch->rx, slice_end(now, deadline, RING_SLICE_NS, &whole), &idle, &idled);
                if (first) adapt_spin(x, idled, rc == 0);
                first = 0;
                idle = later_slices(&ch->idle);
            }
        }
        int rc = shmx_ring_peek(&ch->rx, rec);
        if (rc != -SHMX_EEMPTY) return rc;
        /* A whole slice passed, or many short waits did: has the peer hung up? */
        if (whole || (++x->empty_polls & (EMPTY_POLLS_PER_CHECK - 1u)) == 0) {
            if (shmx_sock_hung_up(ch->sock)) {
                /* Records published just before the hang-up may have landed after our peek. */
                rc = shmx_ring_peek(&ch->rx, rec);
                return rc == -SHMX_EEMPTY ? shmx_shm_end_code(ch) : rc;
            }
        }
        if (!whole) return -SHMX_EEMPTY;
    }
}

/*
 * The next record, waiting for it within the timeout (see shm_wait_record).
 * Once the peer ended (shmx_shm_ended), nothing more is delivered.
 */
static inline __attribute__((always_inline)) int shm_next_record(shm_channel_t *x, shmx_ring_record_t *rec,
                                                                  int64_t timeout_ns) {
    int end = shmx_shm_ended(&x->ch);
    if (__builtin_expect(end != 0, 0)) return end;
    int rc = shmx_ring_peek(&x->ch.rx, rec);
    if (rc == -SHMX_EEMPTY) rc = shm_wait_record(x, rec, timeout_ns);
    return __builtin_expect(rc == 0, 1) ? 0 : shm_record_failed(&x->ch, rc);
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
    /* Taken, not only resolved: on the host the ledger refuses a slot it holds or sent elsewhere. */
    int rc = shmx_pool_take(ch->pool, &ref, ch->self_owner, &slot, &size);
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
        if (defer) {
            /* The next call reports it (and quarantines): it must find the slot untaken. */
            shmx_pool_untake(ch->pool, &loc.ref, ch->self_owner);
            return shm_unpeek(ch, &rec), rc;
        }
        shm_drop_record(x, &rec, &loc);
        return shmx_shm_violation(ch, rc);
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
    held_t *h = &x->held[(x->held_first + x->held_count) & x->fifo_mask];
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
    x->held_first = (x->held_first + 1u) & x->fifo_mask;
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
            shmx_pool_untake(ch->pool, &loc.ref, ch->self_owner); /* taken again by the next receive */
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
    if (rc != 0) return shmx_shm_violation(ch, rc);
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

uint32_t shmx_channel_epoch(const shmx_channel_t *ch) { return ch->epoch; }

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
        if (i < 0) return -SHMX_EINVAL;
        if (i > 0) return shmx_pool_region(ch->pool, i - 1, base, len); /* the extents mapped so far */
        *base = ch->seg->base; /* every ring and the segment's own slots */
        *len = (size_t)ch->seg->size;
        return 0;
    }
    if (i != 0 && i != 1) return -SHMX_EINVAL;
    *base = i == 0 ? ch->uds_rx : ch->uds_tx;
    *len = ch->uds_buf_len;
    return 0;
}
