/*
 * Segments: the shared memory region and its self-describing header.
 * Default: a sealed, fallocate'd memfd. Named mode: a 0600 file under
 * /dev/shm created O_CREAT|O_EXCL|O_NOFOLLOW. Attach validates magic,
 * version, size and every header field (recomputing the layout from the
 * recorded configuration) before anything else is touched.
 */
#ifndef SHMX_SEGMENT_H
#define SHMX_SEGMENT_H

#include <stdint.h>

#include "layout.h"

typedef struct shmx_segment {
    uint8_t *base;       /* mapping */
    uint64_t size;       /* host: created size; guest: size validated with fstat */
    int fd;              /* the memfd or file, close-on-exec */
    int owner;           /* nonzero in the host that created it */
    uint32_t mode;       /* enum shmx_segment_mode */
    char path[128];      /* named mode: the file's path */
    shmx_config_t config; /* private, validated copy */
    shmx_layout_t layout; /* private, recomputed from config */
} shmx_segment_t;

/*
 * shmx_segment_create - create, size (fallocate), format and map a segment for
 * @cfg, seal it (memfd), then publish `ready`. @label names the memfd or, in
 * named mode, the file (/dev/shm/shmx-UID-BOOT-LABEL).
 * Returns 0, -SHMX_ECONFIG, -SHMX_EINVAL (bad label), -ENOMEM/-ENOSPC (no
 * memory for it), -EEXIST (named file exists), or -errno.
 */
int shmx_segment_create(const shmx_config_t *cfg, const char *label, shmx_segment_t *out);

/*
 * shmx_segment_attach_fd - map and validate a segment received as @fd
 * (ownership of @fd passes to the segment, even on failure). Waits up to
 * @timeout_ns for `ready`. Checks the memfd's seals (F_SEAL_SHRINK|GROW|SEAL)
 * or, for a regular file, owner and mode 0600.
 * Returns 0, -SHMX_EHEADER, -SHMX_ESEALS, -SHMX_EPERMS, -SHMX_ENOTREADY, -errno.
 */
int shmx_segment_attach_fd(int fd, int64_t timeout_ns, shmx_segment_t *out);

/* shmx_segment_attach_path - open a named segment O_RDWR|O_NOFOLLOW and attach it. */
int shmx_segment_attach_path(const char *path, int64_t timeout_ns, shmx_segment_t *out);

/* shmx_segment_validate_header - check a header copy of @size bytes of segment; 0 or -SHMX_EHEADER. */
int shmx_segment_validate_header(const shmx_segment_header_t *hdr, uint64_t size, shmx_layout_t *layout_out,
                                 shmx_config_t *config_out);

/* Address of channel entry @i, or NULL if i >= max_channels (private config). */
shmx_channel_ctl_t *shmx_segment_channel(const shmx_segment_t *seg, uint32_t i);
/* Ring control and data of ring @r (SHMX_RING_HOST_TO_GUEST/GUEST_TO_HOST) of channel @i. */
shmx_ring_ctl_t *shmx_segment_ring_ctl(const shmx_segment_t *seg, uint32_t i, int r);
uint8_t *shmx_segment_ring_data(const shmx_segment_t *seg, uint32_t i, int r);

/*
 * shmx_segment_restore_header - write the header's fixed fields (magic,
 * version, sizes, configuration, offsets, ready) again from the host's
 * private copy: any guest can scribble on the shared header, and the next
 * guest validates what it finds there (the host calls this before each
 * welcome). The extent table is the host's to keep (host_service.c).
 */
void shmx_segment_restore_header(const shmx_segment_t *seg);

/* shmx_segment_reset_rings - format both rings of channel @i: empty, open, data zeroed. */
void shmx_segment_reset_rings(const shmx_segment_t *seg, uint32_t i);

/*
 * shmx_fits_memory - 0 if @bytes exceed what RAM and swap together can ever
 * hold (fallocate on a memfd would otherwise back them page by page until the
 * OOM killer steps in), 1 otherwise or when there is no figure to judge by.
 */
int shmx_fits_memory(uint64_t bytes);

/* shmx_segment_close - unmap, close the fd, and (owner, named mode) unlink the file. */
void shmx_segment_close(shmx_segment_t *seg);

#endif
