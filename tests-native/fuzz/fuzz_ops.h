/*
 * Operation codes of the stateful harnesses' input programs, shared with the
 * seed writer (fuzz_seeds.c) so that the committed seeds keep their meaning.
 * An op byte is taken modulo the count; arguments follow it little-endian.
 */
#ifndef SHMX_FUZZ_OPS_H
#define SHMX_FUZZ_OPS_H

/* fuzz_record.c */
enum record_op {
    REC_PEEK = 0,        /* (1 and 2 peek too: the common case) */
    REC_RELEASE_ONE = 3,
    REC_RELEASE_ALL = 4,
    REC_WRITE_WORD = 5,  /* u16 offset, u64 value */
    REC_WRITE_BYTE = 6,  /* u16 offset, u8 value */
    REC_CLOSE = 7,
    REC_SET_HEAD = 8,    /* u64 */
    REC_SET_TAIL = 9,    /* u64 */
    REC_CLAIM = 10,      /* u16 body length, u8 kind (bit 0: slot), u8 how (bit 0 commit, bit 1 shrink, value = fill) */
    REC_RELEASED_ARM = 11,
    REC_OPS = 12
};

/* fuzz_adversary.c */
enum adversary_op {
    ADV_HOST_SEND = 0,     /* u16 length */
    ADV_HOST_RECEIVE = 1,  /* (2 too) */
    ADV_HOST_RELEASE = 3,
    ADV_HOST_COPY = 4,     /* u16 buffer size */
    ADV_HOST_BATCH = 5,    /* u8 max */
    ADV_HOST_CLAIM = 6,    /* u16 length, u8 how (bit 0: commit half of it, else abort; value = fill) */
    ADV_GUEST_SEND = 7,    /* (8 too) u16 length */
    ADV_GUEST_RECEIVE = 9,
    ADV_HOST_RECLAIM = 10,
    ADV_HOST_STATS = 11,
    ADV_WRITE8 = 12,       /* u32 offset, u64 value (low byte) */
    ADV_WRITE32 = 13,      /* u32 offset, u64 value (low word) */
    ADV_WRITE64 = 14,      /* u32 offset, u64 value */
    ADV_FORGE_RECORD = 15, /* (16 too) see forge_record */
    ADV_FORGE_META = 17,   /* see forge_meta */
    ADV_OPS = 18,
    ADV_HOST_CLOSE = 0xFF  /* exactly this byte */
};

#endif
