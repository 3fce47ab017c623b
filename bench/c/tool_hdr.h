/*
 * A latency histogram with the bucket scheme of HdrHistogram (Gil Tene's
 * High Dynamic Range histogram), so that C and Java figures come from the
 * same buckets: values from 1 to @highest with 3 significant decimal digits,
 * i.e. every value is recorded within 0.1% of itself, in fixed memory.
 *
 * Layout: 2048 sub-buckets per bucket (the smallest power of two above
 * 2 * 10^3), bucket k covers [1024 << k, 2048 << k) with a resolution of
 * 1 << k; the first bucket also covers [0, 1024) at resolution 1.
 *
 * Percentiles are taken the way HdrHistogram does: the first bucket at which
 * the cumulative count reaches ceil(p% of the total), reported as the
 * highest value equivalent to that bucket (so within 0.1% above the sample).
 */
#ifndef SHMX_TOOL_HDR_H
#define SHMX_TOOL_HDR_H

#include <stdint.h>
#include <stdio.h>

typedef struct tool_hdr {
    int64_t highest;      /* highest trackable value; larger values are clamped to it */
    int32_t bucket_count;
    int32_t counts_len;
    int64_t total;
    int64_t max;          /* largest recorded value, exact */
    int64_t *counts;
} tool_hdr_t;

/* Allocate a histogram for values 1..@highest (>= 2048). Returns 0 or -ENOMEM. */
int tool_hdr_init(tool_hdr_t *h, int64_t highest);

void tool_hdr_free(tool_hdr_t *h);

/* Record one value (negative values count as 0). */
void tool_hdr_record(tool_hdr_t *h, int64_t value);

/* The value at percentile @p (0..100); 0 when empty. */
int64_t tool_hdr_percentile(const tool_hdr_t *h, double p);

/* The largest recorded value, as its bucket's highest equivalent value (as HdrHistogram's getMaxValue). */
int64_t tool_hdr_max(const tool_hdr_t *h);

/* Mean and standard deviation, counting each sample as the middle of its counter's range (as HdrHistogram). */
double tool_hdr_mean(const tool_hdr_t *h);
double tool_hdr_stddev(const tool_hdr_t *h);

/*
 * Write the percentile distribution in HdrHistogram's .hgrm text format
 * (five reporting ticks per half distance), values divided by @scale (for
 * example 1000.0 to print nanoseconds as microseconds), so that the usual
 * HdrHistogram plotters read C and Java files alike. Returns 0 or -errno.
 */
int tool_hdr_write_hgrm(const tool_hdr_t *h, FILE *f, double scale);

#endif
