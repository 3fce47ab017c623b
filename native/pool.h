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
 * The host's ledger (shmx_pool_ledger_enable, the host's view only): the
 * host's own truth about slots, in private memory, one 64-bit word per slot:
 * {generation, holder}, the holder being the host (it allocated or took the
 * slot) or the guest it sent that allocation to. Only the host's operations
 * write it: shmx_pool_alloc for SHMX_OWNER_HOST, shmx_pool_send from it,
 * shmx_pool_take, shmx_pool_free, the reclaims and shmx_pool_rebuild. With
 * it, forged or duplicated references are refused, slots the host holds are
 * freed by the host alone whatever their metadata says, a guest's end frees
 * what the host sent it whatever its owner field says, and a rebuild
 * restores the accounting from it (DESIGN 3.5, RELIABILITY D4).
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

/*
 * One word of the host's ledger (see pool.c), alone on its cache line: host
 * threads working on neighbouring slots never write the same line (eight
 * words to a line made two threads' alloc+free 3.3 times slower, see
 * shmx-pool-bench).
 */
typedef struct shmx_ledger_word {
    alignas(64) _Atomic uint64_t word;
} shmx_ledger_word_t;

/* One extent's slots as this process has mapped them; never changed once published. */
typedef struct shmx_pool_chunk {
    shmx_slot_meta_t *meta;
    uint8_t *data;
    shmx_ledger_word_t *ledger; /* the host's ledger of its slots (private memory), NULL without one */
    uint32_t first; /* index of its first slot within the class */
    uint32_t count;
} shmx_pool_chunk_t;

typedef struct shmx_pool_class {
    shmx_slot_meta_t *meta;       /* the segment's own slots */
    uint8_t *data;
    shmx_ledger_word_t *ledger;   /* the host's ledger of them (private memory), NULL without one */
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
    int ledger_on; /* shmx_pool_ledger_enable: the host's view only */
    /* What peers' scribbles cost this process (shmx_pool_faults); private, never shared. */
    _Atomic uint64_t lists_cut;
    _Atomic uint64_t slots_skipped;
    _Atomic uint64_t refs_refused;
} shmx_pool_t;

typedef struct shmx_pool_stats {
    uint32_t class_count;
    uint32_t free_slots[SHMX_MAX_CLASSES];    /* reachable from the free list */
    uint32_t claimed_slots[SHMX_MAX_CLASSES]; /* state CLAIMED */
    uint32_t sent_slots[SHMX_MAX_CLASSES];    /* state SENT */
    uint32_t total_slots[SHMX_MAX_CLASSES];   /* the segment's and every extent this process mapped */
} shmx_pool_stats_t;

/* Damage this process's view met on the shared lists (see shmx_pool_alloc), since shmx_pool_init. */
typedef struct shmx_pool_faults {
    uint64_t lists_cut;     /* lists whose head or a link named no slot: emptied, their slots off every list */
    uint64_t slots_skipped; /* slots found on a list in a state other than FREE: taken off it, not handed out
                             * (and host claims given up because a guest's lie let a reclaim free them) */
    uint64_t refs_refused;  /* references the ledger refused as forged (shmx_pool_take) */
} shmx_pool_faults_t;

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
 * A list a peer scribbled on never fails an allocation and never hands out a
 * slot that is not FREE: a slot found on a list in another state is taken off
 * it and skipped; a head or link naming no slot empties that list (the
 * slots below it stay off every list until shmx_pool_rebuild), and the
 * allocation goes on as if that list were empty. Both are counted
 * (shmx_pool_faults; the host's service thread logs them). Every loop is bounded.
 * Returns 0 and fills @out, -SHMX_ETOOBIG (larger than every class),
 * -SHMX_EWOULDBLOCK (none free by the deadline, which includes lists lost to
 * corruption or kept busy by a peer hammering their heads), -SHMX_EINVAL
 * (@owner is SHMX_OWNER_NONE).
 */
int shmx_pool_alloc(shmx_pool_t *p, uint32_t size, uint32_t owner, int64_t deadline_ns,
                    const shmx_idle_t *idle, shmx_slot_ref_t *out);

/*
 * shmx_pool_resolve - validate @ref against the slot's metadata (range,
 * generation, state @state, owner @owner) and return its data address and
 * size. Changes nothing: a slot received from a peer is taken with
 * shmx_pool_take instead. Returns 0 or -SHMX_EBADSLOT.
 */
int shmx_pool_resolve(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t state, uint32_t owner,
                      void **data, uint32_t *size);

/*
 * shmx_pool_take - accept @ref, received in a record, as @owner's: resolve
 * it as SENT to @owner and, on the host with a ledger, enter it there. The
 * ledger refuses (counted in refs_refused) a reference to a slot the
 * host holds (a duplicate) or one carrying the generation of an allocation
 * the host sent to a guest (a re-send passes through a free, which bumps the
 * generation); of concurrent duplicates exactly one is taken. Without a
 * ledger, or for a guest, it is shmx_pool_resolve(SENT, @owner).
 * Returns 0 with @data and @size, or -SHMX_EBADSLOT (invalid or forged: the
 * slot is not @owner's to free).
 */
int shmx_pool_take(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner, void **data, uint32_t *size);

/*
 * shmx_pool_untake - undo the ledger entry of a shmx_pool_take of @ref by
 * @owner whose record is left unread, to be received (and taken) again.
 */
void shmx_pool_untake(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner);

/*
 * shmx_pool_send - CLAIMED by @from -> SENT owned by @to (before publishing);
 * on the host with a ledger, the allocation is entered as @to's.
 * Returns 0 or -SHMX_EBADSLOT.
 */
int shmx_pool_send(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t from, uint32_t to);

/*
 * shmx_pool_free - return a slot held by @owner (CLAIMED or SENT) to its free
 * list: generation bumped, state FREE, waiters notified. With a ledger, a slot
 * the host holds is freed only by the host with the generation the ledger
 * has (whatever its metadata says), and an allocation the host sent to a
 * guest only by that guest (or its reclaim).
 * Returns 0, -SHMX_EBADSLOT (wrong generation, owner or state; nothing changed)
 * or -SHMX_ECORRUPT (the list head kept changing under a peer's writes: the
 * slot is FREE but on no list until the host, alone again, rebuilds the
 * lists with shmx_pool_rebuild).
 */
int shmx_pool_free(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner);

/*
 * shmx_pool_reclaim_owner - free every slot @owner holds, in the segment and
 * in mapped extents: with a ledger, first what the ledger says (for a guest:
 * every allocation the host sent it whose generation is unchanged, whatever
 * its owner and state fields say; for the host: everything it holds), then
 * every slot whose metadata names @owner (never one the host holds, for a
 * guest). Returns how many.
 */
uint32_t shmx_pool_reclaim_owner(shmx_pool_t *p, uint32_t owner);

/*
 * shmx_pool_reclaim_sent - free only the slots sent to @owner (SENT, and
 * with a ledger every allocation the host sent it): for an owner that may
 * still run, whose CLAIMED slots it may still be writing (freeing those would
 * let its writes land in someone else's message).
 */
uint32_t shmx_pool_reclaim_sent(shmx_pool_t *p, uint32_t owner);

/*
 * shmx_pool_rebuild - with nobody else using the pool (the host alone, every
 * guest gone, no channel open): make every slot nobody holds FREE and put all
 * of them on fresh lists. Slots still CLAIMED or SENT with an owner are kept;
 * with a ledger, exactly the slots the ledger says the host holds are kept
 * (their generation, owner and state restored from it) and every other slot
 * is made FREE, whatever its owner and state fields claim.
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
 * SHMX_POOL_MAX_INDEX, or the table is full; -ENOMEM (no memory for its
 * ledger, with a ledger).
 */
int shmx_pool_add_extent(shmx_pool_t *p, uint32_t cls, uint32_t first, uint32_t count, void *base, size_t len);

/*
 * shmx_pool_push_extent - put every slot of the published extent of class
 * @cls starting at @first on the class's free list (one CAS), then notify
 * waiters. Returns 0, -SHMX_EINVAL (no such extent) or -SHMX_ECORRUPT (the
 * head kept changing under a peer's writes).
 */
int shmx_pool_push_extent(shmx_pool_t *p, uint32_t cls, uint32_t first);

/* shmx_pool_faults - what this process's view of the pool met on scribbled lists (counters since shmx_pool_init). */
void shmx_pool_faults(const shmx_pool_t *p, shmx_pool_faults_t *out);

/*
 * shmx_pool_ledger_enable - give this view (the host's, right after
 * shmx_pool_init, before any slot is handed out or extent added) a ledger;
 * extents added later get theirs in shmx_pool_add_extent. Guests never call
 * it. Returns 0, -ENOMEM, or -SHMX_ESTATE (an extent was added already).
 */
int shmx_pool_ledger_enable(shmx_pool_t *p);

/* shmx_pool_fini - free this view's private memory (the ledger), once nobody uses the pool any more. */
void shmx_pool_fini(shmx_pool_t *p);

/* shmx_pool_host_held - slots the ledger says the host holds (0 without a ledger; for tests and diagnostics). */
uint32_t shmx_pool_host_held(shmx_pool_t *p);

/*
 * shmx_pool_region - the @i-th extent mapping of this process (0 first, in
 * the order they were added). Returns 0 and fills @base and @len, or
 * -SHMX_EINVAL past the last.
 */
int shmx_pool_region(const shmx_pool_t *p, int i, void **base, size_t *len);

#endif
