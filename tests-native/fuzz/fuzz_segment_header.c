/*
 * libFuzzer harness: the segment-header validation a guest runs on attach
 * (shmx_segment_validate_header, which recomputes the layout from the
 * recorded configuration), then, for segments of up to 1 MiB, the whole
 * attach (shmx_segment_attach_fd) on a sealed memfd holding the same header,
 * as a guest receives it from the host.
 *
 * Input: 8 bytes XORed into the header's total_bytes to give the file size
 * (0: the size the header claims), then the header bytes up to the extent
 * table, which attach never copies (missing bytes are zero).
 *
 * An accepted header must describe a layout that fits the file: every channel
 * entry, ring, the pool control and every class's metadata and slots end
 * within it and do not overlap. After a real attach the guest's view is walked
 * (channel and ring addresses, the pool's free lists) inside the mapping.
 */
#include <shmx/errors.h>

#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "layout.h"
#include "pool.h"
#include "ring.h"
#include "segment.h"

#define ATTACH_MAX_BYTES (1u << 20) /* larger segments are only validated, never created */

static volatile uint8_t sink;

/* Everything the accepted layout describes lies in [0, size) and in order. */
static void check_layout(const shmx_layout_t *lay, const shmx_config_t *cfg, uint64_t size) {
    FUZZ_CHECK(shmx_config_validate(cfg) == 0);
    FUZZ_CHECK(lay->total_bytes == size && size >= SHMX_HEADER_BYTES);
    FUZZ_CHECK(lay->channels_offset >= SHMX_HEADER_BYTES);
    FUZZ_CHECK(lay->channel_stride >= SHMX_CHANNEL_RING_DATA_OFFSET(2, cfg->ring_bytes));
    FUZZ_CHECK(SHMX_CHANNEL_RING_CTL_OFFSET(2) <= 4096u);
    FUZZ_CHECK(cfg->inline_max + 32u <= cfg->ring_bytes / 2u);
    uint64_t channels_end = lay->channels_offset + lay->channel_stride * cfg->max_channels;
    FUZZ_CHECK(channels_end <= lay->pool_offset);
    uint64_t at = lay->pool_offset + sizeof(shmx_pool_ctl_t);
    for (uint32_t c = 0; c < cfg->class_count; c++) {
        FUZZ_CHECK(at <= lay->class_meta_offset[c]);
        at = lay->class_meta_offset[c] + (uint64_t)cfg->class_slots[c] * sizeof(shmx_slot_meta_t);
        FUZZ_CHECK(at <= lay->class_data_offset[c]);
        at = lay->class_data_offset[c] + (uint64_t)cfg->class_slots[c] * cfg->class_size[c];
    }
    FUZZ_CHECK(at <= size);
}

/* Attach as a guest would; the result must agree with the validation. */
static void attach(const shmx_segment_header_t *hdr, uint64_t size, int accepted) {
    int fd = memfd_create("shmx-fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(ftruncate(fd, (off_t)size) == 0);
    size_t n = offsetof(shmx_segment_header_t, extent_count);
    if (size < n) n = (size_t)size;
    FUZZ_CHECK(pwrite(fd, hdr, n, 0) == (ssize_t)n);
    FUZZ_CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    shmx_segment_t seg;
    int rc = shmx_segment_attach_fd(fd, 0, &seg); /* takes the fd */
    int ready = atomic_load_explicit(&hdr->ready, memory_order_relaxed) == SHMX_READY_MAGIC;
    if (!accepted || size < SHMX_HEADER_BYTES) {
        FUZZ_CHECK(rc == -SHMX_EHEADER || rc == -SHMX_ENOTREADY);
        return;
    }
    FUZZ_CHECK(rc == (ready ? 0 : -SHMX_ENOTREADY));
    if (rc != 0) return;
    /* The guest's view: every channel's rings and the pool, at the addresses it computes. */
    uint8_t x = 0;
    for (uint32_t i = 0; i < seg.config.max_channels; i++) {
        x ^= *(volatile uint8_t *)shmx_segment_channel(&seg, i);
        for (int r = SHMX_RING_HOST_TO_GUEST; r <= SHMX_RING_GUEST_TO_HOST; r++) {
            shmx_ring_t ring;
            FUZZ_CHECK(shmx_ring_attach(&ring, shmx_segment_ring_ctl(&seg, i, r), shmx_segment_ring_data(&seg, i, r),
                                        seg.config.ring_bytes) == 0);
            x ^= ring.data[ring.capacity - 1u];
        }
    }
    shmx_pool_t *pool = malloc(sizeof *pool);
    FUZZ_CHECK(pool != NULL);
    shmx_pool_init(pool, seg.base, &seg.layout, &seg.config, 0);
    for (uint32_t c = 0; c < pool->class_count; c++) {
        x ^= pool->cls[c].data[(uint64_t)pool->cls[c].slot_size * pool->cls[c].slot_count - 1u];
        x ^= *(volatile uint8_t *)&pool->cls[c].meta[pool->cls[c].slot_count - 1u].reserved[11];
    }
    shmx_pool_stats_t st;
    shmx_pool_stats(pool, &st); /* walks the (empty: zero) free lists and every slot's metadata */
    sink = x;
    free(pool);
    shmx_segment_close(&seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in_t in = {data, size};
    uint64_t size_xor = fuzz_u64(&in);
    shmx_segment_header_t hdr;
    memset(&hdr, 0, sizeof hdr);
    size_t n = in.left < offsetof(shmx_segment_header_t, extent_count) ? in.left
                                                                        : offsetof(shmx_segment_header_t, extent_count);
    memcpy(&hdr, in.p, n);
    uint64_t file_size = hdr.total_bytes ^ size_xor;

    shmx_layout_t lay;
    shmx_config_t cfg;
    int rc = shmx_segment_validate_header(&hdr, file_size, &lay, &cfg);
    FUZZ_CHECK(rc == 0 || rc == -SHMX_EHEADER);
    if (rc == 0) check_layout(&lay, &cfg, file_size);
    if (file_size <= ATTACH_MAX_BYTES) attach(&hdr, file_size, rc == 0);
    return 0;
}
