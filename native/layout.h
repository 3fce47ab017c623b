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
 *
 * When the pool grows, each extent is a separate sealed memfd holding more
 * slots of one class:
 *
 *   [ slot metadata (count x 64, page-rounded) ][ slot data (count x class size, page-rounded) ]
 *
 * Its slots continue the class's indexes after the segment's own slots and
 * every earlier extent of that class (shmx_extent_layout()).
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
#define SHMX_LAYOUT_VERSION 3u /* 2: 128-byte config, extent table; 3: the doorbell's armed word in ring control */
#define SHMX_HEADER_BYTES 4096u
#define SHMX_READY_MAGIC 0x52454459u /* "READ": header fully written */

/* A futex wait point: waiters announce themselves, notifiers bump seq. */
typedef struct shmx_waitpoint {
    _Atomic uint32_t seq;     /* the futex word; bumped by a notifier that saw waiters */
    _Atomic uint32_t waiters; /* number of threads about to sleep or sleeping on seq */
} shmx_waitpoint_t;
_Static_assert(sizeof(shmx_waitpoint_t) == 8, "waitpoint size");

/*
 * Most extents a host creates (over all classes). The header lists each one;
 * a class's slot indexes must stay below SHMX_POOL_MAX_INDEX so that
 * index + 1 fits a free-list head's 32 bits.
 */
#define SHMX_MAX_EXTENTS 64u
#define SHMX_POOL_MAX_INDEX (1u << 30)

/* One extent as the header announces it (diagnostics, and a hint to guests). */
typedef struct shmx_extent_entry {
    uint32_t cls;         /* size class of every slot in it */
    uint32_t first_index; /* index of its first slot within the class */
    uint32_t slot_count;  /* slots in it */
    uint32_t reserved;    /* 0 */
    uint64_t bytes;       /* size of its memfd */
} shmx_extent_entry_t;
_Static_assert(sizeof(shmx_extent_entry_t) == 24, "extent entry size");
_Static_assert(offsetof(shmx_extent_entry_t, first_index) == 4, "extent first index offset");
_Static_assert(offsetof(shmx_extent_entry_t, slot_count) == 8, "extent slot count offset");
_Static_assert(offsetof(shmx_extent_entry_t, bytes) == 16, "extent bytes offset");

/*
 * The segment header. Everything up to extent_count is written by the host
 * before `ready` and read-only after. The extent table grows while the host
 * runs: an entry is written before extent_count is raised past it (release).
 * Guests treat both as hints, never as truth (any guest can write them).
 */
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
    _Atomic uint32_t extent_count; /* entries of `extents` in use; raised with release by the host */
    uint32_t reserved1;
    shmx_extent_entry_t extents[SHMX_MAX_EXTENTS]; /* in creation order */
} shmx_segment_header_t;
_Static_assert(offsetof(shmx_segment_header_t, magic) == 0, "magic offset");
_Static_assert(offsetof(shmx_segment_header_t, layout_version) == 8, "version offset");
_Static_assert(offsetof(shmx_segment_header_t, total_bytes) == 16, "total offset");
_Static_assert(offsetof(shmx_segment_header_t, ready) == 24, "ready offset");
_Static_assert(offsetof(shmx_segment_header_t, config) == 32, "config offset");
_Static_assert(sizeof(shmx_config_t) == 128, "config size");
_Static_assert(offsetof(shmx_config_t, max_message) == 104, "config max_message offset");
_Static_assert(offsetof(shmx_config_t, pool_max_bytes) == 120, "config pool_max_bytes offset");
_Static_assert(offsetof(shmx_segment_header_t, channels_offset) == 160, "channels offset");
_Static_assert(offsetof(shmx_segment_header_t, pool_offset) == 176, "pool offset");
_Static_assert(offsetof(shmx_segment_header_t, class_meta_offset) == 184, "class meta offsets");
_Static_assert(offsetof(shmx_segment_header_t, class_data_offset) == 248, "class data offsets");
_Static_assert(offsetof(shmx_segment_header_t, extent_count) == 312, "extent count offset");
_Static_assert(offsetof(shmx_segment_header_t, extents) == 320, "extent table offset");
_Static_assert(sizeof(shmx_segment_header_t) == 320 + 24 * SHMX_MAX_EXTENTS, "header size");
_Static_assert(sizeof(shmx_segment_header_t) <= SHMX_HEADER_BYTES, "header fits its page");

/*
 * Ring control: one cache line per writer so the producer and the consumer
 * never write the same line.
 */
typedef struct shmx_ring_ctl {
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t tail; /* producer: position after the last published record */
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t head; /* consumer: position up to which space is released */
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t data; /* consumer sleeps here waiting for records */
    /* Consumer sets 1 before it sleeps on its doorbell (not the futex); the producer, which
     * already reads this line after each commit, swaps it back to 0 and rings. */
    _Atomic uint32_t armed;
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t space; /* producer sleeps here waiting for space */
    alignas(SHMX_CACHE_LINE) _Atomic uint32_t closed; /* nonzero once either side closed the channel */
} shmx_ring_ctl_t;
_Static_assert(offsetof(shmx_ring_ctl_t, tail) == 0, "tail offset");
_Static_assert(offsetof(shmx_ring_ctl_t, head) == 64, "head offset");
_Static_assert(offsetof(shmx_ring_ctl_t, data) == 128, "data waitpoint offset");
_Static_assert(offsetof(shmx_ring_ctl_t, armed) == 136, "doorbell armed word: in the data waitpoint's line");
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
    _Atomic uint32_t state; /* enum shmx_channel_state, written by the host */
    _Atomic uint32_t epoch; /* bumped each time the entry is given to a new guest */
    _Atomic uint32_t bye;   /* set by the guest when it closes (so the host can tell a close from a death) */
    uint32_t reserved[13];
} shmx_channel_ctl_t;
_Static_assert(sizeof(shmx_channel_ctl_t) == 64, "channel control size");
_Static_assert(offsetof(shmx_channel_ctl_t, bye) == 8, "channel bye offset");

/* EXPELLED tells a guest that resumes after the host gave up on it why its calls fail. */
enum shmx_channel_state { SHMX_CHANNEL_FREE = 0, SHMX_CHANNEL_ACTIVE = 1, SHMX_CHANNEL_EXPELLED = 2 };

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

/*
 * Pool control: SHMX_POOL_SHARDS free lists per class and one wait point for
 * "a slot was freed". A class's slots are spread over its shards' lists; a
 * thread frees onto the shard of the CPU it runs on and allocates from that
 * shard first, so threads on different CPUs seldom touch the same head.
 */
#define SHMX_POOL_SHARDS 4u
_Static_assert((SHMX_POOL_SHARDS & (SHMX_POOL_SHARDS - 1u)) == 0, "shards are a power of two");
typedef struct shmx_pool_ctl {
    /* [c][s][0] used; each head padded to its own line */
    alignas(SHMX_CACHE_LINE) _Atomic uint64_t free_head[SHMX_MAX_CLASSES][SHMX_POOL_SHARDS][8];
    alignas(SHMX_CACHE_LINE) shmx_waitpoint_t freed;
} shmx_pool_ctl_t;
_Static_assert(sizeof(((shmx_pool_ctl_t *)0)->free_head[0][0]) == SHMX_CACHE_LINE, "one head per line");
_Static_assert(offsetof(shmx_pool_ctl_t, freed) == SHMX_MAX_CLASSES * SHMX_POOL_SHARDS * SHMX_CACHE_LINE,
               "wait point after the heads");

/*
 * Free-list head: low 32 bits are (slot index + 1), 0 meaning empty; high 32
 * bits are a tag bumped on every successful update against ABA.
 */
#define SHMX_FREE_TAG_BITS 32u
_Static_assert(SHMX_FREE_TAG_BITS >= 32u, "ABA tag must have at least 32 bits");

/*
 * Per-slot metadata, one cache line per slot: threads on different CPUs
 * working on neighbouring slots never write the same line (16 bytes per slot
 * made two threads' alloc+free three times slower, see shmx-pool-bench).
 */
typedef struct shmx_slot_meta {
    _Atomic uint32_t next;       /* free-list link: next slot index + 1, 0 for none */
    _Atomic uint32_t generation; /* bumped on every free */
    _Atomic uint32_t state;      /* enum shmx_slot_state */
    _Atomic uint32_t owner;      /* peer responsible for freeing it: SHMX_OWNER_HOST or channel index */
    uint32_t reserved[12];       /* 0 */
} shmx_slot_meta_t;
_Static_assert(sizeof(shmx_slot_meta_t) == SHMX_CACHE_LINE, "slot meta size: one line");
_Static_assert(offsetof(shmx_slot_meta_t, generation) == 4, "slot generation offset");
_Static_assert(offsetof(shmx_slot_meta_t, state) == 8, "slot state offset");
_Static_assert(offsetof(shmx_slot_meta_t, owner) == 12, "slot owner offset");

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

/* shmx_pool_slot_bytes - slot bytes of the segment's own pool (sum of class_slots x class_size) of a validated @cfg. */
uint64_t shmx_pool_slot_bytes(const shmx_config_t *cfg);

/* Where an extent's parts lie within its memfd. */
typedef struct shmx_extent_layout {
    uint64_t data_offset; /* slot data, after the page-rounded metadata */
    uint64_t total_bytes; /* the memfd's size */
} shmx_extent_layout_t;

/*
 * shmx_extent_slots - slots one extent of a class of @slot_size bytes holds
 * under @cfg: max(1, extent_bytes / slot_size).
 */
uint32_t shmx_extent_slots(const shmx_config_t *cfg, uint32_t slot_size);

/*
 * shmx_extent_layout - the layout of an extent of @count slots of
 * @slot_size bytes. Returns 0, or -SHMX_EINVAL if @count is 0 or the
 * sizes overflow.
 */
int shmx_extent_layout(uint32_t slot_size, uint32_t count, shmx_extent_layout_t *out);

static inline uint32_t shmx_align8(uint32_t n) { return (n + 7u) & ~7u; }

#endif
