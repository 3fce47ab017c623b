/*
 * Seed writer: fuzz_seeds DIR writes the starting corpus of every harness
 * under DIR/<harness>/, made with the library's own encoders (frames, rings,
 * segment headers), so that each harness starts from inputs that get past
 * its first checks. The output is committed as tests-native/fuzz/corpus;
 * scripts/fuzz --seeds regenerates it.
 */
#include <shmx/config.h>
#include <shmx/frame.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_ops.h"
#include "layout.h"
#include "ring.h"
#include "segment.h"

static const char *out_dir;

/* A growing byte string. */
typedef struct buf {
    uint8_t b[8192];
    size_t n;
} buf_t;

static void put(buf_t *s, uint64_t v, int bytes) {
    for (int i = 0; i < bytes && s->n < sizeof s->b; i++) s->b[s->n++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(buf_t *s, const void *p, size_t n) {
    if (n > sizeof s->b - s->n) n = sizeof s->b - s->n;
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void save(const char *harness, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, harness, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static uint8_t payload[4096];

/* ---- frame ------------------------------------------------------------------ */

static size_t frame(uint8_t *dst, uint16_t type, uint8_t flags, uint64_t id, uint32_t len) {
    return (size_t)shmx_frame_encode(dst, 24u + len, type, flags, id, payload, len);
}

static void frame_seeds(void) {
    uint8_t f[24 + 512];
    size_t n;
    n = frame(f, SHMX_TYPE_HEARTBEAT, 0, 1, 0);
    save("frame", "valid-empty", f, n);
    n = frame(f, SHMX_TYPE_DATA, 0, 7, 1);
    save("frame", "valid-1-byte", f, n);
    n = frame(f, SHMX_TYPE_DATA, SHMX_FLAG_MORE, 0x0102030405060708ull, 200);
    save("frame", "valid-more-200", f, n);
    n = frame(f, 0xFFFF, 0, UINT64_MAX, 512);
    save("frame", "valid-app-type-512", f, n);
    n = frame(f, SHMX_TYPE_DATA, 0, 3, 100);
    save("frame", "truncated-payload", f, n - 10u);
    save("frame", "header-only-of-100", f, 24);
    f[30] ^= 0x01; /* one payload bit */
    save("frame", "bad-crc", f, n);
    n = frame(f, SHMX_TYPE_DATA, 0, 3, 16);
    f[4] = 2;
    save("frame", "bad-version", f, n);
    n = frame(f, SHMX_TYPE_DATA, 0, 3, 16);
    f[5] = 0x80;
    save("frame", "bad-flags", f, n);
    n = frame(f, SHMX_TYPE_DATA, 0, 3, 16);
    f[8] = 0xFF, f[9] = 0xFF, f[10] = 0xFF, f[11] = 0xFF; /* length 4 GiB - 1 */
    save("frame", "huge-length", f, n);
    save("frame", "short-23", f, 23);
}

/* ---- record ------------------------------------------------------------------ */

/*
 * A ring of @cap bytes (a power of two, 64..4096) whose consumer starts at
 * @head, with @count inline records of @len payload bytes committed by the
 * real producer, dumped from the head on, as fuzz_record.c lays the input.
 */
static void ring_image(buf_t *s, uint32_t cap, uint64_t head, int count, uint32_t len, int slot) {
    shmx_ring_ctl_t *ctl = aligned_alloc(SHMX_CACHE_LINE, sizeof *ctl);
    uint8_t *data = aligned_alloc(8, cap);
    shmx_ring_format(ctl, data, cap);
    atomic_store_explicit(&ctl->head, head, memory_order_relaxed);
    atomic_store_explicit(&ctl->tail, head, memory_order_relaxed);
    shmx_ring_t r;
    shmx_ring_attach(&r, ctl, data, cap);
    for (int i = 0; i < count; i++) {
        void *body;
        uint32_t body_len = slot ? 24u + (uint32_t)sizeof(shmx_slot_ref_t) : 24u + len;
        if (shmx_ring_claim(&r, body_len, slot ? SHMX_RECORD_SLOT : SHMX_RECORD_INLINE, &body) != 0) break;
        if (slot) {
            shmx_frame_header_encode(body, SHMX_TYPE_DATA, 0, (uint64_t)i + 1u, payload, len);
            shmx_slot_ref_t ref = {0, (uint32_t)i, 1, 0};
            memcpy((uint8_t *)body + 24, &ref, sizeof ref);
        } else {
            shmx_frame_encode(body, body_len, SHMX_TYPE_DATA, 0, (uint64_t)i + 1u, payload, len);
        }
        shmx_ring_commit(&r);
    }
    uint32_t sel = 0;
    while ((64u << sel) != cap) sel++;
    put(s, sel, 1);
    put(s, head, 8);
    put(s, r.tail - head, 2);
    for (uint32_t i = 0; i < cap; i++) put(s, data[(head + i) & (cap - 1u)], 1);
    free(data);
    free(ctl);
}

static void record_seeds(void) {
    buf_t s = {.n = 0};
    ring_image(&s, 256, 0, 3, 20, 0);
    put(&s, REC_PEEK, 1), put(&s, REC_PEEK, 1), put(&s, REC_RELEASE_ONE, 1), put(&s, REC_PEEK, 1);
    put(&s, REC_RELEASE_ALL, 1);
    save("record", "inline-3-peek-release", s.b, s.n);

    s.n = 0; /* records that wrap: padding at the end, the record at 0 */
    ring_image(&s, 128, 96, 2, 30, 0);
    put(&s, REC_PEEK, 1), put(&s, REC_PEEK, 1), put(&s, REC_RELEASE_ALL, 1);
    save("record", "wrap-with-padding", s.b, s.n);

    s.n = 0;
    ring_image(&s, 512, 1ull << 40, 4, 0, 1);
    put(&s, REC_PEEK, 1), put(&s, REC_RELEASE_ONE, 1), put(&s, REC_PEEK, 1);
    save("record", "slot-records", s.b, s.n);

    s.n = 0; /* a lying header: body length past the end */
    ring_image(&s, 64, 0, 1, 8, 0);
    put(&s, REC_WRITE_WORD, 1), put(&s, 0, 2), put(&s, 0x0002000000001000ull, 8), put(&s, REC_PEEK, 1);
    save("record", "body-length-past-end", s.b, s.n);

    s.n = 0; /* producer claims against a consumer head that moves, then lies */
    ring_image(&s, 256, 8, 0, 0, 0);
    put(&s, REC_CLAIM, 1), put(&s, 40, 2), put(&s, 0, 1), put(&s, 0x41, 1);
    put(&s, REC_PEEK, 1), put(&s, REC_RELEASE_ALL, 1);
    put(&s, REC_CLAIM, 1), put(&s, 100, 2), put(&s, 1, 1), put(&s, 0x43, 1);
    put(&s, REC_SET_HEAD, 1), put(&s, UINT64_MAX - 7u, 8);
    put(&s, REC_CLAIM, 1), put(&s, 16, 2), put(&s, 0, 1), put(&s, 0x45, 1);
    put(&s, REC_RELEASED_ARM, 1);
    save("record", "producer-claims-head-lies", s.b, s.n);

    s.n = 0; /* closed with records left: they drain first */
    ring_image(&s, 4096, 4000, 5, 500, 0);
    put(&s, REC_CLOSE, 1), put(&s, REC_PEEK, 1), put(&s, REC_PEEK, 1), put(&s, REC_RELEASE_ONE, 1);
    save("record", "closed-with-records", s.b, s.n);
}

/* ---- segment header ------------------------------------------------------------ */

static void tiny_config(shmx_config_t *cfg) {
    shmx_config_default(cfg);
    cfg->max_channels = 1;
    cfg->ring_bytes = 4096;
    cfg->inline_max = 64;
    cfg->class_count = 1;
    cfg->class_size[0] = 64;
    cfg->class_slots[0] = 1;
    cfg->max_payload = 64;
    cfg->max_message = 64;
    cfg->window_bytes = 64;
    cfg->pool_max_bytes = 64;
}

/* The header as shmx_segment_create writes it, preceded by the size XOR (0: the claimed size). */
static void header_seed(const char *name, const shmx_config_t *cfg, uint64_t size_xor, uint32_t ready) {
    shmx_layout_t lay;
    if (shmx_layout_compute(cfg, &lay) != 0) {
        fprintf(stderr, "seed %s: bad configuration: %s\n", name, shmx_config_problem(cfg));
        exit(1);
    }
    shmx_segment_header_t h;
    memset(&h, 0, sizeof h);
    h.magic = SHMX_SEGMENT_MAGIC;
    h.layout_version = SHMX_LAYOUT_VERSION;
    h.header_bytes = SHMX_HEADER_BYTES;
    h.total_bytes = lay.total_bytes;
    atomic_store_explicit(&h.ready, ready, memory_order_relaxed);
    h.config = *cfg;
    h.channels_offset = lay.channels_offset;
    h.channel_stride = lay.channel_stride;
    h.pool_offset = lay.pool_offset;
    memcpy(h.class_meta_offset, lay.class_meta_offset, sizeof h.class_meta_offset);
    memcpy(h.class_data_offset, lay.class_data_offset, sizeof h.class_data_offset);
    buf_t s = {.n = 0};
    put(&s, size_xor, 8);
    put_bytes(&s, &h, offsetof(shmx_segment_header_t, extent_count));
    save("segment_header", name, s.b, s.n);
}

static void segment_header_seeds(void) {
    shmx_config_t cfg;
    tiny_config(&cfg);
    header_seed("tiny-ready", &cfg, 0, SHMX_READY_MAGIC);
    header_seed("tiny-not-ready", &cfg, 0, 0);
    header_seed("tiny-file-one-page-short", &cfg, 4096u ^ 0u, SHMX_READY_MAGIC); /* xor flips a size bit */
    cfg.segment_mode = SHMX_SEGMENT_NAMED;
    header_seed("tiny-named", &cfg, 0, SHMX_READY_MAGIC);
    tiny_config(&cfg);
    cfg.max_channels = 3;
    cfg.class_count = 3;
    cfg.class_size[1] = 128, cfg.class_slots[1] = 5;
    cfg.class_size[2] = 4096, cfg.class_slots[2] = 2;
    cfg.max_payload = 4096, cfg.max_message = 8192, cfg.window_bytes = 4096, cfg.inline_max = 1000;
    cfg.pool_max_bytes = 1u << 20;
    header_seed("three-classes-three-channels", &cfg, 0, SHMX_READY_MAGIC);
    shmx_config_default(&cfg);
    header_seed("default-validate-only", &cfg, 0, SHMX_READY_MAGIC);
}

/* ---- adversary ----------------------------------------------------------------- */

static void adversary_seeds(void) {
    buf_t s = {.n = 0};
    /* Traffic both ways, inline and in slots, everything released. */
    put(&s, ADV_HOST_SEND, 1), put(&s, 10, 2);
    put(&s, ADV_HOST_SEND, 1), put(&s, 700, 2);
    put(&s, ADV_GUEST_RECEIVE, 1), put(&s, ADV_GUEST_RECEIVE, 1);
    put(&s, ADV_GUEST_SEND, 1), put(&s, 100, 2);
    put(&s, ADV_GUEST_SEND, 1), put(&s, 1024, 2);
    put(&s, ADV_HOST_RECEIVE, 1), put(&s, ADV_HOST_RECEIVE, 1);
    put(&s, ADV_HOST_RELEASE, 1), put(&s, ADV_HOST_RELEASE, 1);
    save("adversary", "traffic-both-ways", s.b, s.n);

    s.n = 0; /* the host holds, copies, batches, claims */
    for (int i = 0; i < 6; i++) put(&s, ADV_GUEST_SEND, 1), put(&s, (uint64_t)(i * 190), 2);
    put(&s, ADV_HOST_BATCH, 1), put(&s, 3, 1);
    put(&s, ADV_HOST_COPY, 1), put(&s, 64, 2);
    put(&s, ADV_HOST_COPY, 1), put(&s, 1024, 2);
    put(&s, ADV_HOST_CLAIM, 1), put(&s, 500, 2), put(&s, 0x31, 1);
    put(&s, ADV_HOST_CLAIM, 1), put(&s, 50, 2), put(&s, 0x30, 1);
    put(&s, ADV_HOST_RELEASE, 1), put(&s, ADV_HOST_STATS, 1);
    save("adversary", "host-batch-copy-claim", s.b, s.n);

    s.n = 0; /* forged records with valid CRCs: inline with a lying length, a slot the host never got */
    put(&s, ADV_FORGE_RECORD, 1), put(&s, 0x09, 1), put(&s, SHMX_TYPE_DATA, 2), put(&s, 0, 1), put(&s, 1, 1);
    put(&s, 40, 2), put(&s, 4000, 4);
    put(&s, ADV_HOST_RECEIVE, 1);
    put(&s, ADV_FORGE_META, 1), put(&s, 0x01, 1), put(&s, 0, 1), put(&s, 2, 1), put(&s, 2, 1), put(&s, 0, 1);
    put(&s, ADV_FORGE_RECORD, 1), put(&s, 0x07, 1), put(&s, SHMX_TYPE_DATA, 2), put(&s, 0, 1), put(&s, 2, 1);
    put(&s, 0, 1), put(&s, 2, 1), put(&s, 0, 4), put(&s, 100, 2);
    put(&s, ADV_HOST_RECEIVE, 1), put(&s, ADV_HOST_RELEASE, 1), put(&s, ADV_HOST_RELEASE, 1);
    save("adversary", "forged-records", s.b, s.n);

    s.n = 0; /* scribbles on ring positions and the free lists between sends */
    put(&s, ADV_GUEST_SEND, 1), put(&s, 300, 2);
    put(&s, ADV_WRITE64, 1), put(&s, 64 + 64, 4), put(&s, 0xFFFFFFFFFFFFFFF8ull, 8); /* host ring head */
    put(&s, ADV_HOST_SEND, 1), put(&s, 20, 2);
    put(&s, ADV_HOST_SEND, 1), put(&s, 300, 2);
    put(&s, ADV_WRITE32, 1), put(&s, 12288 + 4096 + 64, 4), put(&s, 0x7FFFFFFF, 8); /* into the pool */
    put(&s, ADV_HOST_RECEIVE, 1), put(&s, ADV_HOST_RECLAIM, 1), put(&s, ADV_HOST_STATS, 1);
    put(&s, ADV_WRITE8, 1), put(&s, 4096 + 8, 4), put(&s, 0x02, 8);
    put(&s, ADV_HOST_RECEIVE, 1);
    save("adversary", "scribbles", s.b, s.n);

    s.n = 0;
    put(&s, ADV_GUEST_SEND, 1), put(&s, 5, 2), put(&s, ADV_HOST_CLOSE, 1);
    put(&s, ADV_HOST_RECEIVE, 1), put(&s, ADV_HOST_SEND, 1), put(&s, 5, 2);
    save("adversary", "host-closes", s.b, s.n);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR   (writes DIR/<harness>/<seed>)\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 37u + 11u);
    frame_seeds();
    record_seeds();
    segment_header_seeds();
    adversary_seeds();
    return 0;
}
