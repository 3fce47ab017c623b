/*
 * The sending half of the shared-memory transport: claim (ring space, the
 * flow-control window, a pool slot), commit, abort, and the one-call send.
 *
 * Flow control: every slot record this side publishes goes on a private
 * in-flight FIFO with its end position and slot size; the receiver's head
 * passing an end means it released that slot. A claim that would put more
 * than window_bytes of slots in flight waits for the receiver first, so a
 * slow consumer holds at most its window of the shared pool.
 */
#include <errno.h>
#include <string.h>

#include "channel_shm.h"
#include "shmx/errors.h"

/* The slow path of shm_claim_record: wait for space in slices. */
static int shm_wait_record_space(shmx_channel_t *ch, uint32_t body_len, uint16_t kind, int64_t timeout_ns,
                                 int64_t *deadline, void **body) {
    int rc;
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
        if (whole && shmx_sock_hung_up(ch->sock)) return shmx_shm_end_code(ch);
        idle = later_slices(&ch->idle);
    }
}

/*
 * Claim a ring record, waiting for space until the deadline (*@deadline
 * computed on first need). The ring's head is the receiver's: one that fails
 * validation is the receiver's violation.
 */
static int shm_claim_record(shmx_channel_t *ch, uint32_t body_len, uint16_t kind, int64_t timeout_ns,
                            int64_t *deadline, void **body) {
    int rc = shmx_ring_claim(&ch->tx, body_len, kind, body);
    if (__builtin_expect(rc == 0, 1)) return 0;
    if (rc == -SHMX_EWOULDBLOCK && timeout_ns != 0)
        rc = shm_wait_record_space(ch, body_len, kind, timeout_ns, deadline, body);
    return rc == -SHMX_ECORRUPT ? shmx_shm_violation(ch, rc) : rc;
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
        if (shmx_sock_hung_up(ch->sock)) return shmx_shm_end_code(ch);
        idle = later_slices(&ch->idle);
    }
}

/* Forget the in-flight slots the receiver has released (its head passed their records). */
static int shm_retire_in_flight(shm_channel_t *x) {
    if (x->flight_count == 0) return 0;
    uint64_t head;
    int rc = shmx_ring_released(&x->ch.tx, &head);
    if (rc != 0) return rc;
    while (x->flight_count != 0) {
        const in_flight_t *f = &x->flight[x->flight_first];
        if (head - f->end >= (1ull << 63)) break; /* head < end: still held */
        x->flight_bytes -= f->bytes;
        x->flight_first = (x->flight_first + 1u) & x->fifo_mask;
        x->flight_count--;
    }
    return 0;
}

/*
 * Flow control: wait until another @len bytes of slots fit in the window,
 * i.e. until the receiver has released enough of what we sent. A lone slot
 * always fits (the window holds at least the largest class), so a sender
 * never waits for itself.
 */
static int shm_window_wait(shm_channel_t *x, uint32_t len, int64_t deadline) {
    shmx_channel_t *ch = &x->ch;
    int rc = shm_retire_in_flight(x);
    shmx_idle_t idle = ch->idle;
    while (rc == 0 && x->flight_count != 0 && x->flight_bytes + len > x->window) {
        int64_t now = shmx_now_ns();
        if (now >= deadline) return -SHMX_EWOULDBLOCK;
        int whole;
        int64_t end = slice_end(now, deadline, RING_SLICE_NS, &whole);
        rc = shmx_ring_wait_released(&ch->tx, x->flight[x->flight_first].end, end, &idle);
        if (rc == -ETIMEDOUT) {
            /* A receiver that hung up never releases. */
            if (whole && shmx_sock_hung_up(ch->sock)) return shmx_shm_end_code(ch);
            rc = 0;
        }
        if (rc == 0) rc = shm_retire_in_flight(x);
        idle = later_slices(&ch->idle);
    }
    return rc == -SHMX_ECORRUPT ? shmx_shm_violation(ch, rc) : rc;
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
        int rc = shm_window_wait(shm_of(ch), len, deadline);
        if (rc != 0) return rc;
        shmx_slot_ref_t ref;
        rc = shm_alloc_slot(ch, len, deadline, &ref);
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
        ch->claim_slot_bytes = size;
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
    int end = shmx_shm_ended(ch);
    if (__builtin_expect(end != 0, 0)) return end;
    if (__builtin_expect((++shm_of(ch)->claims & (CLAIMS_PER_CHECK - 1u)) == 0, 0) && !ch->is_host &&
        shmx_sock_hung_up(ch->sock))
        return shmx_shm_end_code(ch);
    int rc = shm_claim(ch, len, timeout_ns, data);
    return rc == -SHMX_ECLOSED ? shmx_shm_end_code(ch) : rc;
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
        return rc == -SHMX_ECLOSED ? shmx_shm_end_code(ch) : rc;
    }
    if (ch->claim_in_slot) {
        rc = shmx_pool_send(ch->pool, &ch->claim_slot, ch->self_owner, ch->peer_owner);
        if (rc != 0) {
            /* Reclaimed under us (then this free fails and changes nothing), or a peer scribbled on
             * its metadata (the host's ledger still says it is ours: the free gives it back). */
            shm_drop_claim(ch);
            return rc;
        }
    }
    shmx_ring_commit(&ch->tx);
    ch->claim_open = 0;
    if (ch->claim_in_slot) {
        /* The receiver holds the slot until its head passes this record's end. */
        shm_channel_t *x = shm_of(ch);
        in_flight_t *f = &x->flight[(x->flight_first + x->flight_count) & x->fifo_mask];
        f->end = ch->tx.tail;
        f->bytes = ch->claim_slot_bytes;
        x->flight_count++;
        x->flight_bytes += f->bytes;
    }
    if (id == 0) ch->next_id++;
    return (int64_t)use;
}

int64_t shmx_channel_commit_len(shmx_channel_t *ch, uint32_t len, uint16_t type, uint8_t flags, uint64_t id) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (!ch->claim_open) return -SHMX_ESTATE;
    if (len > ch->claim_len) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_SHM && !ch->claim_in_slot && len != ch->claim_len) {
        int rc = shmx_ring_shrink(&ch->tx, HDR + len);
        if (rc != 0) return rc;
    }
    ch->claim_len = len;
    return shmx_channel_commit(ch, type, flags, id);
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
    if (ch != NULL && len > ch->max_payload) {
        /* Fragments carry their own MORE flags. */
        if (flags != 0) return -SHMX_EFLAGS;
        return shmx_message_send(ch, type, id, payload, len, timeout_ns);
    }
    void *dst;
    int rc = shmx_channel_claim(ch, len, timeout_ns, &dst);
    if (rc != 0) return rc;
    if (len != 0) memcpy(dst, payload, len);
    return shmx_channel_commit(ch, type, flags, id);
}
