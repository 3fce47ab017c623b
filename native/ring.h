/*
 * Single-producer single-consumer ring of variable-length records over a
 * shared control block (shmx_ring_ctl_t) and a data area of a power-of-two
 * size. Positions are 64-bit and monotonic; records are 8-byte aligned; a
 * record that would cross the end is preceded by a padding record.
 *
 * Each side keeps its own truth in this private struct: the producer its tail
 * and a cached head, the consumer its head and read position. The consumer
 * polls the next record's header (nonzero: published) rather than the
 * producer's tail; the data area reads zero wherever nothing is published.
 * Shared values are loaded once and validated (0 <= tail - head <= capacity
 * for the producer; for the consumer a record within the data area and within
 * head + capacity, no record crossing the end) before use.
 */
#ifndef SHMX_RING_H
#define SHMX_RING_H

#include <stdint.h>

#include "layout.h"
#include "wait.h"

typedef struct shmx_ring {
    shmx_ring_ctl_t *ctl;
    uint8_t *data;
    uint32_t capacity; /* bytes, power of two */
    uint32_t mask;
    /* producer side (private) */
    uint64_t tail;        /* next position to write; published with release at commit */
    uint64_t head_cache;  /* last head seen; refreshed only when space looks short */
    uint64_t claim_pos;   /* position of the open claim's record header */
    uint32_t claim_total; /* bytes the open claim occupies, padding before it included; 0: none */
    uint64_t claim_header; /* the open claim's record header, stored (release) at commit */
    /* consumer side (private) */
    uint64_t head;        /* released up to here (mirrors ctl->head) */
    uint64_t read;        /* next record to read (>= head: records between are held) */
    /* doorbell of this ring's consumer (our end of its socketpair; -1: none): the producer rings it after a
     * commit, and either side on close, when the consumer armed (ctl->armed) */
    int bell_fd;
} shmx_ring_t;

/* A record returned by shmx_ring_peek (already validated). */
typedef struct shmx_ring_record {
    uint16_t kind;     /* SHMX_RECORD_INLINE or SHMX_RECORD_SLOT (padding is skipped) */
    uint32_t body_len; /* bytes of body */
    const uint8_t *body;
    uint64_t end;      /* position just past the record: pass to shmx_ring_release */
} shmx_ring_record_t;

/*
 * shmx_ring_format - reset a ring to empty and open (host, before any peer
 * uses it): control words to zero and the @capacity bytes of @data zeroed.
 */
void shmx_ring_format(shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity);

/*
 * shmx_ring_attach - set up a private view of a ring; reads the current shared
 * positions once (both sides start from the published tail/head). No bell
 * (bell_fd -1) until the caller sets one.
 * @capacity must be a power of two >= 64 and @data 8-byte aligned, else
 * -SHMX_EINVAL. Returns 0 or -SHMX_ECORRUPT.
 */
int shmx_ring_attach(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity);

/*
 * shmx_ring_attach_formatted - as shmx_ring_attach, for the side that has
 * just formatted the ring (the host): both positions start at 0, its own
 * truth, and nothing is read from the shared control (a peer may already
 * have scribbled on it). Returns 0 or -SHMX_EINVAL (as shmx_ring_attach).
 */
int shmx_ring_attach_formatted(shmx_ring_t *r, shmx_ring_ctl_t *ctl, uint8_t *data, uint32_t capacity);

/* Largest body a record may have in a ring of this capacity. */
uint32_t shmx_ring_max_body(const shmx_ring_t *r);

/*
 * Producer: shmx_ring_claim - reserve a record of @body_len bytes and kind
 * @kind without waiting. Sets *@body to the body area (8-byte aligned,
 * contiguous). Returns 0, -SHMX_EWOULDBLOCK (not enough space now),
 * -SHMX_ETOOBIG (can never fit), -SHMX_ESTATE (a claim is open), -SHMX_EINVAL
 * (kind is not INLINE or SLOT),
 * -SHMX_ECLOSED, -SHMX_ECORRUPT (the consumer's head is out of range).
 */
int shmx_ring_claim(shmx_ring_t *r, uint32_t body_len, uint16_t kind, void **body);

/*
 * Producer: publish the open claim (tail store with release, then notify, then
 * ring the bell if the consumer armed it). Returns 0 or -SHMX_ESTATE.
 */
int shmx_ring_commit(shmx_ring_t *r);

/* Producer: drop the open claim. Returns 0 or -SHMX_ESTATE. */
int shmx_ring_abort(shmx_ring_t *r);

/*
 * Producer: shmx_ring_shrink - cut the open claim's body to @body_len bytes
 * (no more than claimed; what the caller wrote past it is zeroed), so a
 * record can be claimed for the most it may hold and committed with what it
 * got. Returns 0, -SHMX_ESTATE (no open claim), -SHMX_EINVAL (longer).
 */
int shmx_ring_shrink(shmx_ring_t *r, uint32_t body_len);
/*
 * Producer: shmx_ring_released - the consumer's released position (its head),
 * loaded once and checked against our tail. Returns 0 or -SHMX_ECORRUPT.
 */
int shmx_ring_released(shmx_ring_t *r, uint64_t *head);
/*
 * Producer: wait until the consumer has released everything before @pos (a
 * position this side published). Returns 0, -ETIMEDOUT, -SHMX_ECLOSED,
 * -SHMX_ECORRUPT, -SHMX_EINVAL (@pos beyond the tail).
 */
int shmx_ring_wait_released(shmx_ring_t *r, uint64_t pos, int64_t deadline_ns, const shmx_idle_t *idle);
/*
 * Producer: wait until a record of @body_len bytes fits (or the ring closes).
 * Returns 0, -ETIMEDOUT, -SHMX_ECLOSED, -SHMX_ETOOBIG, -SHMX_ECORRUPT.
 */
int shmx_ring_wait_space(shmx_ring_t *r, uint32_t body_len, int64_t deadline_ns, const shmx_idle_t *idle);

/*
 * Consumer: shmx_ring_peek - the next unread record, validated, without
 * releasing it (the read position advances; the space stays held).
 * Returns 0, -SHMX_EEMPTY, -SHMX_ECLOSED (closed and nothing left), or
 * -SHMX_ECORRUPT (positions or record fields out of range; a PAD record is
 * only valid followed by the record it makes room for, which the producer
 * publishes in the same commit).
 */
int shmx_ring_peek(shmx_ring_t *r, shmx_ring_record_t *out);

/*
 * Consumer: release space up to @end (a record's end): zeroes it, stores head
 * with release and wakes a producer waiting for space. @end must lie in
 * (head, read]; release is cumulative (everything before @end goes too), so
 * callers that need one-by-one order enforce it. Returns 0 or -SHMX_EORDER.
 */
int shmx_ring_release(shmx_ring_t *r, uint64_t end);

/*
 * Consumer: wait until a record is readable or the ring closes. Returns 0 or
 * -ETIMEDOUT; *@idled as in shmx_wait_until_ex (@idled may be NULL).
 */
int shmx_ring_wait_data(shmx_ring_t *r, int64_t deadline_ns, const shmx_idle_t *idle, int *idled);

/* Either side: mark closed and wake every waiter on both wait points. */
void shmx_ring_close(shmx_ring_ctl_t *ctl);

/*
 * Either side: shmx_ring_close, then ring @r's bell if its consumer armed it,
 * so a consumer sleeping in an event loop (shmx_channel_fd) wakes too.
 */
void shmx_ring_close_bell(shmx_ring_t *r);

/*
 * Consumer: shmx_ring_arm - announce that this side is about to sleep on its
 * bell (armed = 1, then a full fence), then look again. Returns 1 if a record
 * is readable or the ring is closed (armed is withdrawn: do not sleep), 0 if
 * the producer will ring the bell for the next commit or close.
 */
int shmx_ring_arm(shmx_ring_t *r);

/* Either side: nonzero once closed. */
int shmx_ring_is_closed(const shmx_ring_ctl_t *ctl);

#endif
