/*
 * shmx configuration: everything a host decides when it creates a segment.
 * The whole configuration is recorded in the segment header, so a guest needs
 * nothing but the segment to attach.
 */
#ifndef SHMX_CONFIG_H
#define SHMX_CONFIG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

#define SHMX_MAX_CLASSES 8u
#define SHMX_MAX_CHANNELS 1024u

/* Transports a channel can run over. A host may offer both (bitwise or). */
enum shmx_transport {
    SHMX_TRANSPORT_SHM = 1, /* rings and pool in the shared segment */
    SHMX_TRANSPORT_UDS = 2, /* the same frames over the Unix socket itself (baseline, fallback) */
    SHMX_TRANSPORT_AUTO = 3 /* a guest's request: shm if the host can give it, else uds (hybrid fallback) */
};

/* Where the segment lives. */
enum shmx_segment_mode {
    SHMX_SEGMENT_MEMFD = 0, /* anonymous sealed memfd, passed to guests with SCM_RIGHTS (default) */
    SHMX_SEGMENT_NAMED = 1  /* 0600 file under /dev/shm with a per-user name. A named file can
                             * not be sealed: any process of the user can shrink it, and the
                             * host then dies of SIGBUS. Use it only with trusted guests. */
};

typedef struct shmx_config {
    uint32_t max_channels;  /* guests served at once (one channel each); default 8 */
    uint32_t ring_bytes;    /* bytes of each ring (one per direction); power of two, >= 4096; default 64 KiB */
    uint32_t inline_max;    /* payloads up to this many bytes travel inside the ring; default 1024 */
    uint32_t max_payload;   /* largest payload of one frame (fragment); <= the largest class; default 1 MiB */
    uint32_t class_count;   /* number of pool size classes, 1..SHMX_MAX_CLASSES */
    uint32_t class_size[SHMX_MAX_CLASSES];  /* payload bytes per slot, strictly ascending, multiples of 64 */
    uint32_t class_slots[SHMX_MAX_CLASSES]; /* slots per class, >= 1 */
    uint32_t segment_mode;  /* enum shmx_segment_mode */
    uint32_t transports;    /* transports the host offers (bitwise or of enum shmx_transport); default both */
    uint32_t allowed_uid;   /* uid allowed to connect besides the host's own; UINT32_MAX: only the host's uid */
    uint32_t spin_iterations;  /* busy polls before a waiter yields; default 20000; a receive adapts below it (README) */
    uint32_t yield_iterations; /* sched_yield() polls before a waiter sleeps on the futex; default 50 */
    uint32_t max_message;   /* largest message, all its fragments together; >= max_payload; default 64 MiB */
    uint32_t window_bytes;  /* flow control: pool bytes one direction of a channel may have in flight
                             * (sent, not yet released); >= the largest class; default 4 MiB */
    uint32_t extent_bytes;  /* slot bytes one pool extent adds when the pool grows (at least one slot);
                             * multiple of 4096; default 8 MiB */
    uint32_t liveness_ms;   /* a shm guest that leaves the host's messages unconsumed (its ring's head
                             * does not move) for this long is expelled; 0: never; default 10000,
                             * else at least 10 */
    uint64_t pool_max_bytes; /* cap on pool slot bytes, the segment's classes plus every extent;
                              * >= the segment's own pool; default 256 MiB */
} shmx_config_t;

/*
 * shmx_config_default - fill @cfg with the defaults: 32 channels, 64 KiB
 * rings, 1 KiB inline limit, pool classes 4 KiB x 128, 64 KiB x 32,
 * 1 MiB x 4 (so 1 MiB frames), 64 MiB messages, a 4 MiB flow-control window,
 * 8 MiB extents up to 256 MiB of pool, memfd segment, both transports.
 * A host with these settings maps about 11 MiB of shared memory until its
 * pool has to grow.
 */
void shmx_config_default(shmx_config_t *cfg);

/*
 * shmx_config_validate - check every field of @cfg.
 * Returns 0 or -SHMX_ECONFIG; shmx_config_problem() then names the field.
 */
int shmx_config_validate(const shmx_config_t *cfg);

/*
 * shmx_config_problem - describe the first problem shmx_config_validate()
 * finds in @cfg ("ring_bytes must be a power of two", ...), or "" if none.
 * Returns a pointer to a static string.
 */
const char *shmx_config_problem(const shmx_config_t *cfg);

/*
 * shmx_config_segment_bytes - total bytes of the segment @cfg describes
 * (header, channels, pool), or 0 if @cfg is invalid.
 */
uint64_t shmx_config_segment_bytes(const shmx_config_t *cfg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
