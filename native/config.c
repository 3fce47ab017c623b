/*
 * Configuration defaults, validation, and the segment layout computed from a
 * configuration. Validation and layout are one walk over the fields, so the
 * rules a host checks before creating and the rules a guest checks on a
 * header it received can never drift apart.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"
#include "shmx/config.h"
#include "shmx/errors.h"
#include "shmx/frame.h"

#define PAGE 4096u
#define MIN_RING_BYTES 4096u
#define MAX_RING_BYTES (1u << 30)
#define MAX_CLASS_SLOTS (1u << 24)
#define MAX_SEGMENT_BYTES (1ull << 40)
/* Every record costs its 8-byte header, and an inline record also carries the 24-byte frame header. */
#define INLINE_OVERHEAD (sizeof(shmx_record_header_t) + SHMX_FRAME_HEADER_SIZE)
#define KNOWN_TRANSPORTS ((uint32_t)(SHMX_TRANSPORT_SHM | SHMX_TRANSPORT_UDS))

/* The channel control and both ring controls share the first page of a channel entry. */
_Static_assert(SHMX_CHANNEL_RING_CTL_OFFSET(2) <= PAGE, "channel controls fit one page");
_Static_assert(sizeof(shmx_pool_ctl_t) <= PAGE, "pool control fits one page");

#define KIB 1024u
#define MIB (1024u * 1024u)

void shmx_config_default(shmx_config_t *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_channels = 32;
    cfg->ring_bytes = 64u * KIB;
    cfg->inline_max = 1024;
    cfg->max_payload = MIB;
    cfg->class_count = 3;
    cfg->class_size[0] = 4u * KIB;
    cfg->class_slots[0] = 128;
    cfg->class_size[1] = 64u * KIB;
    cfg->class_slots[1] = 32;
    cfg->class_size[2] = MIB;
    cfg->class_slots[2] = 4;
    cfg->segment_mode = SHMX_SEGMENT_MEMFD;
    cfg->transports = SHMX_TRANSPORT_SHM | SHMX_TRANSPORT_UDS;
    cfg->allowed_uid = UINT32_MAX;
    cfg->spin_iterations = 20000;
    cfg->yield_iterations = 50;
    cfg->max_message = 64u * MIB;
    cfg->window_bytes = 4u * MIB;
    cfg->extent_bytes = 8u * MIB;
    cfg->liveness_ms = 10000; /* long enough for a GC pause or a burst of work, short enough to free a stuck guest's share */
    cfg->pool_max_bytes = 256ull * MIB;
}

/* *@at = round_up(*@at + @len, PAGE); returns nonzero on overflow. */
static int advance(uint64_t *at, uint64_t len) {
    uint64_t end;
    if (__builtin_add_overflow(*at, len, &end)) return 1;
    if (__builtin_add_overflow(end, (uint64_t)PAGE - 1u, &end)) return 1;
    *at = end & ~((uint64_t)PAGE - 1u);
    return 0;
}

static const char *check_fields(const shmx_config_t *cfg) {
    if (cfg->max_channels < 1 || cfg->max_channels > SHMX_MAX_CHANNELS)
        return "max_channels must be between 1 and SHMX_MAX_CHANNELS (1024)";
    if (cfg->ring_bytes == 0 || (cfg->ring_bytes & (cfg->ring_bytes - 1u)) != 0)
        return "ring_bytes must be a power of two";
    if (cfg->ring_bytes < MIN_RING_BYTES) return "ring_bytes must be at least 4096";
    if (cfg->ring_bytes > MAX_RING_BYTES) return "ring_bytes must be at most 1 GiB";
    if (cfg->inline_max > cfg->ring_bytes / 2u - INLINE_OVERHEAD)
        return "inline_max must let an inline record (8 + 24 + inline_max bytes) fit in half a ring";
    if (cfg->class_count < 1 || cfg->class_count > SHMX_MAX_CLASSES)
        return "class_count must be between 1 and SHMX_MAX_CLASSES (8)";
    for (uint32_t c = 0; c < cfg->class_count; c++) {
        if (cfg->class_size[c] < 64u) return "class_size must be at least 64";
        if (cfg->class_size[c] % 64u != 0) return "class_size must be a multiple of 64";
        if (c > 0 && cfg->class_size[c] <= cfg->class_size[c - 1])
            return "class_size must be strictly ascending";
        if (cfg->class_slots[c] < 1 || cfg->class_slots[c] > MAX_CLASS_SLOTS)
            return "class_slots must be between 1 and 16777216";
    }
    if (cfg->max_payload < 1) return "max_payload must be at least 1";
    if (cfg->max_payload > cfg->class_size[cfg->class_count - 1u])
        return "max_payload must not exceed the largest class_size";
    if (cfg->max_payload > SHMX_FRAME_MAX_PAYLOAD)
        return "max_payload must not exceed SHMX_FRAME_MAX_PAYLOAD (1 GiB)";
    if (cfg->segment_mode != SHMX_SEGMENT_MEMFD && cfg->segment_mode != SHMX_SEGMENT_NAMED)
        return "segment_mode must be SHMX_SEGMENT_MEMFD or SHMX_SEGMENT_NAMED";
    if (cfg->transports == 0 || (cfg->transports & ~KNOWN_TRANSPORTS) != 0)
        return "transports must be a non-empty combination of SHMX_TRANSPORT_SHM and SHMX_TRANSPORT_UDS";
    if (cfg->max_message < cfg->max_payload) return "max_message must be at least max_payload";
    if (cfg->window_bytes < cfg->class_size[cfg->class_count - 1u])
        return "window_bytes must be at least the largest class_size";
    if (cfg->extent_bytes < PAGE || cfg->extent_bytes % PAGE != 0)
        return "extent_bytes must be a multiple of 4096 and at least 4096";
    if (cfg->liveness_ms != 0 && cfg->liveness_ms < 10) return "liveness_ms must be 0 (never expel) or at least 10";
    return NULL;
}

/* Sum of class_slots x class_size over checked fields: each term < 2^56, at most 8 of them. */
static uint64_t slot_bytes(const shmx_config_t *cfg) {
    uint64_t n = 0;
    for (uint32_t c = 0; c < cfg->class_count; c++) n += (uint64_t)cfg->class_slots[c] * cfg->class_size[c];
    return n;
}

/* Validate @cfg and fill @out; returns the first problem, or NULL. */
static const char *compute(const shmx_config_t *cfg, shmx_layout_t *out) {
    static const char too_big[] = "segment would exceed 1 TiB";
    if (cfg == NULL) return "configuration is NULL";
    const char *problem = check_fields(cfg);
    if (problem != NULL) return problem;

    shmx_layout_t lay;
    memset(&lay, 0, sizeof(lay));
    uint64_t at = 0;
    if (advance(&at, SHMX_HEADER_BYTES)) return too_big;
    lay.channels_offset = at;
    /* First page: channel control and ring controls; then the two ring data areas. */
    lay.channel_stride = (uint64_t)PAGE + 2u * (uint64_t)cfg->ring_bytes;
    uint64_t channels_len;
    if (__builtin_mul_overflow(lay.channel_stride, (uint64_t)cfg->max_channels, &channels_len)) return too_big;
    if (advance(&at, channels_len)) return too_big;
    lay.pool_offset = at;
    if (advance(&at, sizeof(shmx_pool_ctl_t))) return too_big;
    for (uint32_t c = 0; c < cfg->class_count; c++) {
        uint64_t meta_len, data_len;
        if (__builtin_mul_overflow((uint64_t)cfg->class_slots[c], (uint64_t)sizeof(shmx_slot_meta_t), &meta_len))
            return too_big;
        if (__builtin_mul_overflow((uint64_t)cfg->class_slots[c], (uint64_t)cfg->class_size[c], &data_len))
            return too_big;
        lay.class_meta_offset[c] = at;
        if (advance(&at, meta_len)) return too_big;
        lay.class_data_offset[c] = at;
        if (advance(&at, data_len)) return too_big;
    }
    if (at > MAX_SEGMENT_BYTES) return too_big;
    /* After the size checks: a pool beyond 1 TiB is reported as that, not as a cap problem. */
    if (cfg->pool_max_bytes < slot_bytes(cfg))
        return "pool_max_bytes must be at least the segment's own pool (sum of class_slots x class_size)";
    lay.total_bytes = at;
    if (out != NULL) *out = lay;
    return NULL;
}

int shmx_layout_compute(const shmx_config_t *cfg, shmx_layout_t *out) {
    return compute(cfg, out) == NULL ? 0 : -SHMX_ECONFIG;
}

int shmx_config_validate(const shmx_config_t *cfg) { return shmx_layout_compute(cfg, NULL); }

const char *shmx_config_problem(const shmx_config_t *cfg) {
    const char *problem = compute(cfg, NULL);
    return problem == NULL ? "" : problem;
}

uint64_t shmx_config_segment_bytes(const shmx_config_t *cfg) {
    shmx_layout_t lay;
    return compute(cfg, &lay) == NULL ? lay.total_bytes : 0;
}

uint64_t shmx_pool_slot_bytes(const shmx_config_t *cfg) { return slot_bytes(cfg); }

uint32_t shmx_extent_slots(const shmx_config_t *cfg, uint32_t slot_size) {
    uint32_t n = slot_size == 0 ? 0 : cfg->extent_bytes / slot_size;
    return n == 0 ? 1u : n;
}

int shmx_extent_layout(uint32_t slot_size, uint32_t count, shmx_extent_layout_t *out) {
    uint64_t at = 0;
    if (count == 0 || slot_size == 0) return -SHMX_EINVAL;
    if (advance(&at, (uint64_t)count * sizeof(shmx_slot_meta_t))) return -SHMX_EINVAL;
    out->data_offset = at;
    if (advance(&at, (uint64_t)count * slot_size)) return -SHMX_EINVAL;
    out->total_bytes = at;
    return 0;
}
