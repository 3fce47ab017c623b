/*
 * The shared segment's layout: every structure that lives in shared memory.
 * Private to the library. Shared structures hold no pointers, only offsets
 * from the segment base, and their layout is checked at compile time.
 *
 *   [ segment header (4 KiB) ]
 *   [ channel 0 | channel 1 | ... ]   each: channel control, 2 ring controls, 2 ring data areas
 *   [ pool control ][ class 0 slot metadata ][ class 0 slot data ] ... per class
 *
 * Offsets are computed by shmx_layout_compute() (config.c) from the
 * configuration alone, so a guest recomputes them and checks them against
 * the header instead of trusting the header's numbers.
 */
#ifndef SHMX_LAYOUT_H
#define SHMX_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shmx/config.h"

#define SHMX_CACHE_LINE 64u
#define SHMX_SEGMENT_MAGIC 0x31474553584D4853ull /* "SHMXSEG1" little-endian */
#define SHMX_LAYOUT_VERSION 1u
#define SHMX_HEADER_BYTES 4096u
#define SHMX_READY_MAGIC 0x52454459u /* "READ": header fully written */

/* A futex wait point: waiters announce themselves, notifiers bump seq. */
typedef struct shmx_waitpoint {
    _Atomic uint32_t seq;     /* the futex word; bumped by a notifier that saw waiters */
    _Atomic uint32_t waiters; /* number of threads about to sleep or sleeping on seq */
} shmx_waitpoint_t;
_Static_assert(sizeof(shmx_waitpoint_t) == 8, "waitpoint size");

/* The segment header. Written by the host before `ready`, read-only after. */
typedef struct shmx_segment_header {
    uint64_t magic;          /* SHMX_SEGMENT_MAGIC */
    uint32_t layout_version; /* SHMX_LAYOUT_VERSION */
    uint32_t header_bytes;   /* SHMX_HEADER_BYTES */
    uint64_t total_bytes;    /* size of the whole segment */
    _Atomic uint32_t ready;  /* SHMX_READY_MAGIC, stored last with release; attach loads it with acquire */
    uint32_t reserved0;
    shmx_config_t config;    /* the whole configuration */
    uint64_t channels_offset;
    uint64_t channel_stride;
    uint64_t pool_offset;
    uint64_t class_meta_offset[SHMX_MAX_CLASSES];
    uint64_t class_data_offset[SHMX_MAX_CLASSES];
} shmx_segment_header_t;
_Static_assert(offsetof(shmx_segment_header_t, magic) == 0, "magic offset");
_Static_assert(offsetof(shmx_segment_header_t, layout_version) == 8, "version offset");
_Static_assert(offsetof(shmx_segment_header_t, total_bytes) == 16, "total offset");
_Static_assert(offsetof(shmx_segment_header_t, ready) == 24, "ready offset");
_Static_assert(offsetof(shmx_segment_header_t, config) == 32, "config offset");
_Static_assert(sizeof(shmx_config_t) == 104, "config size");
_Static_assert(offsetof(shmx_segment_header_t, channels_offset) == 136, "channels offset");
_Static_assert(sizeof(shmx_segment_header_t) <= SHMX_HEADER_BYTES, "header fits its page");

/*
 * Ring control: one cache line per writer so the producer and the consumer
 * never write the same line.
 */
typedef struct shmx_ring_ctl {
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t tail; /* producer: position after the last published record */
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t head; /* consumer: position up to which space is released */
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t data; /* consumer sleeps here waiting for records */
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t space; /* producer sleeps here waiting for space */
    alignas(SHMX_CACHE_LINE) _Atomic uint32_t closed; /* nonzero once either side closed the channel */
} shmx_ring_ctl_t;
_Static_assert(offsetof(shmx_ring_ctl_t, tail) == 0, "tail offset");
_Static_assert(offsetof(shmx_ring_ctl_t, head) == 64, "head offset");
_Static_assert(offsetof(shmx_ring_ctl_t, data) == 128, "data waitpoint offset");
_Static_assert(offsetof(shmx_ring_ctl_t, space) == 192, "space waitpoint offset");
_Static_assert(offsetof(shmx_ring_ctl_t, closed) == 256, "closed offset");
_Static_assert(sizeof(shmx_ring_ctl_t) == 320, "ring control size");

/* Ring record header (8 bytes, records are 8-byte aligned). */
typedef struct shmx_record_header {
    uint32_t body_len; /* bytes after this header (the record occupies align8(8 + body_len)) */
    uint16_t kind;     /* enum shmx_record_kind */
    uint16_t reserved; /* 0 */
} shmx_record_header_t;
_Static_assert(sizeof(shmx_record_header_t) == 8, "record header size");

enum shmx_record_kind {
    SHMX_RECORD_PAD = 1,    /* filler up to the end of the ring; skip it */
    SHMX_RECORD_INLINE = 2, /* body: a whole frame (24-byte header then payload) */
    SHMX_RECORD_SLOT = 3    /* body: a 24-byte frame header then a shmx_slot_ref_t; payload in the slot */
};

/* Reference to a pool slot, as stored in a ring record. */
typedef struct shmx_slot_ref {
    uint32_t cls;        /* size class */
    uint32_t index;      /* slot number within the class */
    uint32_t generation; /* the slot's generation when it was allocated */
    uint32_t reserved;   /* 0 */
} shmx_slot_ref_t;
_Static_assert(sizeof(shmx_slot_ref_t) == 16, "slot ref size");

/* Channel control: one per channel entry. */
typedef struct shmx_channel_ctl {
    _Atomic uint32_t state; /* enum shmx_channel_state */
    _Atomic uint32_t epoch; /* bumped each time the entry is given to a new guest */
    uint32_t reserved[14];
} shmx_channel_ctl_t;
_Static_assert(sizeof(shmx_channel_ctl_t) == 64, "channel control size");

enum shmx_channel_state { SHMX_CHANNEL_FREE = 0, SHMX_CHANNEL_ACTIVE = 1 };

/*
 * One channel entry: control, then the two ring controls, then the ring data
 * areas (ring_bytes each), so stride = 64 + 2*320 + 2*ring_bytes (rounded to
 * 4 KiB). Ring 0 carries host to guest, ring 1 guest to host.
 */
#define SHMX_RING_HOST_TO_GUEST 0
#define SHMX_RING_GUEST_TO_HOST 1
#define SHMX_CHANNEL_RING_CTL_OFFSET(r) (sizeof(shmx_channel_ctl_t) + (uint64_t)(r) * sizeof(shmx_ring_ctl_t))
#define SHMX_CHANNEL_RING_DATA_OFFSET(r, ring_bytes) \
    (4096u + (uint64_t)(r) * (uint64_t)(ring_bytes))

/* Pool control: a free-list head per class and one wait point for "a slot was freed". */
typedef struct shmx_pool_ctl {
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t free_head[SHMX_MAX_CLASSES][8]; /* [c][0] used; padded to a line each */
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t freed;
} shmx_pool_ctl_t;
_Static_assert(sizeof(((shmx_pool_ctl_t *)0)->free_head[0]) == SHMX_CACHE_LINE, "one head per line");

/*
 * Free-list head: low 32 bits are (slot index + 1), 0 meaning empty; high 32
 * bits are a tag bumped on every successful update against ABA.
 */
#define SHMX_FREE_TAG_BITS 32u
_Static_assert(SHMX_FREE_TAG_BITS >= 32u, "ABA tag must have at least 32 bits");

/* Per-slot metadata (16 bytes per slot). */
typedef struct shmx_slot_meta {
    _Atomic uint32_t next;       /* free-list link: next slot index + 1, 0 for none */
    _Atomic uint32_t generation; /* bumped on every free */
    _Atomic uint32_t state;      /* enum shmx_slot_state */
    _Atomic uint32_t owner;      /* peer responsible for freeing it: SHMX_OWNER_HOST or channel index */
} shmx_slot_meta_t;
_Static_assert(sizeof(shmx_slot_meta_t) == 16, "slot meta size");

enum shmx_slot_state {
    SHMX_SLOT_FREE = 0,
    SHMX_SLOT_CLAIMED = 1, /* allocated by a sender, being written */
    SHMX_SLOT_SENT = 2     /* published; owned by the receiver until it releases */
};

#define SHMX_OWNER_HOST 0xFFFFFFFFu /* guests are identified by their channel index */
#define SHMX_OWNER_NONE 0xFFFFFFFEu

/* Offsets computed from a configuration (host-private truth). */
typedef struct shmx_layout {
    uint64_t total_bytes;
    uint64_t channels_offset;
    uint64_t channel_stride;
    uint64_t pool_offset;
    uint64_t class_meta_offset[SHMX_MAX_CLASSES];
    uint64_t class_data_offset[SHMX_MAX_CLASSES];
} shmx_layout_t;

/*
 * shmx_layout_compute - validate @cfg and compute where everything lives.
 * Returns 0 or -SHMX_ECONFIG (see shmx_config_problem()).
 */
int shmx_layout_compute(const shmx_config_t *cfg, shmx_layout_t *out);

static inline uint32_t shmx_align8(uint32_t n) { return (n + 7u) & ~7u; }

#endif
