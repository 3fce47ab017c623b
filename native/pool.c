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
 * metadata: every value read from the segment is loaded once, range-checked,
 * and a slot that comes off a list in any state but FREE is reported as
 * corruption instead of being handed out.
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

/* Metadata and data of @ref's slot; 0, or -1 if the class or index is out of range. */
static inline int locate(shmx_pool_t *p, const shmx_slot_ref_t *ref, shmx_slot_meta_t **meta, uint8_t **data) {
    if (ref->cls >= p->class_count) return -1;
    shmx_pool_class_t *k = &p->cls[ref->cls];
    uint32_t i = ref->index;
    if (__builtin_expect(i < k->slot_count, 1)) {
        *meta = &k->meta[i];
        *data = k->data + (uint64_t)i * k->slot_size;
        return 0;
    }
    const shmx_pool_chunk_t *ch = extent_chunk(p, ref->cls, i);
    if (ch == NULL) return -1;
    *meta = &ch->meta[i - ch->first];
    *data = ch->data + (uint64_t)(i - ch->first) * k->slot_size;
    return 0;
}

/* ---- the free lists ---------------------------------------------------------- */

/*
 * Take the top slot of shard @sh of class @c and mark it CLAIMED; *@meta is
 * its metadata. Returns its index, POP_EMPTY, POP_BUSY (too much contention:
 * try again later) or -SHMX_ECORRUPT.
 */
static int64_t pop(shmx_pool_t *p, uint32_t c, uint32_t sh, shmx_slot_meta_t **meta) {
    const uint32_t own = p->cls[c].slot_count;
    _Atomic uint64_t *headp = head_of(p, c, sh);
    /* Pairs with the release CAS in push: the slot's next link and FREE state are visible. */
    uint64_t head = atomic_load_explicit(headp, memory_order_acquire);
    for (uint32_t attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        uint32_t top = HEAD_TOP(head);
        if (top == 0) return POP_EMPTY;
        /* A slot on the list was announced before it was pushed: unknown even after the
         * map hook means the head is garbage. */
        shmx_slot_meta_t *m = slot_meta(p, c, top - 1u);
        if (m == NULL) return -SHMX_ECORRUPT;
        uint32_t next = atomic_load_explicit(&m->next, memory_order_relaxed);
        if (next > own && !known(p, c, next - 1u)) {
            /* Only corruption if the head did not move meanwhile (then the link was live). */
            uint64_t again = atomic_load_explicit(headp, memory_order_acquire);
            if (again == head) return -SHMX_ECORRUPT;
            head = again;
            continue;
        }
        /* acq_rel: orders after the pushes we rely on, and before our later state change;
         * on failure `head` is reloaded (acquire, as above). */
        if (atomic_compare_exchange_weak_explicit(headp, &head, HEAD_MAKE(HEAD_TAG(head) + 1u, next),
                                                  memory_order_acq_rel, memory_order_acquire)) {
            uint32_t expected = SHMX_SLOT_FREE;
            /* The unchanged tagged head proves the slot was on the list, hence FREE; if it is
             * not, the list lied. Pairs with the release store of FREE in shmx_pool_free. */
            if (!atomic_compare_exchange_strong_explicit(&m->state, &expected, SHMX_SLOT_CLAIMED,
                                                         memory_order_acq_rel, memory_order_acquire))
                return -SHMX_ECORRUPT;
            *meta = m;
            return (int64_t)(top - 1u);
        }
    }
    return POP_BUSY;
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
    int64_t result; /* slot index or -SHMX_ECORRUPT once ready */
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
            if (r >= 0 || r == -SHMX_ECORRUPT) {
                t->cls = c;
                t->result = r;
                return 1;
            }
        }
    }
    return 0;
}

int shmx_pool_alloc(shmx_pool_t *p, uint32_t size, uint32_t owner, int64_t deadline_ns,
                    const shmx_idle_t *idle, shmx_slot_ref_t *out) {
    if (owner == SHMX_OWNER_NONE) return -SHMX_EINVAL;
    alloc_try_t t = {.p = p, .shard = my_shard(), .first = 0, .cls = 0, .result = 0, .meta = NULL};
    while (t.first < p->class_count && p->cls[t.first].slot_size < size) t.first++;
    if (t.first == p->class_count) return -SHMX_ETOOBIG;

    if (!try_alloc(&t)) {
        /* Every fitting class is empty: ask for more before settling down to wait. */
        if (p->grow != NULL) p->grow(p->hook_arg, t.first);
        /* Pairs with shmx_waitpoint_notify in shmx_pool_free and shmx_pool_push_extent. */
        int rc = shmx_wait_until(&p->ctl->freed, try_alloc, &t, deadline_ns, idle);
        if (rc == -ETIMEDOUT) return -SHMX_EWOULDBLOCK;
        if (rc != 0) return rc;
    }
    if (t.result < 0) return (int)t.result;

    uint32_t i = (uint32_t)t.result;
    shmx_slot_meta_t *m = t.meta;
    /* Relaxed: the slot is ours (CLAIMED by our CAS); the channel's publish orders it for others. */
    atomic_store_explicit(&m->owner, owner, memory_order_relaxed);
    out->cls = t.cls;
    out->index = i;
    /* Only a free changes the generation, and nobody frees a slot nobody holds yet. */
    out->generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
    out->reserved = 0;
    return 0;
}

/* ---- references ---------------------------------------------------------------- */

int shmx_pool_resolve(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t state, uint32_t owner,
                      void **data, uint32_t *size) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    if (locate(p, ref, &m, &d) != 0) return -SHMX_EBADSLOT;
    /* Acquire pairs with the release of the state change by shmx_pool_send or the allocating CAS. */
    if (atomic_load_explicit(&m->state, memory_order_acquire) != state ||
        atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != owner)
        return -SHMX_EBADSLOT;
    *data = d;
    *size = p->cls[ref->cls].slot_size;
    return 0;
}

int shmx_pool_send(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t from, uint32_t to) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    if (to == SHMX_OWNER_NONE || locate(p, ref, &m, &d) != 0) return -SHMX_EBADSLOT;
    if (atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != from)
        return -SHMX_EBADSLOT;
    uint32_t expected = SHMX_SLOT_CLAIMED;
    /* Release: the sender's payload writes happen before SENT (the ring's publish also orders them). */
    if (!atomic_compare_exchange_strong_explicit(&m->state, &expected, SHMX_SLOT_SENT, memory_order_release,
                                                 memory_order_relaxed))
        return -SHMX_EBADSLOT;
    atomic_store_explicit(&m->owner, to, memory_order_relaxed);
    return 0;
}

int shmx_pool_free(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t owner) {
    shmx_slot_meta_t *m;
    uint8_t *d;
    /* NONE owns nothing: it marks slots between an allocation's claim and its owner store. */
    if (owner == SHMX_OWNER_NONE || locate(p, ref, &m, &d) != 0) return -SHMX_EBADSLOT;
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
    uint32_t next_gen = gen + 1u == 0 ? 1u : gen + 1u; /* 0 stays never live, even after a wrap */
    if (!atomic_compare_exchange_strong_explicit(&m->generation, &gen, next_gen, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return -SHMX_EBADSLOT;
    atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
    /* Release pairs with the acquiring state CAS in pop; push's release CAS publishes it too. */
    atomic_store_explicit(&m->state, SHMX_SLOT_FREE, memory_order_release);
    /* Legitimate contention never fails a thousand CASes in a row: a peer is hammering the head. */
    if (push_chain(p, ref->cls, ref->index, m) != 0) return -SHMX_ECORRUPT;
    shmx_waitpoint_notify(&p->ctl->freed);
    return 0;
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

/* Free every slot @owner holds in a state of @states (see reclaim_one). */
static uint32_t reclaim(shmx_pool_t *p, uint32_t owner, uint32_t states) {
    uint32_t n = 0;
    /*
     * A scan is fine here: it runs when a peer leaves, not per message. The
     * references are rebuilt from the current generations, so this is for an
     * owner that no longer runs; one still freeing its own slots meanwhile
     * could have a slot pushed twice, which the next pop reports as corruption.
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
            if ((state == SHMX_SLOT_CLAIMED || state == SHMX_SLOT_SENT) && owner != SHMX_OWNER_NONE) continue;
            if (state != SHMX_SLOT_FREE) {
                /* Taken off a list and never owned: whoever took it is gone; its reference dies with it. */
                uint32_t gen = atomic_load_explicit(&m->generation, memory_order_relaxed);
                atomic_store_explicit(&m->generation, gen + 1u == 0 ? 1u : gen + 1u, memory_order_relaxed);
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
    k->chunk[n] = (shmx_pool_chunk_t){
        .meta = (shmx_slot_meta_t *)base, .data = (uint8_t *)base + lay.data_offset, .first = first, .count = count};
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

int shmx_pool_region(const shmx_pool_t *p, int i, void **base, size_t *len) {
    if (p == NULL || base == NULL || len == NULL || i < 0) return -SHMX_EINVAL;
    /* Acquire: pairs with the release in shmx_pool_add_extent. */
    if ((uint32_t)i >= atomic_load_explicit(&p->region_count, memory_order_acquire)) return -SHMX_EINVAL;
    *base = p->region[i].base;
    *len = p->region[i].len;
    return 0;
}
