/*
 * libFuzzer harness, stateful: a host channel and a guest channel over entry 0
 * of a real segment (shmx_segment_create, as the host makes it), and an
 * adversary that owns the guest's half of the shared memory. The input is a
 * program of operations, each an op byte and its arguments:
 *
 *   host:      send, receive (held until released), release, receive_copy,
 *              receive_batch, claim then commit_len or abort, reclaim the
 *              guest's slots (as when it dies), walk the pool's lists, close
 *   guest:     send, receive and release (the legitimate guest code)
 *   adversary: write a byte, a 32-bit or a 64-bit word at any offset of the
 *              guest-writable region (channel control, both ring controls and
 *              data areas, pool control, every slot's metadata and data);
 *              forge a ring record with a valid CRC (inline or naming any
 *              slot) at any offset or where the host reads next; forge a
 *              slot's metadata
 *
 * Every call uses timeout 0 and there is no socket, so nothing may wait. The
 * host must never crash, hang or touch memory outside its mappings (ASan for
 * the heap; inaccessible guard pages around the segment). Every view the host receives must lie inside the segment (or the
 * caller's buffer). At the end the host drains the guest's ring (bounded),
 * both channels are freed, the host reclaims what the guest held and rebuilds
 * the free lists: its ledger (enabled as the host enables it) then says it
 * holds nothing, and the rebuild, trusting the ledger rather than what the
 * adversary wrote, makes every slot free.
 *
 * The fuzzer pins itself to one CPU: the pool picks its free-list shard by
 * CPU, and a run must not depend on where the scheduler put it.
 */
#include <sched.h>
#include <shmx/channel.h>
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <string.h>
#include <sys/mman.h>

#include "channel_internal.h"
#include "fuzz_common.h"
#include "fuzz_ops.h"
#include "layout.h"
#include "pool.h"
#include "segment.h"

#define MAX_HELD 256u
#define MAX_REGIONS 16u
#define MAX_STEPS 2048u

typedef struct region {
    uint8_t *base;
    uint64_t len;
} region_t;

typedef struct world {
    shmx_segment_t seg;
    shmx_pool_t host_pool;
    shmx_pool_t guest_pool;
    shmx_channel_t *host;
    shmx_channel_t *guest;
    shmx_message_t held[MAX_HELD]; /* host's received, unreleased messages, oldest first */
    uint32_t held_count;
    region_t region[MAX_REGIONS]; /* what the guest may write */
    uint32_t regions;
    uint64_t writable;
    int adversary_acted;
    void *guard[2];
} world_t;

static uint8_t pattern[1u << 16];
static uint8_t copy_buf[1u << 16];
static volatile uint8_t sink;

static void pin_cpu(void) {
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int pick = -1;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &allowed)) continue;
        if (pick < 0) pick = c;
        if ((c & (SHMX_POOL_SHARDS - 1)) == 0) { pick = c; break; } /* shard 0, where every slot starts */
    }
    if (pick < 0) return;
    CPU_ZERO(&one);
    CPU_SET(pick, &one);
    sched_setaffinity(0, sizeof one, &one);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    pin_cpu();
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)(i * 131u + 7u);
    return 0;
}

static void small_config(shmx_config_t *cfg) {
    shmx_config_default(cfg);
    cfg->max_channels = 1;
    cfg->ring_bytes = 4096;
    cfg->inline_max = 200;
    cfg->class_count = 2;
    cfg->class_size[0] = 256;
    cfg->class_slots[0] = 8;
    cfg->class_size[1] = 1024;
    cfg->class_slots[1] = 4;
    cfg->max_payload = 1024;
    cfg->max_message = 1024; /* no fragmented messages: their later fragments wait without a deadline */
    cfg->window_bytes = 2048;
    cfg->extent_bytes = 4096;
    cfg->pool_max_bytes = 8u * 256u + 4u * 1024u; /* no growth: the bare pool has no hooks anyway */
    cfg->transports = SHMX_TRANSPORT_SHM;
    cfg->liveness_ms = 0;
    cfg->spin_iterations = 0;
    cfg->yield_iterations = 0;
}

static void add_region(world_t *w, uint64_t off, uint64_t len) {
    FUZZ_CHECK(w->regions < MAX_REGIONS && off + len <= w->seg.size);
    w->region[w->regions++] = (region_t){w->seg.base + off, len};
    w->writable += len;
}

/*
 * Move the segment's mapping between two inaccessible pages, so that a stray
 * access just past either end faults at once (ASan does not watch shared
 * mappings). Done before any view of the segment exists; the memfd is the
 * same, so its contents stay.
 */
static void add_guards(world_t *w) {
    size_t len = (size_t)w->seg.size;
    uint8_t *area = mmap(NULL, len + 2u * 4096u, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FUZZ_CHECK(area != MAP_FAILED);
    void *moved = mmap(area + 4096, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->seg.fd, 0);
    FUZZ_CHECK(moved == area + 4096);
    munmap(w->seg.base, len);
    w->seg.base = moved;
    w->guard[0] = area;
    w->guard[1] = area + 4096 + len;
}

static int world_open(world_t *w) {
    shmx_config_t cfg;
    small_config(&cfg);
    if (shmx_segment_create(&cfg, "fuzz", &w->seg) != 0) return -1;
    add_guards(w);
    shmx_pool_init(&w->host_pool, w->seg.base, &w->seg.layout, &w->seg.config, 0);
    FUZZ_CHECK(shmx_pool_ledger_enable(&w->host_pool) == 0); /* as the host runs it */
    shmx_pool_init(&w->guest_pool, w->seg.base, &w->seg.layout, &w->seg.config, 0);
    /* As the host admits a guest: entry ACTIVE (release: pairs with the acquire of check_entry in guest.c). */
    atomic_store_explicit(&shmx_segment_channel(&w->seg, 0)->state, SHMX_CHANNEL_ACTIVE, memory_order_release);
    FUZZ_CHECK(shmx_channel_open_shm(&w->seg, &w->host_pool, 0, 1, 0, -1, &w->host) == 0);
    FUZZ_CHECK(shmx_channel_open_shm(&w->seg, &w->guest_pool, 0, 0, 0, -1, &w->guest) == 0);

    const shmx_layout_t *lay = &w->seg.layout;
    add_region(w, lay->channels_offset, lay->channel_stride); /* channel ctl, ring ctls, both rings */
    add_region(w, lay->pool_offset, sizeof(shmx_pool_ctl_t));
    for (uint32_t c = 0; c < cfg.class_count; c++) {
        add_region(w, lay->class_meta_offset[c], (uint64_t)cfg.class_slots[c] * sizeof(shmx_slot_meta_t));
        add_region(w, lay->class_data_offset[c], (uint64_t)cfg.class_slots[c] * cfg.class_size[c]);
    }
    return 0;
}

static void world_close(world_t *w) {
    for (int i = 0; i < 2; i++)
        if (w->guard[i] != NULL) munmap(w->guard[i], 4096);
    shmx_pool_fini(&w->host_pool);
    shmx_segment_close(&w->seg);
}

/* The address of writable offset @off (taken modulo the writable total), or NULL past the end for @n bytes. */
static uint8_t *writable_at(world_t *w, uint64_t off, uint32_t n) {
    off %= w->writable;
    for (uint32_t i = 0; i < w->regions; i++) {
        if (off < w->region[i].len) return off + n <= w->region[i].len ? w->region[i].base + off : NULL;
        off -= w->region[i].len;
    }
    return NULL;
}

/* A message view the host holds must lie in the segment; every byte is read (guard pages, ASan). */
static void check_view(world_t *w, const shmx_message_t *m) {
    const uint8_t *d = m->data;
    if (m->length == 0) return;
    FUZZ_CHECK(d >= w->seg.base && d + m->length <= w->seg.base + w->seg.size);
    FUZZ_CHECK(m->length <= w->seg.config.max_payload);
    uint8_t x = 0;
    for (uint32_t i = 0; i < m->length; i++) x ^= d[i];
    sink = x;
}

/*
 * Keep a received message. The channel's private FIFO of held records has
 * ring_bytes / 32 entries (a held record is at least 32 bytes and all of them
 * lie within one ring): holding more would overwrite its oldest entries.
 */
static void hold(world_t *w, const shmx_message_t *m) {
    FUZZ_CHECK(w->held_count < w->seg.config.ring_bytes / 32u && w->held_count < MAX_HELD);
    w->held[w->held_count++] = *m;
}

static int host_receive(world_t *w) {
    shmx_message_t m;
    int rc = shmx_channel_receive(w->host, &m, 0);
    FUZZ_CHECK(rc <= 0);
    if (rc != 0) return rc;
    check_view(w, &m);
    hold(w, &m);
    return 0;
}

static void host_release(world_t *w) {
    if (w->held_count == 0) return;
    int rc = shmx_channel_release(w->host, &w->held[0]);
    FUZZ_CHECK(rc == 0 || rc == -SHMX_EBADSLOT || rc == -SHMX_ECORRUPT); /* slot stolen or lists scribbled */
    memmove(w->held, w->held + 1, (w->held_count - 1u) * sizeof w->held[0]);
    w->held_count--;
}

static void host_batch(world_t *w, uint32_t max) {
    shmx_message_t m[8];
    uint32_t room = MAX_HELD - w->held_count;
    int want = (int)(max % 8u) + 1;
    if ((uint32_t)want > room) want = (int)room;
    if (want == 0) return;
    int n = shmx_channel_receive_batch(w->host, m, want, 0);
    FUZZ_CHECK(n <= want);
    for (int i = 0; i < n; i++) {
        check_view(w, &m[i]);
        hold(w, &m[i]);
    }
}

static void host_copy(world_t *w, uint32_t cap) {
    shmx_message_t meta;
    cap %= w->seg.config.max_payload + 64u;
    int64_t n = shmx_channel_receive_copy(w->host, copy_buf, cap, &meta, 0);
    if (n >= 0) FUZZ_CHECK((uint64_t)n <= cap && meta.data == copy_buf && meta.length == (uint32_t)n);
}

static void host_claim(world_t *w, uint32_t len, uint8_t how) {
    void *p;
    len %= w->seg.config.max_payload + 1u;
    int rc = shmx_channel_claim(w->host, len, 0, &p);
    if (rc != 0) return;
    FUZZ_CHECK(len == 0 || ((uint8_t *)p >= w->seg.base && (uint8_t *)p + len <= w->seg.base + w->seg.size));
    memset(p, how, len);
    if (how & 1u) shmx_channel_commit_len(w->host, len / 2u, SHMX_TYPE_DATA, 0, 0);
    else FUZZ_CHECK(shmx_channel_abort(w->host) == 0);
}

static void guest_receive(world_t *w) {
    shmx_message_t m;
    if (shmx_channel_receive(w->guest, &m, 0) != 0) return;
    if (m.length != 0) {
        const uint8_t *d = m.data;
        FUZZ_CHECK(d >= w->seg.base && d + m.length <= w->seg.base + w->seg.size);
    }
    shmx_channel_release(w->guest, &m);
}

/* Metadata and data of slot (@cls, @index) of the segment, or NULL. */
static shmx_slot_meta_t *slot_of(world_t *w, uint32_t cls, uint32_t index, uint8_t **data) {
    const shmx_config_t *cfg = &w->seg.config;
    if (cls >= cfg->class_count || index >= cfg->class_slots[cls]) return NULL;
    if (data != NULL)
        *data = w->seg.base + w->seg.layout.class_data_offset[cls] + (uint64_t)index * cfg->class_size[cls];
    return (shmx_slot_meta_t *)(w->seg.base + w->seg.layout.class_meta_offset[cls]) + index;
}

/* A record as a careful liar writes it: sound header and CRC, hostile fields. Clipped at the ring's end. */
static void forge_record(world_t *w, fuzz_in_t *in) {
    uint8_t how = fuzz_u8(in);
    uint32_t ring = w->seg.config.ring_bytes;
    uint8_t *data = shmx_segment_ring_data(&w->seg, 0, SHMX_RING_GUEST_TO_HOST);
    shmx_ring_ctl_t *ctl = shmx_segment_ring_ctl(&w->seg, 0, SHMX_RING_GUEST_TO_HOST);
    /* Where the host reads next (a head the adversary may have scribbled, so aligned here: a record header
     * needs its 8 bytes before the ring's end), or anywhere. */
    uint32_t off = ((how & 1u) ? (uint32_t)(atomic_load_explicit(&ctl->head, memory_order_relaxed) & (ring - 1u))
                               : fuzz_u16(in) % ring) &
                   ~7u;
    uint16_t type = fuzz_u16(in);
    uint8_t flags = fuzz_u8(in) & SHMX_FLAGS_KNOWN;
    uint64_t id = fuzz_u8(in);
    uint8_t body[24 + 1024];
    uint32_t body_len;
    shmx_record_header_t rh = {0, SHMX_RECORD_INLINE, 0};
    if (how & 2u) {
        /* One field per statement: the order the input is read in must not depend on the compiler. */
        shmx_slot_ref_t ref = {0, 0, 0, 0};
        ref.cls = fuzz_u8(in) % 3u;
        ref.index = fuzz_u8(in) % 10u;
        ref.generation = fuzz_u32(in);
        uint32_t len = fuzz_u16(in) % 1100u;
        uint8_t *slot_data;
        shmx_slot_meta_t *m = slot_of(w, ref.cls, ref.index, &slot_data);
        if (how & 4u && m != NULL) ref.generation = atomic_load_explicit(&m->generation, memory_order_relaxed);
        const uint8_t *payload = pattern;
        if (m != NULL) {
            uint32_t size = w->seg.config.class_size[ref.cls];
            if (len > size) len = size;
            payload = slot_data;
        }
        shmx_frame_header_encode(body, type, flags, id, payload, len);
        memcpy(body + 24, &ref, sizeof ref);
        body_len = 24u + (uint32_t)sizeof ref;
        rh.kind = SHMX_RECORD_SLOT;
    } else {
        uint32_t len = fuzz_u16(in) % 1025u;
        shmx_frame_header_encode(body, type, flags, id, pattern, len);
        memcpy(body + 24, pattern, len);
        body_len = 24u + len;
    }
    rh.body_len = (how & 8u) ? fuzz_u32(in) : body_len; /* or a lie about the length */
    if (how & 16u) rh.kind = fuzz_u16(in);
    uint32_t room = ring - off;
    uint32_t n = 8u + body_len < room ? 8u + body_len : room;
    /* Body first, the header last (release), as a producer publishes. */
    memcpy(data + off + 8u, body, n - 8u);
    uint64_t word;
    memcpy(&word, &rh, sizeof word);
    atomic_store_explicit((_Atomic uint64_t *)(void *)(data + off), word, memory_order_release);
}

/* Metadata that claims a slot is the host's to receive (or anything else). */
static void forge_meta(world_t *w, fuzz_in_t *in) {
    uint8_t how = fuzz_u8(in);
    uint32_t cls = fuzz_u8(in) % 2u;
    uint32_t index = fuzz_u8(in) % 8u;
    shmx_slot_meta_t *m = slot_of(w, cls, index, NULL);
    uint32_t state = fuzz_u8(in) % 4u, owner = (how & 1u) ? SHMX_OWNER_HOST : fuzz_u32(in);
    uint32_t next = fuzz_u8(in) % 12u;
    if (m == NULL) return;
    atomic_store_explicit(&m->state, state, memory_order_relaxed);
    atomic_store_explicit(&m->owner, owner, memory_order_relaxed);
    if (how & 2u) atomic_store_explicit(&m->generation, fuzz_u32(in), memory_order_relaxed);
    if (how & 4u) atomic_store_explicit(&m->next, next, memory_order_relaxed);
}

static void adversary_write(world_t *w, fuzz_in_t *in, uint32_t n) {
    uint32_t off = fuzz_u32(in);
    uint64_t v = fuzz_u64(in);
    uint8_t *p = writable_at(w, off & ~(uint32_t)(n - 1u), n);
    if (p == NULL) return;
    /* Atomic stores of the width a peer would use on a shared word (no torn writes). */
    if (n == 1) atomic_store_explicit((_Atomic uint8_t *)p, (uint8_t)v, memory_order_relaxed);
    else if (n == 4) atomic_store_explicit((_Atomic uint32_t *)(void *)p, (uint32_t)v, memory_order_relaxed);
    else atomic_store_explicit((_Atomic uint64_t *)(void *)p, v, memory_order_relaxed);
}

static void run(world_t *w, fuzz_in_t *in) {
    for (uint32_t steps = 0; in->left > 0 && steps < MAX_STEPS; steps++) {
        uint8_t op = fuzz_u8(in);
        if (op == ADV_HOST_CLOSE) { /* rare on purpose: everything after it only reports closed */
            shmx_channel_close(w->host);
            continue;
        }
        switch (op % ADV_OPS) {
        case ADV_HOST_SEND: shmx_channel_send(w->host, SHMX_TYPE_DATA, 0, 0, pattern, fuzz_u16(in) % 1025u, 0); break;
        case ADV_HOST_RECEIVE: case ADV_HOST_RECEIVE + 1: host_receive(w); break;
        case ADV_HOST_RELEASE: host_release(w); break;
        case ADV_HOST_COPY: host_copy(w, fuzz_u16(in)); break;
        case ADV_HOST_BATCH: host_batch(w, fuzz_u8(in)); break;
        case ADV_HOST_CLAIM: { uint32_t len = fuzz_u16(in); host_claim(w, len, fuzz_u8(in)); break; }
        case ADV_GUEST_SEND: case ADV_GUEST_SEND + 1:
            shmx_channel_send(w->guest, SHMX_TYPE_DATA, 0, 0, pattern, fuzz_u16(in) % 1025u, 0);
            break;
        case ADV_GUEST_RECEIVE: guest_receive(w); break;
        case ADV_HOST_RECLAIM: shmx_pool_reclaim_owner(&w->host_pool, 0); break;
        case ADV_HOST_STATS: { shmx_pool_stats_t st; shmx_pool_stats(&w->host_pool, &st); break; }
        case ADV_WRITE8: w->adversary_acted = 1; adversary_write(w, in, 1); break;
        case ADV_WRITE32: w->adversary_acted = 1; adversary_write(w, in, 4); break;
        case ADV_WRITE64: w->adversary_acted = 1; adversary_write(w, in, 8); break;
        case ADV_FORGE_RECORD: case ADV_FORGE_RECORD + 1: w->adversary_acted = 1; forge_record(w, in); break;
        case ADV_FORGE_META: w->adversary_acted = 1; forge_meta(w, in); break;
        }
    }
}

/* The host's end of it: drain, free, reclaim, rebuild; then the accounts must balance. */
static void finish(world_t *w) {
    while (w->held_count > 0) host_release(w);
    /* Each record the host consumes is zeroed, so a drain ends within ring/8 records. */
    uint32_t n = 0;
    for (;;) {
        shmx_message_t m;
        int rc = shmx_channel_receive(w->host, &m, 0);
        if (rc == 0) {
            check_view(w, &m);
            shmx_channel_release(w->host, &m);
        } else if (rc == -SHMX_EEMPTY || rc == -SHMX_ECLOSED || rc == -SHMX_ECORRUPT) {
            break;
        }
        FUZZ_CHECK(++n <= w->seg.config.ring_bytes / 8u + 1u);
    }
    shmx_channel_free(w->guest);
    shmx_channel_free(w->host);
    shmx_pool_reclaim_owner(&w->host_pool, 0);
    shmx_pool_reclaim_owner(&w->host_pool, SHMX_OWNER_HOST);
    shmx_pool_stats_t st;
    if (!w->adversary_acted) {
        shmx_pool_stats(&w->host_pool, &st);
        for (uint32_t c = 0; c < st.class_count; c++)
            FUZZ_CHECK(st.free_slots[c] == st.total_slots[c] && st.claimed_slots[c] == 0 && st.sent_slots[c] == 0);
    }
    FUZZ_CHECK(shmx_pool_host_held(&w->host_pool) == 0); /* the host's ledger: it holds nothing now */
    uint32_t back = shmx_pool_rebuild(&w->host_pool);
    if (!w->adversary_acted) FUZZ_CHECK(back == 0);
    /* Alone, the host restores the accounts from its ledger whatever the adversary wrote: all free. */
    shmx_pool_stats(&w->host_pool, &st);
    for (uint32_t c = 0; c < st.class_count; c++)
        FUZZ_CHECK(st.free_slots[c] == st.total_slots[c] && st.claimed_slots[c] == 0 && st.sent_slots[c] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static world_t w; /* static: large, and reset per input */
    memset(&w, 0, sizeof w);
    FUZZ_CHECK(world_open(&w) == 0);
    fuzz_in_t in = {data, size};
    run(&w, &in);
    finish(&w);
    world_close(&w);
    return 0;
}
