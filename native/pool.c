/*
 * The slot pool: one Treiber stack of free slots per size class.
 *
 * A list head packs (index + 1) in its low 32 bits and a tag in its high 32
 * bits; every successful update bumps the tag, so a thread that read the head
 * before others popped and pushed the same slot fails its CAS instead of
 * installing a stale link (ABA). Peers may scribble on links, heads and
 * metadata: every value read from the segment is loaded once, range-checked,
 * and a slot that comes off a list in any state but FREE is reported as
 * corruption instead of being handed out.
 */
#include "pool.h"

#include <errno.h>
#include <stddef.h>

#include "shmx/errors.h"

_Static_assert(SHMX_FREE_TAG_BITS == 32u, "head = tag in the high 32 bits, index + 1 in the low 32");
_Static_assert(sizeof(((shmx_pool_ctl_t *)0)->free_head[0][0]) * 8u == 32u + SHMX_FREE_TAG_BITS,
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

static _Atomic uint64_t *head_of(const shmx_pool_t *p, uint32_t c) { return &p->ctl->free_head[c][0]; }

void shmx_pool_init(shmx_pool_t *p, uint8_t *base, const shmx_layout_t *lay, const shmx_config_t *cfg,
                    int format) {
    p->ctl = (shmx_pool_ctl_t *)(base + lay->pool_offset);
    p->class_count = cfg->class_count;
    for (uint32_t c = 0; c < SHMX_MAX_CLASSES; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        if (c >= cfg->class_count) {
            *k = (shmx_pool_class_t){0};
            continue;
        }
        k->meta = (shmx_slot_meta_t *)(base + lay->class_meta_offset[c]);
        k->data = base + lay->class_data_offset[c];
        k->slot_size = cfg->class_size[c];
        k->slot_count = cfg->class_slots[c];
    }
    if (!format) return;
    /* Relaxed stores: the segment's `ready` release store publishes the formatted pool. */
    atomic_store_explicit(&p->ctl->freed.seq, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ctl->freed.waiters, 0, memory_order_relaxed);
    for (uint32_t c = 0; c < SHMX_MAX_CLASSES; c++) {
        shmx_pool_class_t *k = &p->cls[c];
        for (uint32_t i = 0; i < k->slot_count; i++) {
            shmx_slot_meta_t *m = &k->meta[i];
            atomic_store_explicit(&m->next, i + 1u < k->slot_count ? i + 2u : 0u, memory_order_relaxed);
            atomic_store_explicit(&m->generation, 1, memory_order_relaxed); /* 0 is never a live generation */
            atomic_store_explicit(&m->state, SHMX_SLOT_FREE, memory_order_relaxed);
            atomic_store_explicit(&m->owner, SHMX_OWNER_NONE, memory_order_relaxed);
        }
        atomic_store_explicit(head_of(p, c), HEAD_MAKE(0, k->slot_count ? 1u : 0u), memory_order_relaxed);
    }
}

/*
 * Take the top slot of class @c and mark it CLAIMED. Returns its index,
 * POP_EMPTY, POP_BUSY (too much contention: try again later) or -SHMX_ECORRUPT.
 */
static int64_t pop(shmx_pool_t *p, uint32_t c) {
    const shmx_pool_class_t *k = &p->cls[c];
    _Atomic uint64_t *headp = head_of(p, c);
    /* Pairs with the release CAS in push: the slot's next link and FREE state are visible. */
    uint64_t head = atomic_load_explicit(headp, memory_order_acquire);
    for (uint32_t attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        uint32_t top = HEAD_TOP(head);
        if (top == 0) return POP_EMPTY;
        if (top > k->slot_count) return -SHMX_ECORRUPT;
        uint32_t next = atomic_load_explicit(&k->meta[top - 1u].next, memory_order_relaxed);
        if (next > k->slot_count) {
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
            if (!atomic_compare_exchange_strong_explicit(&k->meta[top - 1u].state, &expected, SHMX_SLOT_CLAIMED,
                                                         memory_order_acq_rel, memory_order_acquire))
                return -SHMX_ECORRUPT;
            return (int64_t)(top - 1u);
        }
    }
    return POP_BUSY;
}

/* Push slot @i of class @c (already FREE) onto its list. Returns 0 or POP_BUSY. */
static int push(shmx_pool_t *p, uint32_t c, uint32_t i) {
    _Atomic uint64_t *headp = head_of(p, c);
    shmx_slot_meta_t *m = &p->cls[c].meta[i];
    uint64_t head = atomic_load_explicit(headp, memory_order_relaxed);
    for (uint32_t attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        /* A garbage top is stored as a link and caught by the pop that follows it. */
        atomic_store_explicit(&m->next, HEAD_TOP(head), memory_order_relaxed);
        /* Release: publishes the link and the FREE state to the acquire load in pop. */
        if (atomic_compare_exchange_weak_explicit(headp, &head, HEAD_MAKE(HEAD_TAG(head) + 1u, i + 1u),
                                                  memory_order_release, memory_order_relaxed))
            return 0;
    }
    return POP_BUSY;
}

typedef struct alloc_try {
    shmx_pool_t *p;
    uint32_t first; /* smallest fitting class */
    uint32_t cls;
    int64_t result; /* slot index or -SHMX_ECORRUPT once ready */
} alloc_try_t;

/* Ready function for shmx_wait_until: one pop attempt per fitting class, smallest first. */
static int try_alloc(void *arg) {
    alloc_try_t *t = arg;
    for (uint32_t c = t->first; c < t->p->class_count; c++) {
        int64_t r = pop(t->p, c);
        if (r >= 0 || r == -SHMX_ECORRUPT) {
            t->cls = c;
            t->result = r;
            return 1;
        }
    }
    return 0;
}

int shmx_pool_alloc(shmx_pool_t *p, uint32_t size, uint32_t owner, int64_t deadline_ns,
                    const shmx_idle_t *idle, shmx_slot_ref_t *out) {
    if (owner == SHMX_OWNER_NONE) return -SHMX_EINVAL;
    alloc_try_t t = {.p = p, .first = 0, .cls = 0, .result = 0};
    while (t.first < p->class_count && p->cls[t.first].slot_size < size) t.first++;
    if (t.first == p->class_count) return -SHMX_ETOOBIG;

    /* Pairs with shmx_waitpoint_notify in shmx_pool_free (after its release push). */
    int rc = shmx_wait_until(&p->ctl->freed, try_alloc, &t, deadline_ns, idle);
    if (rc == -ETIMEDOUT) return -SHMX_EWOULDBLOCK;
    if (rc != 0) return rc;
    if (t.result < 0) return (int)t.result;

    uint32_t i = (uint32_t)t.result;
    shmx_slot_meta_t *m = &p->cls[t.cls].meta[i];
    /* Relaxed: the slot is ours (CLAIMED by our CAS); the channel's publish orders it for others. */
    atomic_store_explicit(&m->owner, owner, memory_order_relaxed);
    out->cls = t.cls;
    out->index = i;
    /* Only a free changes the generation, and nobody frees a slot nobody holds yet. */
    out->generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
    out->reserved = 0;
    return 0;
}

/* Metadata of @ref's slot, or NULL if the class or index is out of range. */
static shmx_slot_meta_t *meta_of(const shmx_pool_t *p, const shmx_slot_ref_t *ref) {
    if (ref->cls >= p->class_count || ref->index >= p->cls[ref->cls].slot_count) return NULL;
    return &p->cls[ref->cls].meta[ref->index];
}

int shmx_pool_resolve(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t state, uint32_t owner,
                      void **data, uint32_t *size) {
    shmx_slot_meta_t *m = meta_of(p, ref);
    if (m == NULL) return -SHMX_EBADSLOT;
    /* Acquire pairs with the release of the state change by shmx_pool_send or the allocating CAS. */
    if (atomic_load_explicit(&m->state, memory_order_acquire) != state ||
        atomic_load_explicit(&m->generation, memory_order_relaxed) != ref->generation ||
        atomic_load_explicit(&m->owner, memory_order_relaxed) != owner)
        return -SHMX_EBADSLOT;
    const shmx_pool_class_t *k = &p->cls[ref->cls];
    *data = k->data + (uint64_t)ref->index * k->slot_size;
    *size = k->slot_size;
    return 0;
}

int shmx_pool_send(shmx_pool_t *p, const shmx_slot_ref_t *ref, uint32_t from, uint32_t to) {
    shmx_slot_meta_t *m = meta_of(p, ref);
    if (m == NULL || to == SHMX_OWNER_NONE) return -SHMX_EBADSLOT;
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
    shmx_slot_meta_t *m = meta_of(p, ref);
    /* NONE owns nothing: it marks slots between an allocation's claim and its owner store. */
    if (m == NULL || owner == SHMX_OWNER_NONE) return -SHMX_EBADSLOT;
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
    if (push(p, ref->cls, ref->index) != 0) return -SHMX_ECORRUPT;
    shmx_waitpoint_notify(&p->ctl->freed);
    return 0;
}

uint32_t shmx_pool_reclaim_owner(shmx_pool_t *p, uint32_t owner) {
    uint32_t n = 0;
    /*
     * A scan is fine here: it runs when a peer leaves, not per message. The
     * references are rebuilt from the current generations, so this is for an
     * owner that no longer runs; one still freeing its own slots meanwhile
     * could have a slot pushed twice, which the next pop reports as corruption.
     */
    for (uint32_t c = 0; c < p->class_count; c++) {
        for (uint32_t i = 0; i < p->cls[c].slot_count; i++) {
            shmx_slot_meta_t *m = &p->cls[c].meta[i];
            if (atomic_load_explicit(&m->owner, memory_order_relaxed) != owner) continue;
            shmx_slot_ref_t ref = {.cls = c,
                                   .index = i,
                                   .generation = atomic_load_explicit(&m->generation, memory_order_relaxed),
                                   .reserved = 0};
            if (shmx_pool_free(p, &ref, owner) == 0) n++;
        }
    }
    return n;
}

void shmx_pool_stats(shmx_pool_t *p, shmx_pool_stats_t *out) {
    *out = (shmx_pool_stats_t){.class_count = p->class_count};
    for (uint32_t c = 0; c < p->class_count; c++) {
        const shmx_pool_class_t *k = &p->cls[c];
        out->total_slots[c] = k->slot_count;
        for (uint32_t i = 0; i < k->slot_count; i++) {
            uint32_t s = atomic_load_explicit(&k->meta[i].state, memory_order_relaxed);
            if (s == SHMX_SLOT_CLAIMED) out->claimed_slots[c]++;
            else if (s == SHMX_SLOT_SENT) out->sent_slots[c]++;
        }
        /* At most slot_count steps, each link range-checked: a cycle or a wild link ends the walk. */
        uint32_t top = HEAD_TOP(atomic_load_explicit(head_of(p, c), memory_order_acquire));
        while (top != 0 && top <= k->slot_count && out->free_slots[c] < k->slot_count) {
            out->free_slots[c]++;
            top = atomic_load_explicit(&k->meta[top - 1u].next, memory_order_relaxed);
        }
    }
}
