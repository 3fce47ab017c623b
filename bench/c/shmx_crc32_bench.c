/*
 * shmx-crc32-bench: throughput of shmx_crc32() against memcpy() at the same
 * sizes in the same run, so the CRC's cost reads as a fraction of a copy.
 *
 *   shmx-crc32-bench [--json] [--reps N]
 *
 * Each figure is the median of N timed repetitions (default 15); each
 * repetition loops over one buffer for about 10 ms, and CRC and memcpy
 * repetitions alternate. Calls are independent (each CRC starts from 0), as
 * a receiver checks one frame after another.
 */
#include <shmx/shmx.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_REPS 101
#define BENCH_REP_NS 10000000.0 /* about 10 ms per repetition: long enough for a noisy 2-core box */

static const size_t bench_sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
#define BENCH_NSIZES (sizeof bench_sizes / sizeof bench_sizes[0])

enum bench_op { BENCH_CRC32, BENCH_MEMCPY };

static volatile uint32_t bench_sink; /* keeps the CRC results alive */

static double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void bench_run(enum bench_op op, unsigned char *dst, const unsigned char *src, size_t len, uint64_t iters)
{
    uint32_t acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        if (op == BENCH_CRC32) {
            acc ^= shmx_crc32(0, src, len);
        } else {
            memcpy(dst, src, len);
            /* The copy must happen: the compiler may not assume dst is unread. */
            __asm__ volatile("" : : "r"(dst) : "memory");
        }
    }
    bench_sink = acc;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Iterations for one repetition: double until a run takes a tenth of it, then scale. */
static uint64_t bench_calibrate(enum bench_op op, unsigned char *dst, const unsigned char *src, size_t len)
{
    for (uint64_t iters = 1;; iters *= 2) {
        double t0 = bench_now_ns();
        bench_run(op, dst, src, len, iters);
        double dt = bench_now_ns() - t0;
        if (dt >= BENCH_REP_NS / 10)
            return (uint64_t)((double)iters * BENCH_REP_NS / dt) + 1;
    }
}

/* Throughput of one repetition in GB/s (1e9 bytes per second). */
static double bench_rep(enum bench_op op, unsigned char *dst, const unsigned char *src, size_t len, uint64_t iters)
{
    double t0 = bench_now_ns();
    bench_run(op, dst, src, len, iters);
    return (double)len * (double)iters / (bench_now_ns() - t0);
}

static double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    return v[n / 2];
}

/* Busy for about 0.2 s first, so the first size is not timed at a cold clock speed. */
static void bench_warm_up(unsigned char *dst, const unsigned char *src, size_t len)
{
    double end = bench_now_ns() + 20 * BENCH_REP_NS;
    while (bench_now_ns() < end) {
        bench_run(BENCH_CRC32, dst, src, len, 16);
        bench_run(BENCH_MEMCPY, dst, src, len, 16);
    }
}

/*
 * Median GB/s of the CRC and of memcpy at @len. Their repetitions alternate,
 * so load from other processes hits both alike and the ratio stays fair.
 */
static void bench_measure(unsigned char *dst, const unsigned char *src, size_t len, int reps, double *crc_gbps,
                          double *copy_gbps)
{
    uint64_t crc_iters = bench_calibrate(BENCH_CRC32, dst, src, len);
    uint64_t copy_iters = bench_calibrate(BENCH_MEMCPY, dst, src, len);
    double crc[BENCH_MAX_REPS], copy[BENCH_MAX_REPS];
    for (int r = 0; r < reps; r++) {
        crc[r] = bench_rep(BENCH_CRC32, dst, src, len, crc_iters);
        copy[r] = bench_rep(BENCH_MEMCPY, dst, src, len, copy_iters);
    }
    *crc_gbps = bench_median(crc, reps);
    *copy_gbps = bench_median(copy, reps);
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: shmx-crc32-bench [--json] [--reps N]\n"
               "  Measures shmx_crc32() and memcpy() throughput (GB/s, median of N runs, default 15)\n"
               "  at 64 B, 1 KiB, 64 KiB and 1 MiB.\n");
}

static const char *bench_size_name(size_t len, char *buf, size_t buf_len)
{
    if (len >= 1024 * 1024)
        snprintf(buf, buf_len, "%zu MiB", len / (1024 * 1024));
    else if (len >= 1024)
        snprintf(buf, buf_len, "%zu KiB", len / 1024);
    else
        snprintf(buf, buf_len, "%zu B", len);
    return buf;
}

int main(int argc, char **argv)
{
    int json = 0;
    int reps = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 1 || v > BENCH_MAX_REPS) {
                fprintf(stderr, "shmx-crc32-bench: --reps takes 1 to %d\n", BENCH_MAX_REPS);
                return 2;
            }
            reps = (int)v;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "shmx-crc32-bench: unknown argument '%s'\n", argv[i]);
            bench_usage(stderr);
            return 2;
        }
    }

    /* A wrong CRC measured fast is worthless: check the standard value first. */
    if (shmx_crc32(0, "123456789", 9) != 0xCBF43926u) {
        fprintf(stderr, "shmx-crc32-bench: shmx_crc32 gives a wrong check value\n");
        return 1;
    }

    size_t max_len = bench_sizes[BENCH_NSIZES - 1];
    unsigned char *src = aligned_alloc(64, max_len);
    unsigned char *dst = aligned_alloc(64, max_len);
    if (src == NULL || dst == NULL) {
        fprintf(stderr, "shmx-crc32-bench: out of memory\n");
        return 1;
    }
    uint32_t seed = 0x12345678u;
    for (size_t i = 0; i < max_len; i++) {
        seed = seed * 1664525u + 1013904223u;
        src[i] = (unsigned char)(seed >> 24);
    }
    memset(dst, 0, max_len);

    bench_warm_up(dst, src, bench_sizes[0]);
    double crc_gbps[BENCH_NSIZES], copy_gbps[BENCH_NSIZES];
    for (size_t s = 0; s < BENCH_NSIZES; s++)
        bench_measure(dst, src, bench_sizes[s], reps, &crc_gbps[s], &copy_gbps[s]);

    const char *impl = shmx_crc32_implementation();
    if (json) {
        printf("{\"benchmark\":\"shmx-crc32\",\"implementation\":\"%s\",\"repetitions\":%d,\"unit\":\"GB/s\","
               "\"results\":[",
               impl, reps);
        for (size_t s = 0; s < BENCH_NSIZES; s++)
            printf("%s{\"bytes\":%zu,\"crc32\":%.3f,\"memcpy\":%.3f}", s ? "," : "", bench_sizes[s],
                   crc_gbps[s], copy_gbps[s]);
        printf("]}\n");
    } else {
        char name[32];
        printf("shmx_crc32 implementation: %s (GB/s = 1e9 bytes/s, median of %d runs)\n", impl, reps);
        printf("%8s  %12s  %12s  %9s\n", "size", "crc32 GB/s", "memcpy GB/s", "crc/copy");
        for (size_t s = 0; s < BENCH_NSIZES; s++)
            printf("%8s  %12.2f  %12.2f  %9.2f\n", bench_size_name(bench_sizes[s], name, sizeof name),
                   crc_gbps[s], copy_gbps[s], crc_gbps[s] / copy_gbps[s]);
    }
    free(src);
    free(dst);
    return 0;
}
