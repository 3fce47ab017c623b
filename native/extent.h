/*
 * Pool extents: the sealed memfds by which the pool grows (DESIGN.md 3.1,
 * 3.2). The host creates one with shmx_extent_create (sized, fallocate'd,
 * its slots formatted FREE, sealed against shrinking and growing) before its
 * fd leaves the process; a guest maps one it received with
 * shmx_extent_attach after checking that it is a sealed memfd of exactly the
 * announced size. The layout is shmx_extent_layout() (layout.h); where its
 * slots belong in the pool is the pool's business (shmx_pool_add_extent).
 */
#ifndef SHMX_EXTENT_H
#define SHMX_EXTENT_H

#include <stdint.h>

typedef struct shmx_extent {
    uint8_t *base;  /* the mapping */
    uint64_t bytes; /* its size (the memfd's, checked with fstat on attach) */
    int fd;         /* host: kept to hand to guests that come later; guest: -1 (closed once mapped) */
    uint32_t cls;   /* size class */
    uint32_t first; /* index of its first slot within the class */
    uint32_t count; /* slots */
} shmx_extent_t;

/*
 * shmx_extent_create - create, fallocate, map, format and seal an extent of
 * @count slots of @slot_size bytes for class @cls, numbered from @first.
 * Returns 0, -SHMX_EINVAL (bad sizes), -ENOMEM/-ENOSPC (no memory for it),
 * or -errno; on failure nothing is left open.
 */
int shmx_extent_create(uint32_t cls, uint32_t slot_size, uint32_t first, uint32_t count, shmx_extent_t *out);

/*
 * shmx_extent_attach - map the extent received as @fd, which must be a memfd
 * sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL of exactly @bytes bytes.
 * @fd is closed in every case (the mapping keeps the memory). The caller
 * fills in cls, first and count.
 * Returns 0, -SHMX_ESEALS (not sealed), -SHMX_EPROTO (not a file of that
 * size), or -errno.
 */
int shmx_extent_attach(int fd, uint64_t bytes, shmx_extent_t *out);

/* shmx_extent_close - unmap and close what @e holds (safe on a zeroed or closed extent). */
void shmx_extent_close(shmx_extent_t *e);

#endif
