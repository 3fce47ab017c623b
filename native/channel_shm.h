/*
 * The shared-memory transport's channel object, shared by channel.c (the
 * public API, opening, receiving) and channel_send.c (claiming, flow
 * control, committing). Private to the library.
 */
#ifndef SHMX_CHANNEL_SHM_H
#define SHMX_CHANNEL_SHM_H

#include <stdint.h>

#include "channel_internal.h"
#include "shmx/frame.h"

#define HDR SHMX_FRAME_HEADER_SIZE
#define SLOT_BODY (HDR + (uint32_t)sizeof(shmx_slot_ref_t)) /* body of a SLOT record */
#define NO_SLOT UINT32_MAX

/* Longest sleep between two looks at the bootstrap socket while waiting on a ring:
 * a guest whose host dies notices within it (the target is 100 ms). */
#define RING_SLICE_NS 20000000LL
/* A guest looks at its bootstrap socket every this many claims (power of two): sends into
 * the rings of a host that died fail soon even when no wait ever happens. */
#define CLAIMS_PER_CHECK 64u
/* A pool wait is not woken by close: look at the closed flag (and the socket) this often. */
#define POOL_SLICE_NS 10000000LL
/* Marks a deadline not computed yet (a wait that never happens never reads the clock). */
#define NO_DEADLINE INT64_MIN

/* A received record the receiver still holds, in receive order. */
typedef struct held {
    uint64_t end;        /* the record's end: the message's end_ */
    uint64_t release_to; /* ring position to release up to (covers records dropped behind it) */
    shmx_slot_ref_t ref; /* cls NO_SLOT: inline */
} held_t;

/* A slot record this side sent that the receiver may not have released yet. */
typedef struct in_flight {
    uint64_t end;   /* the record's end in our tx ring: released once the receiver's head passes it */
    uint32_t bytes; /* size of its slot */
} in_flight_t;

/*
 * A shm channel: the contract's struct first (so the pointer is the same, and
 * shmx_channel_destroy frees either transport with one free()), then the
 * receiver's held FIFO and the sender's in-flight FIFO, both in the same
 * allocation. Every real (decodable) record is at least align8(8 + 24) = 32
 * bytes and held or in-flight records never span more than the ring, so
 * ring_bytes / 32 entries always suffice for each.
 */
typedef struct shm_channel {
    struct shmx_channel ch;
    uint32_t fifo_mask;   /* capacity - 1 of both FIFOs (a power of two) */
    uint32_t held_first;  /* index of the oldest held entry */
    uint32_t held_count;
    uint32_t empty_polls; /* short receives that found nothing (see EMPTY_POLLS_PER_CHECK) */
    uint32_t spin_cut;    /* adaptive spinning: a receive spins idle.spin_iterations >> spin_cut (channel.c) */
    uint32_t spin_waits;  /* receive waits made with a cut budget (every SPIN_PROBE_EVERY-th probes the full one) */
    uint32_t claims;      /* claims so far (a guest's see CLAIMS_PER_CHECK) */
    uint32_t window;      /* flow control: slot bytes this side may have in flight */
    uint32_t flight_first;
    uint32_t flight_count;
    uint64_t flight_bytes; /* sum of the in-flight entries' bytes */
    in_flight_t *flight;   /* points behind held[] */
    held_t held[];
} shm_channel_t;

static inline shm_channel_t *shm_of(shmx_channel_t *ch) { return (shm_channel_t *)ch; }

/*
 * What a call reports once the channel is closed or the peer is gone: on the
 * host always -SHMX_ECLOSED; on a guest -SHMX_ECLOSED if either side closed
 * the channel, -SHMX_EEXPELLED if the host expelled this incarnation, and
 * -SHMX_EHOSTGONE if the host hung up (died or was destroyed) without closing.
 */
int shmx_shm_end_code(shmx_channel_t *ch);

/*
 * A call of the host's met @rc on this channel: if it is a protocol violation
 * by the guest (-SHMX_ECORRUPT from its ring, -SHMX_EBADSLOT from a slot
 * reference it sent), quarantine the guest (host.c). Returns @rc.
 */
int shmx_shm_violation(shmx_channel_t *ch, int rc);

/*
 * The code every call fails with once the peer ended, else 0, from peer_end:
 * a guest's memory of its host gone, or the host's own record that it
 * expelled this guest (-SHMX_ECLOSED, set by host_service.c: the host never
 * reads the shared state word back). A guest also looks at its entry's state
 * (one load of a line that rarely changes): EXPELLED gives -SHMX_EEXPELLED.
 */
static inline __attribute__((always_inline)) int shmx_shm_ended(shmx_channel_t *ch) {
    /* Relaxed: one-way announcements; records and slots read before them are fine. */
    int end = __atomic_load_n(&ch->peer_end, __ATOMIC_RELAXED);
    if (__builtin_expect(end != 0, 0)) return end;
    if (__builtin_expect(!ch->is_host && atomic_load_explicit(&ch->ctl->state, memory_order_relaxed) ==
                                             SHMX_CHANNEL_EXPELLED, 0))
        return shmx_shm_end_code(ch);
    return 0;
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

#endif
