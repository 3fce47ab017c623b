/*
 * libFuzzer harness: the ring-record validator a consumer runs on shared
 * ring data (shmx_ring_peek), and the producer's check of the consumer's
 * head (shmx_ring_claim), on a ring whose control block and data area are
 * exactly-sized heap blocks, so that ASan sees any read or write outside them.
 *
 * Input: capacity selector (1 byte: 64 << (b % 7)), start position (8),
 * tail distance (2), data area bytes laid from the start position on (as many
 * as the capacity), then a program of one-byte operations: peek (validate
 * and read the record, decode an inline frame), release the oldest or all
 * held records, rewrite a data word or byte, close, move the shared head or
 * tail as a lying peer would, claim and commit or abort as a producer, arm.
 * At the end the consumer drains the ring; that must end within capacity/8
 * records, since every record it releases is zeroed.
 */
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_ops.h"
#include "layout.h"
#include "ring.h"

#define MAX_HELD 512u /* capacity / 8 for the largest ring the input can ask for */

typedef struct ring_box {
    shmx_ring_ctl_t *ctl;
    uint8_t *data;
    uint32_t cap;
    shmx_ring_t cons;
    shmx_ring_t prod;
    uint64_t held[MAX_HELD]; /* ends of records peeked and not released, oldest first */
    uint32_t held_count;
} ring_box_t;

static volatile uint8_t sink;

/* A record peek accepted must lie inside the data area and inside head + capacity. */
static void check_record(ring_box_t *b, const shmx_ring_record_t *rec) {
    FUZZ_CHECK(rec->kind == SHMX_RECORD_INLINE || rec->kind == SHMX_RECORD_SLOT);
    FUZZ_CHECK(rec->body >= b->data + 8u);
    FUZZ_CHECK((size_t)(rec->body - b->data) + rec->body_len <= b->cap);
    FUZZ_CHECK(rec->end - b->cons.head <= b->cap);
    FUZZ_CHECK((rec->end & 7u) == 0);
    uint8_t x = 0;
    for (uint32_t i = 0; i < rec->body_len; i++) x ^= rec->body[i]; /* ASan checks every byte */
    sink = x;
    if (rec->kind == SHMX_RECORD_INLINE) {
        shmx_frame_t f;
        if (shmx_frame_decode(rec->body, rec->body_len, &f) == 0)
            FUZZ_CHECK((const uint8_t *)f.payload + f.length <= rec->body + rec->body_len);
    }
}

static int do_peek(ring_box_t *b) {
    shmx_ring_record_t rec;
    int rc = shmx_ring_peek(&b->cons, &rec);
    FUZZ_CHECK(rc == 0 || rc == -SHMX_EEMPTY || rc == -SHMX_ECLOSED || rc == -SHMX_ECORRUPT);
    if (rc != 0) return rc;
    check_record(b, &rec);
    FUZZ_CHECK(b->held_count < MAX_HELD); /* every record is at least 8 bytes of a held span */
    b->held[b->held_count++] = rec.end;
    return 0;
}

static void release_first(ring_box_t *b, uint32_t n) {
    if (n == 0 || n > b->held_count) return;
    FUZZ_CHECK(shmx_ring_release(&b->cons, b->held[n - 1u]) == 0);
    memmove(b->held, b->held + n, (b->held_count - n) * sizeof b->held[0]);
    b->held_count -= n;
}

static void do_claim(ring_box_t *b, fuzz_in_t *in) {
    uint32_t body_len = fuzz_u16(in) % (b->cap + 16u);
    uint16_t kind = (fuzz_u8(in) & 1u) ? SHMX_RECORD_SLOT : SHMX_RECORD_INLINE;
    uint8_t how = fuzz_u8(in);
    void *body = NULL;
    int rc = shmx_ring_claim(&b->prod, body_len, kind, &body);
    FUZZ_CHECK(rc == 0 || rc == -SHMX_EWOULDBLOCK || rc == -SHMX_ETOOBIG || rc == -SHMX_ECLOSED ||
               rc == -SHMX_ECORRUPT);
    if (rc != 0) return;
    uint8_t *p = body;
    FUZZ_CHECK(p >= b->data + 8u && (size_t)(p - b->data) + body_len <= b->cap);
    memset(p, how, body_len); /* ASan: the whole claimed body is ours to write */
    if (how & 1u) {
        if (how & 2u) FUZZ_CHECK(shmx_ring_shrink(&b->prod, body_len / 2u) == 0);
        FUZZ_CHECK(shmx_ring_commit(&b->prod) == 0);
    } else {
        FUZZ_CHECK(shmx_ring_abort(&b->prod) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in_t in = {data, size};
    ring_box_t *b = calloc(1, sizeof *b);
    FUZZ_CHECK(b != NULL);
    b->cap = 64u << (fuzz_u8(&in) % 7u);
    b->ctl = aligned_alloc(SHMX_CACHE_LINE, sizeof *b->ctl);
    b->data = aligned_alloc(8, b->cap);
    FUZZ_CHECK(b->ctl != NULL && b->data != NULL);
    shmx_ring_format(b->ctl, b->data, b->cap);

    /* Both views start where a ring that has carried traffic might be. */
    uint64_t head = fuzz_u64(&in) & ~(uint64_t)7u;
    uint64_t tail = head + ((fuzz_u16(&in) % (b->cap + 8u)) & ~7u);
    atomic_store_explicit(&b->ctl->head, head, memory_order_relaxed);
    atomic_store_explicit(&b->ctl->tail, tail, memory_order_relaxed);
    FUZZ_CHECK(shmx_ring_attach(&b->cons, b->ctl, b->data, b->cap) == 0);
    FUZZ_CHECK(shmx_ring_attach(&b->prod, b->ctl, b->data, b->cap) == 0);
    /* The data as a producer (or a peer scribbling) left it, from the read position on. */
    uint32_t mask = b->cap - 1u;
    for (uint32_t i = 0; i < b->cap && in.left > 0; i++) b->data[(head + i) & mask] = fuzz_u8(&in);

    for (uint32_t steps = 0; in.left > 0 && steps < 4096u; steps++) {
        uint8_t op = fuzz_u8(&in);
        switch (op % REC_OPS) {
        case REC_PEEK: case REC_PEEK + 1: case REC_PEEK + 2: do_peek(b); break;
        case REC_RELEASE_ONE: release_first(b, 1); break;
        case REC_RELEASE_ALL: release_first(b, b->held_count); break;
        case REC_WRITE_WORD: { /* a peer rewrites a record header (or any word) */
            uint32_t off = (fuzz_u16(&in) % b->cap) & ~7u;
            uint64_t v = fuzz_u64(&in);
            memcpy(b->data + off, &v, sizeof v);
            break;
        }
        case REC_WRITE_BYTE: { uint32_t off = fuzz_u16(&in) % b->cap; b->data[off] = fuzz_u8(&in); break; }
        case REC_CLOSE: shmx_ring_close(b->ctl); break;
        case REC_SET_HEAD: atomic_store_explicit(&b->ctl->head, fuzz_u64(&in), memory_order_relaxed); break;
        case REC_SET_TAIL: atomic_store_explicit(&b->ctl->tail, fuzz_u64(&in), memory_order_relaxed); break;
        case REC_CLAIM: do_claim(b, &in); break;
        case REC_RELEASED_ARM: {
            uint64_t pos;
            int rc = shmx_ring_released(&b->prod, &pos);
            FUZZ_CHECK(rc == 0 || rc == -SHMX_ECORRUPT);
            if (rc == 0) FUZZ_CHECK(b->prod.tail - pos <= b->cap);
            shmx_ring_arm(&b->cons);
            break;
        }
        }
    }

    /* Drain: released space is zeroed, so this ends within capacity / 8 records. */
    release_first(b, b->held_count);
    uint32_t n = 0;
    while (do_peek(b) == 0) {
        release_first(b, 1);
        FUZZ_CHECK(++n <= b->cap / 8u);
    }
    free(b->data);
    free(b->ctl);
    free(b);
    return 0;
}
