/*
 * The slot pool: Treiber stacks of free slots, SHMX_POOL_SHARDS per size
 * class. A thread frees onto the stack of its CPU's shard and allocates from
 * it first, then from the class's other shards, then from larger classes:
 * two threads on two CPUs then work on two cache lines instead of fighting
 * over one head (measured by shmx-pool-bench), while a class is still only
 * empty when every shard is.
 *
 * A list head packs (index + 1) in its low 32 bits and a tag in its high 32
 * bits; every successful update bumps the tag, so a thread that read the head
 * before others popped and pushed the same slot fails its CAS instead of
 * installing a stale link (ABA). Peers may scribble on links, heads and
 * metadata: every value read from the segment is loaded once and
 * range-checked, and a scribbled list costs its slots, never an allocation:
 * - a slot that comes off a list in any state but FREE is never handed out:
 *   it is off the list now, so the pop counts it and tries the next one;
 * - a head or a link naming no slot (unknown even after the map hook, the
 *   head unchanged) cuts the list: the head is swung to empty (tag bumped),
 *   so no later pop meets the same garbage, and allocations go on with the
 *   other shards and classes, or grow and wait as if the list were empty.
 *   What was below the garbage stays off every list until the host, alone
 *   again, rebuilds them (shmx_pool_rebuild).
 * Each such event is counted (shmx_pool_faults), never logged here: pool
 * calls run under the host's lock and on hot paths, and a scribbling peer
 * could flood a log; the host's service thread logs the counts instead.
 *
 * The host's ledger (opt-in, shmx_pool_ledger_enable; guests never have
 * one) is the host's own truth about slots, in private memory: per slot one
 * 64-bit word {generation, holder}, written only by the host's own
 * operations. Its indexes come from the private class and extent tables
 * only. It decides what the shared metadata can not be trusted to:
 * - a received reference (shmx_pool_take) to a slot the host holds, or with
 *   the generation of an allocation the host sent to a guest (a legitimate
 *   re-send always passes through a free, which bumps the generation), is a
 *   forgery and refused, and of concurrent duplicates only one is taken;
 * - a slot the host holds is freed by the host alone, and its own frees
 *   never depend on metadata a peer may have scribbled;
 * - a guest's end frees what the host sent it, whatever its owner field says;
 * - a rebuild keeps exactly what the host holds and frees all the rest.
 * Only slot messages touch it, on one private cache line per slot: a CAS on
 * each of allocation, send, take and free (the word is also the host's
 * per-slot lock, see LEDGER_MAKE).
 *
 * Slots of the segment are found by one comparison (index < slot_count) and
 * an offset; that is the hot path, and it is all it costs. Extent slots take
 * one more step through this process's extent table (find_chunk), and only an
 * index not found there calls the map hook.
 */
#include "pool.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "shmx/errors.h"

_Static_assert(SHMX_POOL_MAX_INDEX < UINT32_MAX, "index + 1 of every slot fits a head's low 32 bits");
_Static_assert(SHMX_FREE_TAG_BITS == 32u, "head = tag in the high 32 bits, index + 1 in the low 32");
_Static_assert(sizeof(((shmx_pool_ctl_t *)0)->free_head[0][0][0]) * 8u == 32u + SHMX_FREE_TAG_BITS,
               "a head holds exactly the index and the tag");

#define HEAD_TOP(h) ((uint32_t)(h))           /* index + 1 of the top slot, 0 for empty */
#define HEAD_TAG(h) ((uint32_t)((h) >> 32))
#define HEAD_MAKE(tag, top) (((uint64_t)(tag) << 32) | (uint64_t)(top))
/* CAS attempts per list operation before giving up for now; a peer hammering a
 * head can make us wait (until the caller's deadline) but never spin forever. */
#define MAX_CAS_ATTEMPTS 1024u

/* Outcomes of a pop besides a slot index. */
#define POP_EMPTY (-1)
#define POP_BUSY (-2)
/* Slots in a state other than FREE one pop takes off a list before it takes the list for a
 * loop through held slots and cuts it (legitimate lists hold FREE slots only). */
#define MAX_SKIPS 16u

/*
 * A ledger word: generation in the high 32 bits, holder in the low 32: a
 * guest's channel index (the host sent it that allocation), LEDGER_CLAIMED
 * (the host allocated it), LEDGER_TAKEN (the host took it from a guest) or
 * LEDGER_BUSY (a host free of it is committing). 0: nothing known (no real
 * word is 0: generation 0 is never live, and an allocation never carries it).
 * A guest's word may be stale (the guest freed the slot since); only one
 * whose generation is still the slot's counts.
 *
 * The word is also the host's per-slot lock against its own threads: every
 * host-side change of a slot (take, send, a host claim, every free and
 * reclaim) first moves the word by CAS from the value it judged (to BUSY
 * while a free commits), then changes the metadata, then settles the word.
 * A host thread that meets a word another one holds refuses or skips the
 * slot, so two host threads never race on one slot's metadata, whatever
 * references and metadata a guest forged (legitimately, only one of them
 * ever holds a slot).
 */
#define LEDGER_CLAIMED SHMX_OWNER_HOST
#define LEDGER_BUSY SHMX_OWNER_NONE
#define LEDGER_TAKEN 0xFFFFFFFDu
#define LEDGER_MAKE(gen, holder) (((uint64_t)(gen) << 32) | (uint64_t)(holder))
#define LEDGER_GEN(e) ((uint32_t)((e) >> 32))
#define LEDGER_HOLDER(e) ((uint32_t)(e))
#define LEDGER_HOST_HOLDS(e) (LEDGER_HOLDER(e) >= LEDGER_TAKEN) /* claimed, taken, or being freed */
_Static_assert(SHMX_MAX_CHANNELS < LEDGER_TAKEN, "a guest's channel index never reads as one of the host's holders");
/* CAS attempts of a take against concurrent updates of one word (legitimately at most one). */
#define LEDGER_TRIES 4u
/* Allocations one shmx_pool_alloc gives up because a reclaim freed them under it (see host_claimed). */
#define MAX_LOST_CLAIMS 4u

static inline uint32_t next_generation(uint32_t gen) { return gen + 1u == 0 ? 1u : gen + 1u; } /* 0 is never live */

static _Atomic uint64_t *head_of(const shmx_pool_t *p, uint32_t c, uint32_t s) {
    return &p->ctl->free_head[c][s][0];
}

/* The shard of the CPU we run on (glibc reads it from the rseq area: about a nanosecond). A
 * thread that moves meanwhile only loses some locality; correctness never depends on it. */
static inline uint32_t my_shard(void) {
    int cpu = sched_getcpu();
    return cpu < 0 ? 0u : (uint32_t)cpu & (SHMX_POOL_SHARDS - 1u);
}

void shmx_pool_format_slots(shmx_slot_meta_t *meta, uint32_t first, uint32_t count) {
    /* Relaxed stores: whoever publishes these slots (the segment's `ready`, or the
     * extent's push) does so with a release that covers them. */
    for (uint32_t i = 0; i < count; i++) {
        shmx_slot_meta_t *m = &meta[i];
        atomic_store_explicit(&m->next, i + 1u < count ? first + i + 2u : 0u, memory_order_relaxed);
        atomic_store_explicit(&m->generation, 1, memory_order_relaxed); /* 0 is never a live generation */
        atomic_store_explicit(&m->state, SHMX_SLOT_FREE, memory_order_relaxed);
        atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
    }
}

void shmx_pool_init(shmx_pool_t *p, uint8_t *base, const shmx_layout_t *lay, const shmx_config_t *cfg,
                    int format) {
    *p = (shmx_pool_t){0};
    p->ctl = (shmx_pool_ctl_t *)(base + lay->pool_offset);
    p->class_count = cfg->class_count;
    for (uint32_t c = 0; c < cfg->class_count; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        k->meta = (shmx_slot_meta_t *)(base + lay->class_meta_offset[c]);
        k->data = base + lay->class_data_offset[c];
        k->slot_size = cfg->class_size[c];
        k->slot_count = cfg->class_slots[c];
        k->chunk_slots = shmx_extent_slots(cfg, k->slot_size);
    }
    if (!format) return;
    /* Relaxed stores: the segment's `ready` release store publishes the formatted pool. */
    atomic_store_explicit(&p->ctl->freed.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ctl->freed.waiters, 0, memory_order_relaxed);
    for (uint32_t c = 0; c < SHMX_MAX_CLASSES; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        shmx_pool_format_slots(k->meta, 0, k->slot_count);
        /* Every slot starts on shard 0; allocations elsewhere take from it, frees spread them. */
        for (uint32_t sh = 0; sh < SHMX_POOL_SHARDS; sh++)
            atomic_store_explicit(head_of(p, c, sh), HEAD_MAKE(0, sh == 0 && k->slot_count ? 1u : 0u),
                                  memory_order_relaxed);
    }
}

/* ---- where a slot lives ------------------------------------------------------ */

/* The published extent of class @c holding index @i (>= the segment's slots), or NULL. */
static const shmx_pool_chunk_t *find_chunk(const shmx_pool_t *p, uint32_t c, uint32_t i) {
    const shmx_pool_class_t *k = &p->cls[c];
    /* Every extent but a class's last is full, so the division finds the only candidate. */
    uint32_t j = (i - k->slot_count) / k->chunk_slots;
    /* Acquire: pairs with the release in shmx_pool_add_extent; the entry is complete. */
    if (j >= atomic_load_explicit(&k->chunk_count, memory_order_acquire)) return NULL;
    const shmx_pool_chunk_t *ch = &k->chunk[j];
    return i - ch->first < ch->count ? ch : NULL;
}

/* As find_chunk, but first lets the map hook map what has been announced. Off the hot path. */
static __attribute__((noinline)) const shmx_pool_chunk_t *extent_chunk(shmx_pool_t *p, uint32_t c, uint32_t i) {
    const shmx_pool_chunk_t *ch = find_chunk(p, c, i);
    if (ch != NULL || p->map == NULL || p->map(p->hook_arg, c, i) != 0) return ch;
    return find_chunk(p, c, i);
}

/* Nonzero if this process has slot @i (>= the segment's) of class @c mapped, after the map hook if need be. */
static __attribute__((noinline)) int known(shmx_pool_t *p, uint32_t c, uint32_t i) {
    /* Extents are contiguous: below the end of the last one is inside one. */
    return i < shmx_pool_class_end(p, c) || extent_chunk(p, c, i) != NULL;
}

/* Metadata of slot @i of class @c (< class_count), or NULL if this process knows no such slot. */
static inline shmx_slot_meta_t *slot_meta(shmx_pool_t *p, uint32_t c, uint32_t i) {
    shmx_pool_class_t *k = &p->cls[c];
    if (__builtin_expect(i < k->slot_count, 1)) return &k->meta[i];
    const shmx_pool_chunk_t *ch = extent_chunk(p, c, i);
    return ch == NULL ? NULL : &ch->meta[i - ch->first];
}

/*
 * Metadata, data and ledger word (NULL without a ledger) of @ref's slot; 0, or
 * -1 if the class or index is out of range. The ledger word is found through
 * the same private tables as the rest.
 */
static inline int locate(shmx_pool_t *p, const shmx_slot_ref_t *ref, shmx_slot_meta_t **meta, uint8_t **data,
                         _Atomic uint64_t **led) {
    if (ref->cls >= p->class_count) return -1;
    shmx_pool_class_t *k = &p->cls[ref->cls];
    uint32_t i = ref->index;
    if (__builtin_expect(i < k->slot_count, 1)) {
        *meta = &k->meta[i];
        *data = k->data + (uint64_t)i * k->slot_size;
        *led = k->ledger == NULL ? NULL : &k->ledger[i].word;
        return 0;
    }
    const shmx_pool_chunk_t *ch = extent_chunk(p, ref->cls, i);
    if (ch == NULL) return -1;
    *meta = &ch->meta[i - ch->first];
    *data = ch->data + (uint64_t)(i - ch->first) * k->slot_size;
    *led = ch->ledger == NULL ? NULL : &ch->ledger[i - ch->first].word;
    return 0;
}

/* The ledger word of slot @i of class @c (< class_count), NULL if none (no ledger, or no such slot mapped). */
static _Atomic uint64_t *ledger_word(const shmx_pool_t *p, uint32_t c, uint32_t i) {
    const shmx_pool_class_t *k = &p->cls[c];
    if (i < k->slot_count) return k->ledger == NULL ? NULL : &k->ledger[i].word;
    const shmx_pool_chunk_t *ch = find_chunk(p, c, i);
    return ch == NULL || ch->ledger == NULL ? NULL : &ch->ledger[i - ch->first].word;
}

/* ---- the free lists ---------------------------------------------------------- */

/* A list was cut (a peer scribbled on it): count it. Off the hot path. */
static __attribute__((noinline, cold)) void note_cut(shmx_pool_t *p) {
    /* Relaxed: a statistic; nothing is ordered by it. */
    atomic_fetch_add_explicit(&p->lists_cut, 1, memory_order_relaxed);
}

/* A pop took @n slots off a list that were not FREE (not handed out): count them. */
static __attribute__((noinline, cold)) void note_skipped(shmx_pool_t *p, uint32_t n) {
    /* Relaxed: a statistic; nothing is ordered by it. */
    atomic_fetch_add_explicit(&p->slots_skipped, n, memory_order_relaxed);
}

/*
 * Take the top slot of shard @sh of class @c and mark it CLAIMED; *@meta is
 * its metadata. Returns its index, POP_EMPTY or POP_BUSY (too much
 * contention: try again later). Slots that were not FREE are skipped and a
 * garbage head or link cuts the list (see the top of this file).
 */
static int64_t pop(shmx_pool_t *p, uint32_t c, uint32_t sh, shmx_slot_meta_t **meta) {
    const uint32_t own = p->cls[c].slot_count;
    _Atomic uint64_t *headp = head_of(p, c, sh);
    uint32_t skipped = 0;
    int64_t result = POP_BUSY;
    /* Pairs with the release CAS in push: the slot's next link and FREE state are visible. */
    uint64_t head = atomic_load_explicit(headp, memory_order_acquire);
    for (uint32_t attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        uint32_t top = HEAD_TOP(head);
        if (top == 0) {
            result = POP_EMPTY;
            break;
        }
        /* A slot on the list was announced before it was pushed: unknown even after the
         * map hook means the head is garbage. */
        shmx_slot_meta_t *m = slot_meta(p, c, top - 1u);
        if (m == NULL || skipped == MAX_SKIPS) {
            /* Cut: from exactly the head we judged, so a head that moved meanwhile (then it
             * was live) is judged again. acq_rel as below; on failure `head` is reloaded. */
            if (atomic_compare_exchange_weak_explicit(headp, &head, HEAD_MAKE(HEAD_TAG(head) + 1u, 0u),
                                                      memory_order_acq_rel, memory_order_acquire)) {
                note_cut(p);
                result = POP_EMPTY;
                break;
            }
            continue;
        }
        uint32_t next = atomic_load_explicit(&m->next, memory_order_relaxed);
        /* A link to itself or to no slot is garbage if the head stays put (checked by the CAS):
         * then the top is taken and the rest of the list is cut off. */
        int garbage = next == top || (next > own && !known(p, c, next - 1u));
        /* acq_rel: orders after the pushes we rely on, and before our later state change;
         * on failure `head` is reloaded (acquire, as above). */
        if (!atomic_compare_exchange_weak_explicit(headp, &head, HEAD_MAKE(HEAD_TAG(head) + 1u, garbage ? 0u : next),
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        if (__builtin_expect(garbage, 0)) note_cut(p);
        uint32_t expected = SHMX_SLOT_FREE;
        /* The unchanged tagged head proves the slot was on the list, hence FREE unless a peer
         * lied; then it is off the list now and simply not ours. Pairs with the release store
         * of FREE in shmx_pool_free. */
        if (__builtin_expect(atomic_compare_exchange_strong_explicit(&m->state, &expected, SHMX_SLOT_CLAIMED,
                                                                     memory_order_acq_rel, memory_order_acquire),
                             1)) {
            *meta = m;
            result = (int64_t)(top - 1u);
            break;
        }
        skipped++;
        head = atomic_load_explicit(headp, memory_order_acquire);
    }
    if (__builtin_expect(skipped != 0, 0)) note_skipped(p, skipped);
    return result;
}

/*
 * Push the chain of slots from @first to the one whose metadata is @last_m
 * (already FREE and linked among themselves) onto the list of the calling
 * CPU's shard of class @c. Returns 0 or POP_BUSY.
 */
static int push_chain(shmx_pool_t *p, uint32_t c, uint32_t first, shmx_slot_meta_t *last_m) {
    _Atomic uint64_t *headp = head_of(p, c, my_shard());
    uint64_t head = atomic_load_explicit(headp, memory_order_relaxed);
    for (uint32_t attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        /* A garbage top is stored as a link and caught by the pop that follows it. */
        atomic_store_explicit(&last_m->next, HEAD_TOP(head), memory_order_relaxed);
        /* Release: publishes the links and the FREE states to the acquire load in pop. */
        if (atomic_compare_exchange_weak_explicit(headp, &head, HEAD_MAKE(HEAD_TAG(head) + 1u, first + 1u),
                                                  memory_order_release, memory_order_relaxed))
            return 0;
    }
    return POP_BUSY;
}

typedef struct alloc_try {
    shmx_pool_t *p;
    uint32_t shard; /* the calling CPU's: tried first in every class */
    uint32_t first; /* smallest fitting class */
    uint32_t cls;
    int64_t result; /* slot index once ready */
    shmx_slot_meta_t *meta; /* the slot's, once ready with an index */
} alloc_try_t;

/*
 * Ready function for shmx_wait_until: one pop attempt per shard of every
 * fitting class, smallest class first, our own shard first within a class.
 */
static int try_alloc(void *arg) {
    alloc_try_t *t = arg;
    for (uint32_t c = t->first; c < t->p->class_count; c++) {
        for (uint32_t k = 0; k < SHMX_POOL_SHARDS; k++) {
            int64_t r = pop(t->p, c, (t->shard + k) & (SHMX_POOL_SHARDS - 1u), &t->meta);
            if (r >= 0) {
                t->cls = c;
                t->result = r;
                return 1;
            }
        }
    }
    return 0;
}

/* A claim the ledger had to settle was lost (see host_claimed): count it with the skipped slots. */
static __attribute__((noinline, cold)) int lost_claim(shmx_pool_t *p, _Atomic uint64_t *led, uint64_t mine) {
    /* Only our own word goes: whatever replaced it is newer. Release: as every clear. */
    atomic_compare_exchange_strong_explicit(led, &mine, 0, memory_order_release, memory_order_relaxed);
    /* Relaxed: a statistic; nothing is ordered by it. */
    atomic_fetch_add_explicit(&p->slots_skipped, 1, memory_order_relaxed);
    return 0;
}

/*
 * The slot @ref just claimed for the host has a word naming a guest with this
 * very generation (it came back to a list without a free: a guest lied), or
 * its generation moved since the claim (a reclaim freed it under us). The
 * generation CAS settles whose it is: ours under a generation no guest was
 * ever given (ref updated), or not ours (whoever freed it has pushed it).
 * Returns 1 if ours.
 */
static __attribute__((noinline, cold)) int host_claim_settle(shmx_pool_t *p, shmx_slot_meta_t *m,
                                                             _Atomic uint64_t *led, uint64_t mine,
                                                             shmx_slot_ref_t *ref) {
    uint32_t expected = ref->generation, moved = next_generation(ref->generation);
    /* acq_rel: as the generation CAS of a free, which it races. */
    if (!atomic_compare_exchange_strong_explicit(&m->generation, &expected, moved, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return lost_claim(p, led, mine);
    /* Release: as the CAS in host_claimed; the word is ours (mine), so a store does. */
    atomic_store_explicit(led, LEDGER_MAKE(moved, LEDGER_CLAIMED), memory_order_release);
    ref->generation = moved;
    return 1;
}

/* The slot just popped for the host is one the host holds already (a guest put it back on a list):
 * leave it to its holder, count it with the skipped slots. Returns 0 (lost). */
static __attribute__((noinline, cold)) int host_claim_skip(shmx_pool_t *p) {
    /* Relaxed: a statistic; nothing is ordered by it. */
    atomic_fetch_add_explicit(&p->slots_skipped, 1, memory_order_relaxed);
    return 0;
}

/* Enter the slot @ref the host just claimed (metadata @m) in the ledger. Returns 1, or 0 if it was lost. */
static inline int host_claimed(shmx_pool_t *p, shmx_slot_meta_t *m, shmx_slot_ref_t *ref) {
    _Atomic uint64_t *led = ledger_word(p, ref->cls, ref->index);
    if (led == NULL) return 1;
    uint64_t mine = LEDGER_MAKE(ref->generation, LEDGER_CLAIMED);
    /* Acquire: a free's or reclaim's clear of this word (release) comes after its generation
     * CAS, so having read it we see that CAS below. */
    uint64_t old = atomic_load_explicit(led, memory_order_acquire);
    for (uint32_t attempt = 0;; attempt++) {
        /* Held by another host thread (taken, claimed, or a free committing): not ours to use. */
        if (LEDGER_HOST_HOLDS(old) || attempt == LEDGER_TRIES) return host_claim_skip(p);
        /* From exactly the word judged (acq_rel: as above, and for the later updates). */
        if (atomic_compare_exchange_strong_explicit(led, &old, mine, memory_order_acq_rel, memory_order_acquire))
            break;
    }
    if (__builtin_expect((old == 0 || LEDGER_GEN(old) != ref->generation) &&
                             atomic_load_explicit(&m->generation, memory_order_relaxed) == ref->generation,
                         1))
        return 1;
    return host_claim_settle(p, m, led, mine, ref);
}

int shmx_pool_alloc(shmx_pool_t *p, uint32_t size, uint32_t owner, int64_t deadline_ns,
                    const shmx_idle_t *idle, shmx_slot_ref_t *out) {
    if (owner == SHMX_OWNER_NONE) return -SHMX_EINVAL;
    alloc_try_t t = {.p = p, .shard = my_shard(), .first = 0, .cls = 0, .result = 0, .meta = NULL};
    while (t.first < p->class_count && p->cls[t.first].slot_size < size) t.first++;
    if (t.first == p->class_count) return -SHMX_ETOOBIG;

    for (uint32_t lost = 0;; lost++) {
        if (!try_alloc(&t)) {
            /* Every fitting class is empty: ask for more before settling down to wait. */
            if (p->grow != NULL) p->grow(p->hook_arg, t.first);
            /* Pairs with shmx_waitpoint_notify in shmx_pool_free and shmx_pool_push_extent. */
            int rc = shmx_wait_until(&p->ctl->freed, try_alloc, &t, deadline_ns, idle);
            if (rc == -ETIMEDOUT) return -SHMX_EWOULDBLOCK;
            if (rc != 0) return rc;
        }
        shmx_slot_meta_t *m = t.meta;
        /* Relaxed: the slot is ours (CLAIMED by our CAS); the channel's publish orders it for others. */
        atomic_store_explicit(&m->owner, owner, memory_order_relaxed);
        out->cls = t.cls;
        out->index = (uint32_t)t.result;
        /* Only a free changes the generation, and nobody frees a slot nobody holds yet. */
        out->generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
        out->reserved = 0;
        if (__builtin_expect(out->generation == 0, 0)) {
            /* Never live (a peer wrote it): an allocation never carries it. */
            out->generation = 1;
            atomic_store_explicit(&m->generation, 1, memory_order_relaxed);
        }
        if (!p->ledger_on || owner != SHMX_OWNER_HOST || host_claimed(p, m, out)) return 0;
        if (lost == MAX_LOST_CLAIMS) return -SHMX_EWOULDBLOCK; /* a peer keeps this up: give up for now */
    }
}

/* ---- references ---------------------------------------------------------------- */

int shmx_pool_resolve(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t state, uint32_t owner,
                      void **data, uint32_t *size) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    _Atomic uint64_t *led;
    if (locate(p, ref, &m, &d, &led) != 0) return -SHMX_EBADSLOT;
    /* Acquire pairs with the release of the state change by shmx_pool_send or the allocating CAS. */
    if (atomic_load_explicit(&m->state, memory_order_acquire) != state ||
        atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != owner)
        return -SHMX_EBADSLOT;
    *data = d;
    *size = p->cls[ref->cls].slot_size;
    return 0;
}

/* The ledger refused a reference: count it. Off the hot path. */
static __attribute__((noinline, cold)) int refused(shmx_pool_t *p) {
    /* Relaxed: a statistic; nothing is ordered by it. */
    atomic_fetch_add_explicit(&p->refs_refused, 1, memory_order_relaxed);
    return -SHMX_EBADSLOT;
}

int shmx_pool_take(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner, void **data, uint32_t *size) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    _Atomic uint64_t *led;
    if (locate(p, ref, &m, &d, &led) != 0) return -SHMX_EBADSLOT;
    /* Acquire pairs with the release of SENT by shmx_pool_send. */
    if (atomic_load_explicit(&m->state, memory_order_acquire) != SHMX_SLOT_SENT ||
        atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != owner)
        return -SHMX_EBADSLOT;
    if (led != NULL && owner == SHMX_OWNER_HOST) {
        const uint64_t mine = LEDGER_MAKE(ref->generation, LEDGER_TAKEN);
        /* Acquire: pairs with the release updates of the word by the host's other threads. */
        uint64_t e = atomic_load_explicit(led, memory_order_acquire);
        for (uint32_t attempt = 0;; attempt++) {
            /* Held by the host already, or the very allocation it sent a guest: forged. */
            if (ref->generation == 0 || LEDGER_HOST_HOLDS(e) || (e != 0 && LEDGER_GEN(e) == ref->generation) ||
                attempt == LEDGER_TRIES)
                return refused(p);
            /* The CAS makes of concurrent duplicates exactly one the host's. acq_rel: as above and
             * for the host thread that frees it later; on failure `e` is reloaded. */
            if (atomic_compare_exchange_strong_explicit(led, &e, mine, memory_order_acq_rel, memory_order_acquire))
                break;
        }
        /* The metadata again, now that the word is ours: a duplicate checked before another host
         * thread took, released and freed this allocation fails here (the free moved the
         * generation on, and cleared the word we then took). */
        if (atomic_load_explicit(&m->state, memory_order_acquire) != SHMX_SLOT_SENT ||
            atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
            atomic_load_explicit(&m->owner, memory_order_relaxed) != owner) {
            uint64_t ours = mine;
            /* Release: as every update of the word; only ours goes back to what it was. */
            atomic_compare_exchange_strong_explicit(led, &ours, e, memory_order_release, memory_order_relaxed);
            return refused(p);
        }
    }
    *data = d;
    *size = p->cls[ref->cls].slot_size;
    return 0;
}

void shmx_pool_untake(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    _Atomic uint64_t *led;
    if (owner != SHMX_OWNER_HOST || locate(p, ref, &m, &d, &led) != 0 || led == NULL) return;
    uint64_t mine = LEDGER_MAKE(ref->generation, LEDGER_TAKEN);
    /* Release: as every clear; only our own word goes. */
    atomic_compare_exchange_strong_explicit(led, &mine, 0, memory_order_release, memory_order_relaxed);
}

int shmx_pool_send(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t from, uint32_t to) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    _Atomic uint64_t *led;
    if (to == SHMX_OWNER_NONE || locate(p, ref, &m, &d, &led) != 0) return -SHMX_EBADSLOT;
    if (atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != from)
        return -SHMX_EBADSLOT;
    /* The host's truth first: this claim of its own becomes @to's. From exactly the host's claim of
     * this generation, so a word another host thread holds (or none) fails it. acq_rel: after
     * the claim's update, before the metadata below. */
    int booked = led != NULL && from == SHMX_OWNER_HOST && to < LEDGER_TAKEN;
    uint64_t claim = LEDGER_MAKE(ref->generation, LEDGER_CLAIMED), sent = LEDGER_MAKE(ref->generation, to);
    if (booked && !atomic_compare_exchange_strong_explicit(led, &claim, sent, memory_order_acq_rel,
                                                           memory_order_relaxed))
        return -SHMX_EBADSLOT;
    uint32_t expected = SHMX_SLOT_CLAIMED;
    /* Release: the sender's payload writes happen before SENT (the ring's publish also orders them). */
    if (!atomic_compare_exchange_strong_explicit(&m->state, &expected, SHMX_SLOT_SENT, memory_order_release,
                                                 memory_order_relaxed)) {
        /* Release: as every update of the word; the claim is the host's again. */
        if (booked) atomic_compare_exchange_strong_explicit(led, &sent, claim, memory_order_release, memory_order_relaxed);
        return -SHMX_EBADSLOT;
    }
    atomic_store_explicit(&m->owner, to, memory_order_relaxed);
    return 0;
}

/* Make slot @ref (metadata @m, new generation and no owner already stored) FREE and push it. */
static int relist(shmx_pool_t *p, const shmx_slot_ref_t *ref, shmx_slot_meta_t *m) {
    /* Release pairs with the acquiring state CAS in pop; push's release CAS publishes it too. */
    atomic_store_explicit(&m->state, SHMX_SLOT_FREE, memory_order_release);
    /* Legitimate contention never fails a thousand CASes in a row: a peer is hammering the head. */
    if (push_chain(p, ref->cls, ref->index, m) != 0) return -SHMX_ECORRUPT;
    shmx_waitpoint_notify(&p->ctl->freed);
    return 0;
}

/*
 * Free slot @ref that the ledger says the host holds (@e, its word: @ref's
 * generation, CLAIMED or TAKEN), whatever its metadata says: no guest holds
 * it, so what a peer wrote there is overwritten.
 */
static int free_held(shmx_pool_t *p, const shmx_slot_ref_t *ref, shmx_slot_meta_t *m, _Atomic uint64_t *led,
                     uint64_t e) {
    /* The commit: of two frees of one allocation exactly one turns the word BUSY. acq_rel: after
     * the holder's updates of the word, before ours below. */
    if (!atomic_compare_exchange_strong_explicit(led, &e, LEDGER_MAKE(ref->generation, LEDGER_BUSY),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return -SHMX_EBADSLOT;
    atomic_store_explicit(&m->generation, next_generation(ref->generation), memory_order_relaxed);
    atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
    /* Release: a free that reads 0 here (acquire) sees the generation moved on, so it fails. */
    atomic_store_explicit(led, 0, memory_order_release);
    return relist(p, ref, m);
}

/*
 * The metadata half of a free by @owner (not a slot the host holds): check
 * state and owner, commit by a CAS on the generation, drop the owner.
 * Returns 0 (then the caller relists it) or -SHMX_EBADSLOT (nothing changed).
 */
static int free_guests(const shmx_slot_ref_t *ref, shmx_slot_meta_t *m, uint32_t owner) {
    uint32_t state = atomic_load_explicit(&m->state, memory_order_acquire);
    if ((state != SHMX_SLOT_CLAIMED && state != SHMX_SLOT_SENT) ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != owner)
        return -SHMX_EBADSLOT;
    /*
     * The generation names the allocation, so the commit is a CAS on it: of two frees of
     * the same reference exactly one wins, and a stale reference fails even if the slot
     * was freed and handed out again since its checks above (a CAS on the state alone
     * would succeed against the new allocation).
     */
    uint32_t gen = ref->generation;
    if (!atomic_compare_exchange_strong_explicit(&m->generation, &gen, next_generation(gen), memory_order_acq_rel,
                                                 memory_order_relaxed))
        return -SHMX_EBADSLOT;
    atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
    return 0;
}

int shmx_pool_free(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    _Atomic uint64_t *led;
    /* NONE owns nothing: it marks slots between an allocation's claim and its owner store. */
    if (owner == SHMX_OWNER_NONE || locate(p, ref, &m, &d, &led) != 0) return -SHMX_EBADSLOT;
    uint64_t e = 0;
    if (led != NULL) {
        /* Acquire: pairs with the release updates of the word by the host's other threads. */
        e = atomic_load_explicit(led, memory_order_acquire);
        if (LEDGER_HOST_HOLDS(e)) {
            /* The host holds it: only the host frees it, and only the allocation it holds. */
            if (owner != SHMX_OWNER_HOST || LEDGER_GEN(e) != ref->generation || LEDGER_HOLDER(e) == LEDGER_BUSY)
                return -SHMX_EBADSLOT;
            return free_held(p, ref, m, led, e);
        }
        /* The host sent this very allocation to a guest: nobody else frees it. */
        if (e != 0 && LEDGER_GEN(e) == ref->generation && LEDGER_HOLDER(e) != owner) return -SHMX_EBADSLOT;
        /* Marked BUSY while this free commits (a reclaim of a guest's slot): a take or a host claim
         * meeting it refuses or skips the slot instead of racing the generation CAS below. */
        uint64_t busy = LEDGER_MAKE(ref->generation, LEDGER_BUSY);
        if (!atomic_compare_exchange_strong_explicit(led, &e, busy, memory_order_acq_rel, memory_order_relaxed))
            return -SHMX_EBADSLOT;
        int rc = free_guests(ref, m, owner);
        /* Release: the generation moved on (or nothing changed) before the word clears. */
        atomic_store_explicit(led, rc == 0 ? 0 : e, memory_order_release);
        return rc == 0 ? relist(p, ref, m) : rc;
    }
    int rc = free_guests(ref, m, owner);
    return rc == 0 ? relist(p, ref, m) : rc;
}


/* ---- scans ----------------------------------------------------------------------- */

/* Free @meta's slot @i of class @c if @owner holds it in a state of @states (bit per state); 1 if freed. */
static uint32_t reclaim_one(shmx_pool_t *p, uint32_t c, uint32_t i, shmx_slot_meta_t *meta, uint32_t owner,
                            uint32_t states) {
    if (atomic_load_explicit(&meta->owner, memory_order_relaxed) != owner) return 0;
    uint32_t state = atomic_load_explicit(&meta->state, memory_order_relaxed);
    if (state >= 32u || (states & (1u << state)) == 0) return 0;
    shmx_slot_ref_t ref = {
        .cls = c, .index = i, .generation = atomic_load_explicit(&meta->generation, memory_order_relaxed)};
    return shmx_pool_free(p, &ref, owner) == 0 ? 1u : 0u;
}

/*
 * Free slot @ref, which the ledger says the host sent to a guest (@e, its
 * word), if that allocation is still out (the generation unchanged, whatever
 * the guest wrote into owner and state, FREE aside: that one a rebuild
 * settles); then forget the word. 1 if freed.
 */
static uint32_t free_sent(shmx_pool_t *p, const shmx_slot_ref_t *ref, shmx_slot_meta_t *m, _Atomic uint64_t *led,
                          uint64_t e) {
    uint32_t gen = ref->generation, freed = 0;
    /* BUSY while it commits, as every free on the host's view; a word that moved is not ours. */
    if (!atomic_compare_exchange_strong_explicit(led, &e, LEDGER_MAKE(gen, LEDGER_BUSY), memory_order_acq_rel,
                                                 memory_order_relaxed))
        return 0;
    /* Acquire: as in shmx_pool_free. The generation CAS is the commit against the guest's own free
     * (if it still runs) and a host claim settling (host_claim_settle). */
    if (atomic_load_explicit(&m->state, memory_order_acquire) != SHMX_SLOT_FREE &&
        atomic_compare_exchange_strong_explicit(&m->generation, &gen, next_generation(gen), memory_order_acq_rel,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
        freed = 1;
    }
    /* Spent either way (freed now, or by the guest before). Release: pairs with the acquire load
     * in host_claimed, which then sees the new generation. */
    atomic_store_explicit(led, 0, memory_order_release);
    return freed && relist(p, ref, m) == 0 ? 1u : 0u;
}

/* The ledger's pass of reclaim over @count slots from index @first of class @c. */
static uint32_t ledger_reclaim(shmx_pool_t *p, uint32_t c, uint32_t first, uint32_t count, shmx_slot_meta_t *meta,
                               shmx_ledger_word_t *led, uint32_t owner, uint32_t states) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < count; i++) {
        /* Acquire: pairs with the release updates of the word by the host's other threads. */
        uint64_t e = atomic_load_explicit(&led[i].word, memory_order_acquire);
        if (e == 0) continue;
        uint32_t holder = LEDGER_HOLDER(e);
        shmx_slot_ref_t ref = {.cls = c, .index = first + i, .generation = LEDGER_GEN(e), .reserved = 0};
        if (owner == SHMX_OWNER_HOST) {
            uint32_t state = holder == LEDGER_CLAIMED ? SHMX_SLOT_CLAIMED : holder == LEDGER_TAKEN ? SHMX_SLOT_SENT : 31u;
            if ((states & (1u << state)) != 0 && free_held(p, &ref, &meta[i], &led[i].word, e) == 0) n++;
        } else if (holder == owner && (states & (1u << SHMX_SLOT_SENT)) != 0) {
            n += free_sent(p, &ref, &meta[i], &led[i].word, e);
        }
    }
    return n;
}

/* Free every slot @owner holds in a state of @states: by the ledger, then by the metadata (reclaim_one). */
static uint32_t reclaim(shmx_pool_t *p, uint32_t owner, uint32_t states) {
    uint32_t n = 0;
    /* The ledger first: what the host holds, or sent to @owner, whatever the metadata says now. */
    for (uint32_t c = 0; p->ledger_on && c < p->class_count; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        if (k->ledger != NULL) n += ledger_reclaim(p, c, 0, k->slot_count, k->meta, k->ledger, owner, states);
        /* Acquire: pairs with the release in shmx_pool_add_extent. */
        uint32_t chunks = atomic_load_explicit(&k->chunk_count, memory_order_acquire);
        for (uint32_t j = 0; j < chunks; j++) {
            const shmx_pool_chunk_t *ch = &k->chunk[j];
            n += ledger_reclaim(p, c, ch->first, ch->count, ch->meta, ch->ledger, owner, states);
        }
    }
    /*
     * A scan is fine here: it runs when a peer leaves, not per message. The
     * references are rebuilt from the current generations, so this is for an
     * owner that no longer runs; one still freeing its own slots meanwhile
     * could have a slot pushed twice, which the next pop skips. With a ledger,
     * shmx_pool_free refuses what the host holds, however the owner reads.
     */
    for (uint32_t c = 0; c < p->class_count; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        for (uint32_t i = 0; i < k->slot_count; i++) n += reclaim_one(p, c, i, &k->meta[i], owner, states);
        /* Acquire: pairs with the release in shmx_pool_add_extent. */
        uint32_t chunks = atomic_load_explicit(&k->chunk_count, memory_order_acquire);
        for (uint32_t j = 0; j < chunks; j++) {
            const shmx_pool_chunk_t *ch = &k->chunk[j];
            for (uint32_t i = 0; i < ch->count; i++)
                n += reclaim_one(p, c, ch->first + i, &ch->meta[i], owner, states);
        }
    }
    return n;
}

uint32_t shmx_pool_reclaim_owner(shmx_pool_t *p, uint32_t owner) {
    return reclaim(p, owner, 1u << SHMX_SLOT_CLAIMED | 1u << SHMX_SLOT_SENT);
}

uint32_t shmx_pool_reclaim_sent(shmx_pool_t *p, uint32_t owner) { return reclaim(p, owner, 1u << SHMX_SLOT_SENT); }

/* The metadata of slot @i of class @c if this process has it mapped (no map hook: the host maps all). */
static shmx_slot_meta_t *mapped_meta(shmx_pool_t *p, uint32_t c, uint32_t i) {
    shmx_pool_class_t *k = &p->cls[c];
    if (i < k->slot_count) return &k->meta[i];
    const shmx_pool_chunk_t *ch = find_chunk(p, c, i);
    return ch == NULL ? NULL : &ch->meta[i - ch->first];
}

uint32_t shmx_pool_rebuild(shmx_pool_t *p) {
    shmx_pool_stats_t before;
    shmx_pool_stats(p, &before);
    uint32_t listed = 0, now_free = 0;
    for (uint32_t c = 0; c < p->class_count; c++) {
        listed += before.free_slots[c];
        uint32_t end = shmx_pool_class_end(p, c);
        uint32_t top = 0; /* index + 1 of the chain built so far, pushed from the highest index down */
        for (uint32_t i = end; i-- > 0;) {
            shmx_slot_meta_t *m = mapped_meta(p, c, i);
            if (m == NULL) continue;
            /* Relaxed throughout: nobody else runs; the heads' release stores publish it all. */
            uint32_t state = atomic_load_explicit(&m->state, memory_order_relaxed);
            uint32_t owner = atomic_load_explicit(&m->owner, memory_order_relaxed);
            _Atomic uint64_t *led = ledger_word(p, c, i);
            if (led != NULL) {
                /* The ledger decides: what the host holds is kept, as the ledger says it is; all
                 * the rest is free, whatever a guest wrote into its owner and state. */
                uint64_t e = atomic_load_explicit(led, memory_order_relaxed);
                if (LEDGER_HOLDER(e) == LEDGER_CLAIMED || LEDGER_HOLDER(e) == LEDGER_TAKEN) {
                    atomic_store_explicit(&m->generation, LEDGER_GEN(e), memory_order_relaxed);
                    atomic_store_explicit(&m->owner, SHMX_OWNER_HOST, memory_order_relaxed);
                    atomic_store_explicit(&m->state,
                                          LEDGER_HOLDER(e) == LEDGER_CLAIMED ? SHMX_SLOT_CLAIMED : SHMX_SLOT_SENT,
                                          memory_order_relaxed);
                    continue;
                }
                atomic_store_explicit(led, 0, memory_order_relaxed);
            } else if ((state == SHMX_SLOT_CLAIMED || state == SHMX_SLOT_SENT) && owner != SHMX_OWNER_NONE) {
                continue;
            }
            if (state != SHMX_SLOT_FREE) {
                /* Taken off a list and never owned, or (ledger) held by nobody the host knows:
                 * whoever took it is gone; its reference dies with it. */
                uint32_t gen = atomic_load_explicit(&m->generation, memory_order_relaxed);
                atomic_store_explicit(&m->generation, next_generation(gen), memory_order_relaxed);
            }
            atomic_store_explicit(&m->state, SHMX_SLOT_FREE, memory_order_relaxed);
            atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
            atomic_store_explicit(&m->next, top, memory_order_relaxed);
            top = i + 1u;
            now_free++;
        }
        for (uint32_t sh = 0; sh < SHMX_POOL_SHARDS; sh++) {
            _Atomic uint64_t *h = head_of(p, c, sh);
            uint64_t old = atomic_load_explicit(h, memory_order_relaxed);
            /* Release: the links and states above are visible to the next pop (acquire). The tag
             * still moves on, so a stale head anyone kept can never match again. */
            atomic_store_explicit(h, HEAD_MAKE(HEAD_TAG(old) + 1u, sh == 0 ? top : 0u), memory_order_release);
        }
    }
    shmx_waitpoint_notify(&p->ctl->freed);
    return now_free > listed ? now_free - listed : 0u;
}

/* Words of @count ledger entries at @led naming the host as holder. */
static uint32_t count_held(const shmx_ledger_word_t *led, uint32_t count) {
    uint32_t n = 0;
    for (uint32_t i = 0; led != NULL && i < count; i++) {
        /* Relaxed: a snapshot for diagnostics. */
        uint32_t holder = LEDGER_HOLDER(atomic_load_explicit(&led[i].word, memory_order_relaxed));
        n += holder == LEDGER_CLAIMED || holder == LEDGER_TAKEN;
    }
    return n;
}

uint32_t shmx_pool_host_held(shmx_pool_t *p) {
    uint32_t n = 0;
    for (uint32_t c = 0; p->ledger_on && c < p->class_count; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        n += count_held(k->ledger, k->slot_count);
        /* Acquire: pairs with the release in shmx_pool_add_extent. */
        uint32_t chunks = atomic_load_explicit(&k->chunk_count, memory_order_acquire);
        for (uint32_t j = 0; j < chunks; j++) n += count_held(k->chunk[j].ledger, k->chunk[j].count);
    }
    return n;
}

/* Count the states of @count slots at @meta into @out's class @c entries. */
static void count_states(const shmx_slot_meta_t *meta, uint32_t count, uint32_t c, shmx_pool_stats_t *out) {
    for (uint32_t i = 0; i < count; i++) {
        uint32_t s = atomic_load_explicit(&meta[i].state, memory_order_relaxed);
        if (s == SHMX_SLOT_CLAIMED) out->claimed_slots[c]++;
        else if (s == SHMX_SLOT_SENT) out->sent_slots[c]++;
    }
    out->total_slots[c] += count;
}

void shmx_pool_stats(shmx_pool_t *p, shmx_pool_stats_t *out) {
    *out = (shmx_pool_stats_t){.class_count = p->class_count};
    for (uint32_t c = 0; c < p->class_count; c++) {
        const shmx_pool_class_t *k = &p->cls[c];
        count_states(k->meta, k->slot_count, c, out);
        /* Acquire: pairs with the release in shmx_pool_add_extent. */
        uint32_t chunks = atomic_load_explicit(&k->chunk_count, memory_order_acquire);
        for (uint32_t j = 0; j < chunks; j++) count_states(k->chunk[j].meta, k->chunk[j].count, c, out);
        /* At most total steps over all shards, each link checked: a cycle, a wild link or
         * one into an extent not mapped here ends a walk (stats never map anything). */
        const uint32_t total = out->total_slots[c];
        for (uint32_t sh = 0; sh < SHMX_POOL_SHARDS; sh++) {
            uint32_t top = HEAD_TOP(atomic_load_explicit(head_of(p, c, sh), memory_order_acquire));
            while (top != 0 && out->free_slots[c] < total) {
                uint32_t i = top - 1u;
                const shmx_slot_meta_t *m = NULL;
                if (i < k->slot_count) {
                    m = &k->meta[i];
                } else {
                    const shmx_pool_chunk_t *ch = find_chunk(p, c, i);
                    if (ch != NULL) m = &ch->meta[i - ch->first];
                }
                if (m == NULL) break;
                out->free_slots[c]++;
                top = atomic_load_explicit(&m->next, memory_order_relaxed);
            }
        }
    }
}

/* ---- extents ------------------------------------------------------------------------ */

int shmx_pool_class_empty(const shmx_pool_t *p, uint32_t cls) {
    for (uint32_t sh = 0; sh < SHMX_POOL_SHARDS; sh++) {
        /* Relaxed: a snapshot for a decision that tolerates being stale either way. */
        if (HEAD_TOP(atomic_load_explicit(head_of(p, cls, sh), memory_order_relaxed)) != 0) return 0;
    }
    return 1;
}

uint32_t shmx_pool_class_end(shmx_pool_t *p, uint32_t cls) {
    const shmx_pool_class_t *k = &p->cls[cls];
    /* Acquire: pairs with the release in shmx_pool_add_extent. */
    uint32_t n = atomic_load_explicit(&k->chunk_count, memory_order_acquire);
    return n == 0 ? k->slot_count : k->chunk[n - 1u].first + k->chunk[n - 1u].count;
}

/* Ledger words for @count slots, all 0 (nothing known: the host holds none of them yet), or NULL. */
static shmx_ledger_word_t *ledger_alloc(uint32_t count) {
    shmx_ledger_word_t *led = aligned_alloc(alignof(shmx_ledger_word_t), (size_t)count * sizeof *led);
    if (led != NULL) memset(led, 0, (size_t)count * sizeof *led);
    return led;
}

int shmx_pool_add_extent(shmx_pool_t *p, uint32_t cls, uint32_t first, uint32_t count, void *base, size_t len) {
    if (cls >= p->class_count || base == NULL) return -SHMX_EINVAL;
    shmx_pool_class_t *k = &p->cls[cls];
    /* Relaxed: only the (serialised) caller raises these counts. */
    uint32_t n = atomic_load_explicit(&k->chunk_count, memory_order_relaxed);
    uint32_t regions = atomic_load_explicit(&p->region_count, memory_order_relaxed);
    shmx_extent_layout_t lay;
    if (n == SHMX_MAX_EXTENTS || regions == SHMX_MAX_EXTENTS || first != shmx_pool_class_end(p, cls) ||
        count > k->chunk_slots || (n > 0 && k->chunk[n - 1u].count != k->chunk_slots) ||
        count > SHMX_POOL_MAX_INDEX - first || shmx_extent_layout(k->slot_size, count, &lay) != 0 ||
        lay.total_bytes != len)
        return -SHMX_EINVAL;
    shmx_ledger_word_t *led = NULL;
    if (p->ledger_on) {
        led = ledger_alloc(count);
        if (led == NULL) return -ENOMEM;
    }
    k->chunk[n] = (shmx_pool_chunk_t){.meta = (shmx_slot_meta_t *)base,
                                      .data = (uint8_t *)base + lay.data_offset,
                                      .ledger = led,
                                      .first = first,
                                      .count = count};
    p->region[regions] = (shmx_pool_region_t){.base = base, .len = len};
    /* Release: the entries above are complete before a lookup (acquire) can see them. */
    atomic_store_explicit(&k->chunk_count, n + 1u, memory_order_release);
    atomic_store_explicit(&p->region_count, regions + 1u, memory_order_release);
    return 0;
}

int shmx_pool_push_extent(shmx_pool_t *p, uint32_t cls, uint32_t first) {
    if (cls >= p->class_count || first < p->cls[cls].slot_count) return -SHMX_EINVAL;
    const shmx_pool_chunk_t *ch = find_chunk(p, cls, first);
    if (ch == NULL || ch->first != first) return -SHMX_EINVAL;
    if (push_chain(p, cls, first, &ch->meta[ch->count - 1u]) != 0) return -SHMX_ECORRUPT;
    shmx_waitpoint_notify(&p->ctl->freed);
    return 0;
}

void shmx_pool_faults(const shmx_pool_t *p, shmx_pool_faults_t *out) {
    /* Relaxed: statistics. */
    out->lists_cut = atomic_load_explicit(&p->lists_cut, memory_order_relaxed);
    out->slots_skipped = atomic_load_explicit(&p->slots_skipped, memory_order_relaxed);
    out->refs_refused = atomic_load_explicit(&p->refs_refused, memory_order_relaxed);
}

/* ---- the ledger's memory ------------------------------------------------------------- */

int shmx_pool_ledger_enable(shmx_pool_t *p) {
    if (p->ledger_on) return 0;
    for (uint32_t c = 0; c < p->class_count; c++) {
        /* Relaxed: the caller runs alone (right after shmx_pool_init). */
        if (atomic_load_explicit(&p->cls[c].chunk_count, memory_order_relaxed) != 0) return -SHMX_ESTATE;
    }
    for (uint32_t c = 0; c < p->class_count; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        if (k->slot_count == 0) continue;
        k->ledger = ledger_alloc(k->slot_count);
        if (k->ledger == NULL) {
            shmx_pool_fini(p);
            return -ENOMEM;
        }
    }
    p->ledger_on = 1;
    return 0;
}

void shmx_pool_fini(shmx_pool_t *p) {
    for (uint32_t c = 0; c < p->class_count && c < SHMX_MAX_CLASSES; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        free((void *)k->ledger);
        k->ledger = NULL;
        /* Relaxed: nobody else uses the pool any more. */
        uint32_t chunks = atomic_load_explicit(&k->chunk_count, memory_order_relaxed);
        for (uint32_t j = 0; j < chunks; j++) {
            free((void *)k->chunk[j].ledger);
            k->chunk[j].ledger = NULL;
        }
    }
    p->ledger_on = 0;
}

int shmx_pool_region(const shmx_pool_t *p, int i, void **base, size_t *len) {
    if (p == NULL || base == NULL || len == NULL || i < 0) return -SHMX_EINVAL;
    /* Acquire: pairs with the release in shmx_pool_add_extent. */
    if ((uint32_t)i >= atomic_load_explicit(&p->region_count, memory_order_acquire)) return -SHMX_EINVAL;
    *base = p->region[i].base;
    *len = p->region[i].len;
    return 0;
}
