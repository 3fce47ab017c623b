/* Timing and nearest-rank percentiles for the C benchmark programs. */
#include "tool_stats.h"

#include <stdlib.h>
#include <time.h>

int64_t tool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank of @permille (1..1000) among @n sorted samples, as an index. */
static size_t rank_index(size_t n, unsigned permille) {
    size_t rank = (size_t)(((unsigned __int128)n * permille + 999u) / 1000u); /* ceil(n * p) */
    return rank == 0 ? 0 : rank - 1;
}

void tool_percentiles(uint64_t *samples, size_t n, tool_percentiles_t *out) {
    *out = (tool_percentiles_t){.count = n};
    if (n == 0) return;
    qsort(samples, n, sizeof *samples, cmp_u64);
    out->p50 = samples[rank_index(n, 500)];
    out->p90 = samples[rank_index(n, 900)];
    out->p99 = samples[rank_index(n, 990)];
    out->p999 = samples[rank_index(n, 999)];
    out->max = samples[n - 1];
}

void tool_print_percentiles(FILE *f, const char *label, const tool_percentiles_t *p) {
    fprintf(f, "%s p50=%llu p90=%llu p99=%llu p999=%llu max=%llu count=%llu\n", label,
            (unsigned long long)p->p50, (unsigned long long)p->p90, (unsigned long long)p->p99,
            (unsigned long long)p->p999, (unsigned long long)p->max, (unsigned long long)p->count);
}
