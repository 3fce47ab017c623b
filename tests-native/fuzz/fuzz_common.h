/*
 * Shared by the libFuzzer harnesses: reading the input as a stream of fields,
 * and a check that aborts with a message (libFuzzer keeps the input as a crash).
 */
#ifndef SHMX_FUZZ_COMMON_H
#define SHMX_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The input read front to back; past its end every field reads as zero. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t left;
} fuzz_in_t;

static inline uint64_t fuzz_take(fuzz_in_t *in, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes && in->left > 0; i++, in->left--) v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static inline uint8_t fuzz_u8(fuzz_in_t *in) { return (uint8_t)fuzz_take(in, 1); }
static inline uint16_t fuzz_u16(fuzz_in_t *in) { return (uint16_t)fuzz_take(in, 2); }
static inline uint32_t fuzz_u32(fuzz_in_t *in) { return (uint32_t)fuzz_take(in, 4); }
static inline uint64_t fuzz_u64(fuzz_in_t *in) { return fuzz_take(in, 8); }

/* An invariant of the code under test failed: a bug, whatever the input. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
