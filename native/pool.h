/*
 * The slot pool: size classes of fixed-size slots in the shared segment,
 * each class a few lock-free Treiber stacks (one per shard, threads use the
 * shard of their CPU first) whose heads pack (index + 1) with a 32-bit ABA
 * tag. Every slot carries generation, state and owner, so stale or
 * forged references are rejected and a dead peer's slots can be found.
 *
 * Owners: SHMX_OWNER_HOST or a guest's channel index. The allocating peer
 * owns a slot while it writes it; publishing transfers it to the receiver,
 * which frees it on release.
 *
 * Extents: the pool grows by extents (separate sealed memfds, see extent.h),
 * each holding more slots of one class. A class's indexes run over its
 * segment slots first (0 .. slot_count - 1), then over each extent in turn,
 * so a slot reference (class, index, generation) looks the same wherever the
 * slot lives and the free lists link across extents. Only the host creates
 * extents; guests map them when they first meet one of their indexes. Each
 * process publishes the extents it has mapped in a private, append-only
 * table (an entry is written, then the count is raised with release), so
 * lookups on any thread stay lock-free. Extents live until the host is
 * destroyed: the pool never shrinks.
 *
 * Hooks (set by host.c and guest.c after shmx_pool_init; NULL in a bare pool,
 * which then never grows and knows only the segment's slots):
 * - grow: every fitting class was empty; called once per shmx_pool_alloc
 *   before it waits. The host grows the pool right there; a guest asks the
 *   host and then waits for the free as usual.
 * - map: a lookup met an index beyond what this process has mapped; map what
 *   the host has announced. Returns 0 if the slot is mapped now.
 */
#ifndef SHMX_POOL_H
#define SHMX_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "wait.h"

typedef void (*shmx_pool_grow_fn)(void *arg, uint32_t cls);
typedef int (*shmx_pool_map_fn)(void *arg, uint32_t cls, uint32_t index);

/* One extent's slots as this process has mapped them; never changed once published. */
typedef struct shmx_pool_chunk {
    shmx_slot_meta_t *meta;
    uint8_t *data;
    uint32_t first; /* index of its first slot within the class */
    uint32_t count;
} shmx_pool_chunk_t;

typedef struct shmx_pool_class {
    shmx_slot_meta_t *meta;       /* the segment's own slots */
    uint8_t *data;
    uint32_t slot_size;
    uint32_t slot_count;          /* the segment's own slots: indexes below this are never in an extent */
    uint32_t chunk_slots;         /* slots of a full extent of this class; only a class's last may hold fewer */
    _Atomic uint32_t chunk_count; /* entries of chunk[] published (release) */
    shmx_pool_chunk_t chunk[SHMX_MAX_EXTENTS];
} shmx_pool_class_t;

/* A mapping of this process that holds pool slots (for shmx_pool_region). */
typedef struct shmx_pool_region {
    uint8_t *base;
    size_t len;
} shmx_pool_region_t;

typedef struct shmx_pool {
    shmx_pool_ctl_t *ctl;
    uint32_t class_count;
    shmx_pool_class_t cls[SHMX_MAX_CLASSES];
    _Atomic uint32_t region_count; /* entries of region[] published (release) */
    shmx_pool_region_t region[SHMX_MAX_EXTENTS];
    shmx_pool_grow_fn grow;
    shmx_pool_map_fn map;
    void *hook_arg;
} shmx_pool_t;

typedef struct shmx_pool_stats {
    uint32_t class_count;
    uint32_t free_slots[SHMX_MAX_CLASSES];    /* reachable from the free list */
    uint32_t claimed_slots[SHMX_MAX_CLASSES]; /* state CLAIMED */
    uint32_t sent_slots[SHMX_MAX_CLASSES];    /* state SENT */
    uint32_t total_slots[SHMX_MAX_CLASSES];   /* the segment's and every extent this process mapped */
} shmx_pool_stats_t;

/*
 * shmx_pool_init - set up a private view of the pool of a mapped segment at
 * @base with layout @lay and config @cfg (both host-private or validated
 * copies), without extents or hooks. With @format nonzero (the host, before
 * the segment is ready) every slot is made free and pushed on its class's list.
 */
void shmx_pool_init(shmx_pool_t *p, uint8_t *base, const shmx_layout_t *lay, const shmx_config_t *cfg,
                    int format);

/*
 * shmx_pool_alloc - take a slot of at least @size bytes for @owner: the
 * smallest fitting class first, then larger ones; if all are empty, call the
 * grow hook (if any) for the smallest fitting class, then wait on the pool's
 * wait point until @deadline_ns for any free.
 * Returns 0 and fills @out, -SHMX_ETOOBIG (larger than every class),
 * -SHMX_EWOULDBLOCK (none free by the deadline), -SHMX_ECORRUPT (a free list
 * was found corrupted), -SHMX_EINVAL (@owner is SHMX_OWNER_NONE).
 */
int shmx_pool_alloc(shmx_pool_t *p, uint32_t size, uint32_t owner, int64_t deadline_ns,
                    const shmx_idle_t *idle, shmx_slot_ref_t *out);

/*
 * shmx_pool_resolve - validate @ref against the slot's metadata (range,
 * generation, state @state, owner @owner) and return its data address and
 * size. Returns 0 or -SHMX_EBADSLOT.
 */
int shmx_pool_resolve(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t state, uint32_t owner,
                      void **data, uint32_t *size);

/* shmx_pool_send - CLAIMED by @from -> SENT owned by @to (before publishing). Returns 0 or -SHMX_EBADSLOT. */
int shmx_pool_send(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t from, uint32_t to);

/*
 * shmx_pool_free - return a slot held by @owner (CLAIMED or SENT) to its free
 * list: generation bumped, state FREE, waiters notified.
 * Returns 0, -SHMX_EBADSLOT (wrong generation, owner or state; nothing changed)
 * or -SHMX_ECORRUPT (the list head kept changing under a peer's writes: the
 * slot is FREE but on no list; no host-side rebuild of the lists exists
 * yet, so it stays lost until the segment is recreated).
 */
int shmx_pool_free(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner);

/* shmx_pool_reclaim_owner - free every slot @owner holds, in the segment and in mapped extents. Returns how many. */
uint32_t shmx_pool_reclaim_owner(shmx_pool_t *p, uint32_t owner);

/*
 * shmx_pool_reclaim_sent - free only the slots sent to @owner (SENT): for an
 * owner that may still run, whose CLAIMED slots it may still be writing
 * (freeing those would let its writes land in someone else's message).
 */
uint32_t shmx_pool_reclaim_sent(shmx_pool_t *p, uint32_t owner);

/*
 * shmx_pool_rebuild - with nobody else using the pool (the host alone, every
 * guest gone, no channel open): make every slot nobody holds FREE and put all
 * of them on fresh lists. Slots still CLAIMED or SENT with an owner are kept.
 * This repairs what a guest killed inside a list operation leaves behind (a
 * slot taken off a list but not yet marked, or marked free but not yet
 * pushed: no lock-free list can tell such a slot from a listed one while
 * others run) and lists a peer scribbled on. Returns how many slots were off
 * every list and are back.
 */
uint32_t shmx_pool_rebuild(shmx_pool_t *p);

/* shmx_pool_stats - count slots by state (walks the lists; for tests and diagnostics). */
void shmx_pool_stats(shmx_pool_t *p, shmx_pool_stats_t *out);

/*
 * shmx_pool_format_slots - make @count slot metadata entries at @meta FREE
 * with generation 1 and link them in order as a chain for slots @first ..
 * @first + @count - 1 (the last links to nothing). For the host, on memory
 * nobody else sees yet.
 */
void shmx_pool_format_slots(shmx_slot_meta_t *meta, uint32_t first, uint32_t count);

/* shmx_pool_class_empty - nonzero if class @cls's free list is empty now (a snapshot of a shared word). */
int shmx_pool_class_empty(const shmx_pool_t *p, uint32_t cls);

/*
 * shmx_pool_class_end - one past the last index of class @cls this process
 * has mapped (where the next extent of that class starts).
 */
uint32_t shmx_pool_class_end(shmx_pool_t *p, uint32_t cls);

/*
 * shmx_pool_add_extent - publish in this process's view an extent of class
 * @cls mapped at @base (@len bytes) holding slots @first .. @first + @count - 1.
 * The caller serialises calls per pool (lookups may run meanwhile).
 * Returns 0, or -SHMX_EINVAL if the extent does not continue the class
 * (first != shmx_pool_class_end), holds more than a full extent, follows a
 * short one, is not laid out as shmx_extent_layout says for @len, would pass
 * SHMX_POOL_MAX_INDEX, or the table is full.
 */
int shmx_pool_add_extent(shmx_pool_t *p, uint32_t cls, uint32_t first, uint32_t count, void *base, size_t len);

/*
 * shmx_pool_push_extent - put every slot of the published extent of class
 * @cls starting at @first on the class's free list (one CAS), then notify
 * waiters. Returns 0, -SHMX_EINVAL (no such extent) or -SHMX_ECORRUPT (the
 * head kept changing under a peer's writes).
 */
int shmx_pool_push_extent(shmx_pool_t *p, uint32_t cls, uint32_t first);

/*
 * shmx_pool_region - the @i-th extent mapping of this process (0 first, in
 * the order they were added). Returns 0 and fills @base and @len, or
 * -SHMX_EINVAL past the last.
 */
int shmx_pool_region(const shmx_pool_t *p, int i, void **base, size_t *len);

#endif
