/*
 * libFuzzer harness: the frame decoder (shmx_frame_decode,
 * shmx_frame_decode_limit, shmx_frame_header_decode) on arbitrary bytes.
 * Besides "no crash, no undefined behaviour" it checks that the three entry
 * points agree with each other, that an accepted frame re-encodes to exactly
 * the bytes it was decoded from, and that encode -> decode round-trips.
 */
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static void check_accepted(const uint8_t *data, size_t size, const shmx_frame_t *f) {
    FUZZ_CHECK(f->length <= size - SHMX_FRAME_HEADER_SIZE);
    FUZZ_CHECK(f->payload == data + SHMX_FRAME_HEADER_SIZE);
    FUZZ_CHECK(f->version == SHMX_FRAME_VERSION);
    FUZZ_CHECK((f->flags & ~SHMX_FLAGS_KNOWN) == 0);
    /* Encoding the decoded fields must give back the very bytes: nothing is ignored. */
    size_t n = SHMX_FRAME_HEADER_SIZE + (size_t)f->length;
    uint8_t *again = malloc(n);
    FUZZ_CHECK(again != NULL);
    int rc = shmx_frame_encode(again, n, f->type, f->flags, f->id, f->payload, f->length);
    FUZZ_CHECK(rc == (int)n);
    FUZZ_CHECK(memcmp(again, data, n) == 0);
    free(again);
}

/* Encode the input as a payload with header fields taken from it; decoding must give it back. */
static void round_trip(const uint8_t *data, size_t size) {
    fuzz_in_t in = {data, size};
    uint16_t type = fuzz_u16(&in);
    uint8_t flags = fuzz_u8(&in) & SHMX_FLAGS_KNOWN;
    uint64_t id = fuzz_u64(&in);
    uint32_t len = (uint32_t)in.left;
    size_t n = SHMX_FRAME_HEADER_SIZE + (size_t)len;
    uint8_t *buf = malloc(n);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(shmx_frame_encode(buf, n, type, flags, id, in.p, len) == (int)n);
    shmx_frame_t f;
    FUZZ_CHECK(shmx_frame_decode(buf, n, &f) == 0);
    FUZZ_CHECK(f.type == type && f.flags == flags && f.id == id && f.length == len);
    FUZZ_CHECK(memcmp(f.payload, in.p, len) == 0);
    /* One byte short must be a truncation, never an accept. */
    FUZZ_CHECK(shmx_frame_decode(buf, n - 1u, &f) == (n - 1u < SHMX_FRAME_HEADER_SIZE ? -SHMX_ESHORT : -SHMX_ETRUNC));
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shmx_frame_t f, g;
    memset(&f, 0, sizeof f);
    int rc = shmx_frame_decode(data, size, &f);
    FUZZ_CHECK(rc == 0 || (rc <= -SHMX_ESHORT && rc >= -SHMX_ECRC));
    FUZZ_CHECK(shmx_frame_decode(data, size, &g) == rc); /* deterministic */
    if (size < SHMX_FRAME_HEADER_SIZE) {
        FUZZ_CHECK(rc == -SHMX_ESHORT);
        round_trip(data, size);
        return 0;
    }
    if (rc == 0) check_accepted(data, size, &f);

    /* A tighter limit rejects exactly the frames longer than it. */
    uint32_t limit = (uint32_t)((size - SHMX_FRAME_HEADER_SIZE) / 2u);
    int rc_limit = shmx_frame_decode_limit(data, size, limit, &g);
    if (rc == 0) FUZZ_CHECK(rc_limit == (f.length <= limit ? 0 : -SHMX_ETOOBIG));
    if (rc_limit == 0) FUZZ_CHECK(rc == 0 && g.length == f.length && g.id == f.id);

    /* Header and payload apart, the payload being the rest of the input. */
    size_t rest = size - SHMX_FRAME_HEADER_SIZE;
    int rc_split = shmx_frame_header_decode(data, data + SHMX_FRAME_HEADER_SIZE, rest, SHMX_FRAME_MAX_PAYLOAD, &g);
    if (rc == 0 && f.length == rest) FUZZ_CHECK(rc_split == 0 && g.crc == f.crc && g.type == f.type);
    if (rc_split == 0) FUZZ_CHECK(rc == 0 && f.length == rest);
    if (rc == 0 && f.length != rest) FUZZ_CHECK(rc_split == -SHMX_ETRUNC);

    round_trip(data, size);
    return 0;
}
