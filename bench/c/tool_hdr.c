/* HdrHistogram's bucket scheme in C (see tool_hdr.h): 3 significant digits, unit 1. */
#include "tool_hdr.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define SUB_BUCKET_HALF_MAGNITUDE 10 /* 2048 sub-buckets: the first power of two >= 2 * 10^3 */
#define SUB_BUCKET_COUNT (1 << (SUB_BUCKET_HALF_MAGNITUDE + 1))
#define SUB_BUCKET_HALF (SUB_BUCKET_COUNT / 2)
#define SUB_BUCKET_MASK ((int64_t)SUB_BUCKET_COUNT - 1)
#define SIGNIFICANT_DIGITS 3

static int bucket_of(int64_t v) {
    /* The bucket is how far the highest set bit lies above the sub-bucket range. */
    return 63 - SUB_BUCKET_HALF_MAGNITUDE - __builtin_clzll((uint64_t)(v | SUB_BUCKET_MASK));
}

static int32_t index_of(int64_t v) {
    int b = bucket_of(v);
    int32_t sub = (int32_t)(v >> b);
    return ((b + 1) << SUB_BUCKET_HALF_MAGNITUDE) + (sub - SUB_BUCKET_HALF);
}

static int64_t value_at(int32_t index) {
    int b = (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1;
    int64_t sub = (index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
    if (b < 0) { /* the first half-bucket: values 0..1023 at resolution 1 */
        sub -= SUB_BUCKET_HALF;
        b = 0;
    }
    return sub << b;
}

/* The largest value recorded into the same counter as @v. */
static int64_t highest_equivalent(int64_t v) {
    int b = bucket_of(v);
    return ((v >> b) << b) + ((int64_t)1 << b) - 1;
}

int tool_hdr_init(tool_hdr_t *h, int64_t highest) {
    if (highest < SUB_BUCKET_COUNT) highest = SUB_BUCKET_COUNT;
    int32_t buckets = 1;
    for (int64_t reach = SUB_BUCKET_COUNT; reach <= highest && reach < INT64_MAX / 2; reach <<= 1) buckets++;
    *h = (tool_hdr_t){.highest = highest, .bucket_count = buckets};
    h->counts_len = (buckets + 1) * SUB_BUCKET_HALF;
    h->counts = calloc((size_t)h->counts_len, sizeof *h->counts);
    return h->counts ? 0 : -ENOMEM;
}

void tool_hdr_free(tool_hdr_t *h) {
    free(h->counts);
    h->counts = NULL;
}

void tool_hdr_record(tool_hdr_t *h, int64_t value) {
    if (value < 0) value = 0;
    if (value > h->highest) value = h->highest;
    h->counts[index_of(value)]++;
    h->total++;
    if (value > h->max) h->max = value;
}

int64_t tool_hdr_percentile(const tool_hdr_t *h, double p) {
    if (h->total == 0) return 0;
    if (p > 100.0) p = 100.0;
    /* Nearest rank; nudged down first, as HdrHistogram does, so that 99.9% of 100000 is 99900
     * and not 99901 through the rounding of 99.9 / 100. */
    int64_t want = (int64_t)ceil(nextafter(p, -INFINITY) / 100.0 * (double)h->total);
    if (want < 1) want = 1;
    int64_t seen = 0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        seen += h->counts[i];
        if (seen >= want) return highest_equivalent(value_at(i));
    }
    return tool_hdr_max(h);
}

int64_t tool_hdr_max(const tool_hdr_t *h) { return h->total ? highest_equivalent(h->max) : 0; }

/* The middle of the counter's value range: what HdrHistogram's mean and deviation count each sample as. */
static double median_equivalent(int32_t index) {
    int64_t v = value_at(index);
    int b = bucket_of(v);
    return (double)(v + (((int64_t)1 << b) >> 1));
}

double tool_hdr_mean(const tool_hdr_t *h) {
    if (h->total == 0) return 0.0;
    double sum = 0.0;
    for (int32_t i = 0; i < h->counts_len; i++)
        if (h->counts[i]) sum += median_equivalent(i) * (double)h->counts[i];
    return sum / (double)h->total;
}

double tool_hdr_stddev(const tool_hdr_t *h) {
    if (h->total == 0) return 0.0;
    double m = tool_hdr_mean(h), sq = 0.0;
    for (int32_t i = 0; i < h->counts_len; i++) {
        if (h->counts[i] == 0) continue;
        double d = median_equivalent(i) - m;
        sq += d * d * (double)h->counts[i];
    }
    return sqrt(sq / (double)h->total);
}

int tool_hdr_write_hgrm(const tool_hdr_t *h, FILE *f, double scale) {
    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    double level = 0.0; /* next percentile to report, in percent */
    int64_t seen = 0;
    for (int32_t i = 0; i < h->counts_len && seen < h->total; i++) {
        if (h->counts[i] == 0) continue;
        seen += h->counts[i];
        double v = (double)highest_equivalent(value_at(i)) / scale;
        /* Reporting steps halve with each halving of the remaining distance to 100%, five per
         * half; the last bucket reports one step, then the 100% line below. */
        while ((double)seen * 100.0 / (double)h->total >= level) {
            fprintf(f, "%12.*f %2.12f %10lld %14.2f\n", SIGNIFICANT_DIGITS, v, level / 100.0, (long long)seen,
                    1.0 / (1.0 - level / 100.0));
            double halvings = floor(log2(100.0 / (100.0 - level)));
            level += 100.0 / (5.0 * pow(2.0, halvings + 1.0));
            if (seen == h->total) break;
        }
    }
    if (h->total > 0)
        fprintf(f, "%12.*f %2.12f %10lld\n", SIGNIFICANT_DIGITS, (double)tool_hdr_max(h) / scale, 1.0,
                (long long)h->total);
    fprintf(f, "#[Mean    = %12.*f, StdDeviation   = %12.*f]\n", SIGNIFICANT_DIGITS, tool_hdr_mean(h) / scale,
            SIGNIFICANT_DIGITS, tool_hdr_stddev(h) / scale);
    fprintf(f, "#[Max     = %12.*f, Total count    = %12lld]\n", SIGNIFICANT_DIGITS, (double)tool_hdr_max(h) / scale,
            (long long)h->total);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", h->bucket_count, SUB_BUCKET_COUNT);
    return ferror(f) ? -EIO : 0;
}
