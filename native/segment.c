/*
 * Segments: create (size, fallocate, format, seal, publish ready) and attach
 * (check the file, map, wait for ready, validate a private copy of the
 * header). After attach only the private, validated config and layout are
 * used; the shared header is never read again, but for the extent count,
 * which guest.c takes as a hint.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "pool.h"
#include "ring.h"
#include "shmx/errors.h"
#include "wait.h"

#define LABEL_MAX 64u
#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define MAX_SEGMENT_BYTES (1ull << 40) /* the largest segment a valid configuration describes */

static void segment_reset(shmx_segment_t *seg) {
    memset(seg, 0, sizeof(*seg));
    seg->fd = -1;
}

static int label_ok(const char *label) {
    if (label == NULL) return 0;
    size_t n = strnlen(label, LABEL_MAX + 1u);
    if (n == 0 || n > LABEL_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = label[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* /dev/shm/shmx-UID-BOOT-LABEL: per user and per boot, so stale files of an earlier boot are recognisable. */
static int named_path(const char *label, char *path, size_t len) {
    char boot[37];
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, boot, sizeof(boot) - 1u);
    int err = errno;
    close(fd);
    if (n < 0) return -err;
    if (n < 8) return -EIO;
    boot[8] = '\0';
    int w = snprintf(path, len, "/dev/shm/shmx-%u-%s-%s", (unsigned)geteuid(), boot, label);
    return (w < 0 || (size_t)w >= len) ? -ENAMETOOLONG : 0;
}

/*
 * fallocate on a memfd has no size cap of its own (its internal mount is
 * unlimited), so an impossible size would be backed page by page until the
 * OOM killer steps in. Refuse what RAM and swap together can never hold.
 */
int shmx_fits_memory(uint64_t bytes) {
    struct sysinfo si;
    if (sysinfo(&si) != 0) return 1; /* no figure to judge by: let fallocate decide */
    uint64_t unit = si.mem_unit ? si.mem_unit : 1u;
    uint64_t ram = (uint64_t)si.totalram, swap = (uint64_t)si.totalswap, avail;
    if (__builtin_add_overflow(ram, swap, &avail) || __builtin_mul_overflow(avail, unit, &avail)) return 1;
    return bytes <= avail;
}

static int open_backing(shmx_segment_t *seg, const char *label) {
    if (seg->mode == SHMX_SEGMENT_MEMFD) {
        char name[8 + LABEL_MAX];
        snprintf(name, sizeof(name), "shmx:%s", label);
        seg->fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        return seg->fd < 0 ? -errno : 0;
    }
    int rc = named_path(label, seg->path, sizeof(seg->path));
    if (rc < 0) return rc;
    seg->fd = open(seg->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (seg->fd < 0) {
        seg->path[0] = '\0'; /* not ours: close must not unlink it */
        return -errno;
    }
    /* The umask may have narrowed the mode, never widened it; set it exactly anyway. */
    return fchmod(seg->fd, 0600) != 0 ? -errno : 0;
}

/* The header's fixed fields, from the host's private truth. */
static void write_header(const shmx_segment_t *seg) {
    shmx_segment_header_t *hdr = (shmx_segment_header_t *)seg->base;
    hdr->magic = SHMX_SEGMENT_MAGIC;
    hdr->layout_version = SHMX_LAYOUT_VERSION;
    hdr->header_bytes = SHMX_HEADER_BYTES;
    hdr->total_bytes = seg->size;
    hdr->config = seg->config;
    hdr->channels_offset = seg->layout.channels_offset;
    hdr->channel_stride = seg->layout.channel_stride;
    hdr->pool_offset = seg->layout.pool_offset;
    memcpy(hdr->class_meta_offset, seg->layout.class_meta_offset, sizeof(hdr->class_meta_offset));
    memcpy(hdr->class_data_offset, seg->layout.class_data_offset, sizeof(hdr->class_data_offset));
}

void shmx_segment_restore_header(const shmx_segment_t *seg) {
    write_header(seg);
    /* Release: a guest that attaches after this (acquire on `ready`) sees the fields whole. */
    atomic_store_explicit(&((shmx_segment_header_t *)seg->base)->ready, SHMX_READY_MAGIC, memory_order_release);
}

static void format(shmx_segment_t *seg) {
    shmx_segment_header_t *hdr = (shmx_segment_header_t *)seg->base;
    write_header(seg);
    /* Relaxed: published by `ready`; the host raises it later with release (host_service.c). */
    atomic_store_explicit(&hdr->extent_count, 0, memory_order_relaxed);

    /* Relaxed stores: nobody may look before `ready`, whose release store publishes them. */
    for (uint32_t i = 0; i < seg->config.max_channels; i++) {
        shmx_channel_ctl_t *ch = shmx_segment_channel(seg, i);
        atomic_store_explicit(&ch->state, SHMX_CHANNEL_FREE, memory_order_relaxed);
        atomic_store_explicit(&ch->epoch, 0, memory_order_relaxed);
        shmx_segment_reset_rings(seg, i);
    }
    shmx_pool_t pool;
    shmx_pool_init(&pool, seg->base, &seg->layout, &seg->config, 1);
}

int shmx_segment_create(const shmx_config_t *cfg, const char *label, shmx_segment_t *out) {
    segment_reset(out);
    if (shmx_layout_compute(cfg, &out->layout) != 0) return -SHMX_ECONFIG;
    if (!label_ok(label)) return -SHMX_EINVAL;
    out->config = *cfg;
    out->mode = cfg->segment_mode;
    out->size = out->layout.total_bytes;
    out->owner = 1;
    if (!shmx_fits_memory(out->size)) return -ENOMEM;

    int rc = open_backing(out, label);
    /* Back every page now: exhaustion is -ENOMEM/-ENOSPC here, never a SIGBUS later. */
    if (rc == 0 && ftruncate(out->fd, (off_t)out->size) != 0) rc = -errno;
    if (rc == 0 && fallocate(out->fd, 0, 0, (off_t)out->size) != 0) rc = -errno;
    if (rc == 0) {
        void *base = mmap(NULL, out->size, PROT_READ | PROT_WRITE, MAP_SHARED, out->fd, 0);
        if (base == MAP_FAILED) rc = -errno;
        else out->base = base;
    }
    if (rc == 0) {
        format(out);
        /* Named files live on tmpfs and are not memfds: they cannot be sealed, so their
         * protection is the 0600 mode and this user's ownership (checked on attach). */
        if (out->mode == SHMX_SEGMENT_MEMFD && fcntl(out->fd, F_ADD_SEALS, REQUIRED_SEALS) != 0) rc = -errno;
    }
    if (rc != 0) {
        shmx_segment_close(out);
        return rc;
    }
    shmx_segment_header_t *hdr = (shmx_segment_header_t *)out->base;
    /* Publishes the formatted header, channels and pool: pairs with the acquire load in wait_ready. */
    atomic_store_explicit(&hdr->ready, SHMX_READY_MAGIC, memory_order_release);
    shmx_futex_wake(&hdr->ready, INT_MAX);
    return 0;
}

/*
 * A sealed memfd is safe to map whoever made it. Anything else must belong to
 * this user and be closed to group and others. An unlinked shmem file without
 * the seals is a memfd someone forgot to seal (a named segment has a link).
 */
static int check_file(int fd, const struct stat *st, int *sealed) {
    *sealed = 0;
    if (!S_ISREG(st->st_mode)) return -SHMX_EPERMS;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS) {
        *sealed = 1;
        return 0;
    }
    if (seals >= 0 && st->st_nlink == 0) return -SHMX_ESEALS;
    if (seals < 0 && errno != EINVAL) return -errno;
    if (st->st_uid != geteuid() || (st->st_mode & 077) != 0) return -SHMX_EPERMS;
    return 0;
}

static int wait_ready(shmx_segment_header_t *hdr, int64_t timeout_ns) {
    int64_t deadline = shmx_deadline(timeout_ns);
    for (;;) {
        /* Pairs with the release store of `ready` in shmx_segment_create. */
        uint32_t v = atomic_load_explicit(&hdr->ready, memory_order_acquire);
        if (v == SHMX_READY_MAGIC) return 0;
        if (shmx_now_ns() >= deadline) return -SHMX_ENOTREADY;
        /* Any wake or change re-checks; a peer rewriting the word only costs wake-ups until the deadline. */
        int rc = shmx_futex_wait(&hdr->ready, v, deadline);
        if (rc != 0 && rc != -ETIMEDOUT && rc != -EINTR) return rc;
    }
}

int shmx_segment_validate_header(const shmx_segment_header_t *hdr, uint64_t size, shmx_layout_t *layout_out,
                                 shmx_config_t *config_out) {
    shmx_layout_t lay;
    if (hdr->magic != SHMX_SEGMENT_MAGIC || hdr->layout_version != SHMX_LAYOUT_VERSION ||
        hdr->header_bytes != SHMX_HEADER_BYTES || hdr->total_bytes != size)
        return -SHMX_EHEADER;
    /* Never believe the stored offsets: recompute them from the configuration and compare. */
    if (shmx_layout_compute(&hdr->config, &lay) != 0) return -SHMX_EHEADER;
    if (lay.total_bytes != size || lay.channels_offset != hdr->channels_offset ||
        lay.channel_stride != hdr->channel_stride || lay.pool_offset != hdr->pool_offset ||
        memcmp(lay.class_meta_offset, hdr->class_meta_offset, sizeof(lay.class_meta_offset)) != 0 ||
        memcmp(lay.class_data_offset, hdr->class_data_offset, sizeof(lay.class_data_offset)) != 0)
        return -SHMX_EHEADER;
    if (layout_out != NULL) *layout_out = lay;
    if (config_out != NULL) *config_out = hdr->config;
    return 0;
}

int shmx_segment_attach_fd(int fd, int64_t timeout_ns, shmx_segment_t *out) {
    segment_reset(out);
    out->fd = fd;
    if (fd < 0) return -EBADF;

    struct stat st;
    int sealed = 0;
    int rc = fstat(fd, &st) != 0 ? -errno : check_file(fd, &st, &sealed);
    if (rc == 0 && (st.st_size < (off_t)SHMX_HEADER_BYTES || (uint64_t)st.st_size > MAX_SEGMENT_BYTES))
        rc = -SHMX_EHEADER;
    if (rc == 0) {
        out->size = (uint64_t)st.st_size; /* our own record of the size: the header's claim is only compared */
        void *base = mmap(NULL, out->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) rc = -errno;
        else out->base = base;
    }
    if (rc == 0) rc = wait_ready((shmx_segment_header_t *)out->base, timeout_ns);
    if (rc == 0) {
        /* One copy of the header; only the copy is validated and used. The extent table
         * after it changes while the host runs and is never part of the copy. */
        shmx_segment_header_t hdr;
        memset(&hdr, 0, sizeof(hdr));
        memcpy(&hdr, out->base, offsetof(shmx_segment_header_t, extent_count));
        rc = shmx_segment_validate_header(&hdr, out->size, &out->layout, &out->config);
    }
    /* A memfd segment must come sealed; only a named segment may be a plain 0600 file. */
    if (rc == 0 && !sealed && out->config.segment_mode != SHMX_SEGMENT_NAMED) rc = -SHMX_ESEALS;
    if (rc != 0) {
        shmx_segment_close(out);
        return rc;
    }
    out->mode = out->config.segment_mode;
    return 0;
}

int shmx_segment_attach_path(const char *path, int64_t timeout_ns, shmx_segment_t *out) {
    segment_reset(out);
    if (path == NULL) return -SHMX_EINVAL;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -errno;
    return shmx_segment_attach_fd(fd, timeout_ns, out);
}

shmx_channel_ctl_t *shmx_segment_channel(const shmx_segment_t *seg, uint32_t i) {
    if (i >= seg->config.max_channels) return NULL;
    return (shmx_channel_ctl_t *)(seg->base + seg->layout.channels_offset + (uint64_t)i * seg->layout.channel_stride);
}

shmx_ring_ctl_t *shmx_segment_ring_ctl(const shmx_segment_t *seg, uint32_t i, int r) {
    uint8_t *ch = (uint8_t *)shmx_segment_channel(seg, i);
    if (ch == NULL || (r != SHMX_RING_HOST_TO_GUEST && r != SHMX_RING_GUEST_TO_HOST)) return NULL;
    return (shmx_ring_ctl_t *)(ch + SHMX_CHANNEL_RING_CTL_OFFSET(r));
}

uint8_t *shmx_segment_ring_data(const shmx_segment_t *seg, uint32_t i, int r) {
    uint8_t *ch = (uint8_t *)shmx_segment_channel(seg, i);
    if (ch == NULL || (r != SHMX_RING_HOST_TO_GUEST && r != SHMX_RING_GUEST_TO_HOST)) return NULL;
    return ch + SHMX_CHANNEL_RING_DATA_OFFSET(r, seg->config.ring_bytes);
}

void shmx_segment_reset_rings(const shmx_segment_t *seg, uint32_t i) {
    for (int r = SHMX_RING_HOST_TO_GUEST; r <= SHMX_RING_GUEST_TO_HOST; r++)
        shmx_ring_format(shmx_segment_ring_ctl(seg, i, r), shmx_segment_ring_data(seg, i, r), seg->config.ring_bytes);
}

void shmx_segment_close(shmx_segment_t *seg) {
    if (seg->base != NULL) munmap(seg->base, seg->size);
    if (seg->owner && seg->path[0] != '\0' && seg->fd >= 0) {
        /* Unlink only the file we created, not one that replaced it at the same path. */
        struct stat mine, there;
        if (fstat(seg->fd, &mine) == 0 && lstat(seg->path, &there) == 0 && mine.st_dev == there.st_dev &&
            mine.st_ino == there.st_ino)
            unlink(seg->path);
    }
    if (seg->fd >= 0) close(seg->fd);
    segment_reset(seg);
}
