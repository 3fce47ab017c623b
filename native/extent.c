/*
 * Pool extents: create (memfd, size, fallocate, map, format, seal) and attach
 * (check the seals and the size with fstat, then map). See extent.h.
 */
#include "extent.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "pool.h"
#include "segment.h"
#include "shmx/errors.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static void reset(shmx_extent_t *e) {
    memset(e, 0, sizeof(*e));
    e->fd = -1;
}

int shmx_extent_create(uint32_t cls, uint32_t slot_size, uint32_t first, uint32_t count, shmx_extent_t *out) {
    reset(out);
    shmx_extent_layout_t lay;
    if (shmx_extent_layout(slot_size, count, &lay) != 0 || lay.total_bytes > (uint64_t)INT64_MAX)
        return -SHMX_EINVAL;
    if (!shmx_fits_memory(lay.total_bytes)) return -ENOMEM;
    out->fd = memfd_create("shmx:extent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int rc = out->fd < 0 ? -errno : 0;
    /* Back every page now: exhaustion is -ENOMEM/-ENOSPC here, never a SIGBUS later. */
    if (rc == 0 && ftruncate(out->fd, (off_t)lay.total_bytes) != 0) rc = -errno;
    if (rc == 0 && fallocate(out->fd, 0, 0, (off_t)lay.total_bytes) != 0) rc = -errno;
    if (rc == 0) {
        void *base = mmap(NULL, lay.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
        if (base == MAP_FAILED) rc = -errno;
        else out->base = base;
    }
    out->bytes = lay.total_bytes;
    if (rc == 0) {
        /* Nobody else can see it yet; the push onto the free list publishes it (release). */
        shmx_pool_format_slots((shmx_slot_meta_t *)out->base, first, count);
        if (fcntl(out->fd, F_ADD_SEALS, REQUIRED_SEALS) != 0) rc = -errno;
    }
    if (rc != 0) {
        shmx_extent_close(out);
        return rc;
    }
    out->cls = cls;
    out->first = first;
    out->count = count;
    return 0;
}

int shmx_extent_attach(int fd, uint64_t bytes, shmx_extent_t *out) {
    reset(out);
    if (fd < 0) return -EBADF;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size != bytes || bytes == 0))
        rc = -SHMX_EPROTO;
    if (rc == 0) {
        /* Without the seals its creator (or anyone holding it) could shrink it under us: SIGBUS. */
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS) rc = -SHMX_ESEALS;
    }
    if (rc == 0) {
        void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) rc = -errno;
        else {
            out->base = base;
            out->bytes = bytes;
        }
    }
    close(fd);
    return rc;
}

void shmx_extent_close(shmx_extent_t *e) {
    if (e->base != NULL) munmap(e->base, e->bytes);
    if (e->fd >= 0) close(e->fd);
    reset(e);
}
