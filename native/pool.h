/*
 * The slot pool: size classes of fixed-size slots in the shared segment,
 * each class a lock-free Treiber stack whose head packs (index + 1) with a
 * 32-bit ABA tag. Every slot carries generation, state and owner, so stale or
 * forged references are rejected and a dead peer's slots can be found.
 *
 * Owners: SHMX_OWNER_HOST or a guest's channel index. The allocating peer
 * owns a slot while it writes it; publishing transfers it to the receiver,
 * which frees it on release.
 */
#ifndef SHMX_POOL_H
#define SHMX_POOL_H

#include <stdint.h>

#include "layout.h"
#include "wait.h"

typedef struct shmx_pool_class {
    shmx_slot_meta_t *meta;
    uint8_t *data;
    uint32_t slot_size;
    uint32_t slot_count;
} shmx_pool_class_t;

typedef struct shmx_pool {
    shmx_pool_ctl_t *ctl;
    uint32_t class_count;
    shmx_pool_class_t cls[SHMX_MAX_CLASSES];
} shmx_pool_t;

typedef struct shmx_pool_stats {
    uint32_t class_count;
    uint32_t free_slots[SHMX_MAX_CLASSES];    /* reachable from the free list */
    uint32_t claimed_slots[SHMX_MAX_CLASSES]; /* state CLAIMED */
    uint32_t sent_slots[SHMX_MAX_CLASSES];    /* state SENT */
    uint32_t total_slots[SHMX_MAX_CLASSES];
} shmx_pool_stats_t;

/*
 * shmx_pool_init - set up a private view of the pool of a mapped segment at
 * @base with layout @lay and config @cfg (both host-private or validated
 * copies). With @format nonzero (the host, before the segment is ready)
 * every slot is made free and pushed on its class's list.
 */
void shmx_pool_init(shmx_pool_t *p, uint8_t *base, const shmx_layout_t *lay, const shmx_config_t *cfg,
                    int format);

/*
 * shmx_pool_alloc - take a slot of at least @size bytes for @owner: the
 * smallest fitting class first, then larger ones; if all are empty, wait on
 * the pool's wait point until @deadline_ns for any free.
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

/* shmx_pool_reclaim_owner - free every slot @owner holds. Returns how many. */
uint32_t shmx_pool_reclaim_owner(shmx_pool_t *p, uint32_t owner);

/* shmx_pool_stats - count slots by state (walks the lists; for tests and diagnostics). */
void shmx_pool_stats(shmx_pool_t *p, shmx_pool_stats_t *out);

#endif
