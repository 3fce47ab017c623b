/*
 * Timing and percentiles for the C benchmark programs.
 *
 * Clock: clock_gettime(CLOCK_MONOTONIC) through the vDSO (no system call,
 * about 20 ns per reading on current x86). It needs no calibration and is
 * comparable across processes; its own cost is part of every sample, which
 * the floor program measures the same way, so ratios stay fair.
 */
#ifndef SHMX_TOOL_STATS_H
#define SHMX_TOOL_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t tool_now_ns(void);

typedef struct tool_percentiles {
    uint64_t p50, p90, p99, p999, max;
    uint64_t count;
} tool_percentiles_t;

/*
 * Sort @samples (in place) and take nearest-rank percentiles: the p-th
 * percentile is the smallest sample with at least p% of the samples at or
 * below it. All zero when @n is 0.
 */
void tool_percentiles(uint64_t *samples, size_t n, tool_percentiles_t *out);

/* Print "LABEL p50=... p90=... p99=... p999=... max=... count=..." and a newline. */
void tool_print_percentiles(FILE *f, const char *label, const tool_percentiles_t *p);

#endif
