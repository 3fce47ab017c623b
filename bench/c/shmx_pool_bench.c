/*
 * shmx-pool-bench: what one pool allocation plus its free costs, alone and
 * with both cores fighting over the same class.
 *
 *   shmx-pool-bench [--batches N] [--batch N] [--size BYTES]
 *
 * Every row times --batches batches of --batch alloc+free pairs of one
 * --size slot (default 4096: the smallest default class) and prints the
 * median and p99 over the batches of the mean ns per pair, counting only
 * batches during which the thread was not preempted (and, contended, the
 * other thread ran too); it says how many batches that kept:
 *   uncontended   one thread, a slot of the segment (the hot path);
 *   extent slot   one thread, a slot of an extent (every segment slot of the
 *                 class held, so the list hands out extent slots only);
 *   contended     two threads at once on the same class, pinned to two
 *                 different cores, so both cores are busy;
 * then the ratio contended / uncontended of the medians, from the same run.
 *
 * The pool's functions are private to libshmx (hidden symbols), so this
 * program compiles the pool's own sources in: it measures the very code the
 * library runs, on an anonymous shared mapping laid out as a segment's pool.
 */
#include "../../native/config.c"
#include "../../native/pool.c"
#include "../../native/wait.c"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "tool_args.h"
#include "tool_stats.h"

#define BENCH_MAX_BATCHES 100001u

typedef struct bench_opts {
    uint32_t batches;
    uint32_t batch;
    uint32_t size;
} bench_opts_t;

typedef struct bench_worker {
    _Alignas(64) _Atomic uint64_t done; /* pairs completed so far (read by the other worker) */
    shmx_pool_t *pool;
    const bench_opts_t *o;
    uint32_t owner;
    uint64_t *samples; /* mean ns per pair (in tenths) of each batch that counts */
    size_t kept;       /* samples kept */
    struct bench_worker *other; /* contended run: a batch counts only if this one ran meanwhile */
    int cpu;                    /* contended run: the core this worker is pinned to */
    pthread_barrier_t *start;
    int failed;
} bench_worker_t;

static const shmx_idle_t bench_idle = {100, 10};

/* Pairs the other worker completed so far (0 when running alone). */
static uint64_t bench_other_done(const bench_worker_t *w) {
    /* Relaxed: a progress figure, nothing is published through it. */
    return w->other == NULL ? 0 : atomic_load_explicit(&w->other->done, memory_order_relaxed);
}

/* Involuntary context switches of the calling thread so far. */
static long bench_preemptions(void) {
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : -1;
}

/*
 * Time o->batches batches of o->batch alloc+free pairs. On a shared 2-core
 * machine threads are often descheduled, so a batch counts only if this
 * thread was not preempted during it (the time would be someone else's)
 * and, with another worker, if that one completed at least half a batch
 * meanwhile (else it was an uncontended batch in disguise).
 */
static void *bench_work(void *arg) {
    bench_worker_t *w = arg;
    w->kept = 0;
    if (w->start != NULL) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->cpu, &one);
        if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) w->failed = 1;
        pthread_barrier_wait(w->start);
        if (w->failed) return NULL;
    }
    for (uint32_t b = 0; b < w->o->batches; b++) {
        long csw0 = bench_preemptions();
        uint64_t other0 = bench_other_done(w);
        int64_t t0 = tool_now_ns();
        for (uint32_t i = 0; i < w->o->batch; i++) {
            shmx_slot_ref_t ref;
            /* Slots are never short (each thread holds at most one): the deadline is never read. */
            if (shmx_pool_alloc(w->pool, w->o->size, w->owner, INT64_MAX, &bench_idle, &ref) != 0 ||
                shmx_pool_free(w->pool, &ref, w->owner) != 0) {
                w->failed = 1;
                return NULL;
            }
            /* Relaxed, on this worker's own line: the same small cost in every row. */
            atomic_store_explicit(&w->done, atomic_load_explicit(&w->done, memory_order_relaxed) + 1u,
                                  memory_order_relaxed);
        }
        int64_t ns = tool_now_ns() - t0;
        if (bench_preemptions() != csw0) continue;
        if (w->other != NULL && bench_other_done(w) - other0 < w->o->batch / 2u) continue;
        w->samples[w->kept++] = (uint64_t)(ns * 10 / (int64_t)w->o->batch);
    }
    return NULL;
}

static void bench_print(const char *label, uint64_t *samples, size_t n, size_t of, uint64_t *median) {
    tool_percentiles_t p;
    tool_percentiles(samples, n, &p);
    printf("%-36s median=%6.1f ns  p99=%6.1f ns  (%zu of %zu batches)\n", label, (double)p.p50 / 10.0,
           (double)p.p99 / 10.0, n, of);
    *median = p.p50;
}

/* An extent of @count slots of class @cls in private memory, added and pushed as the host does it. */
static int bench_add_extent(shmx_pool_t *pool, uint32_t cls, uint32_t count) {
    shmx_extent_layout_t lay;
    if (shmx_extent_layout(pool->cls[cls].slot_size, count, &lay) != 0) return -1;
    void *base = mmap(NULL, lay.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return -1;
    uint32_t first = shmx_pool_class_end(pool, cls);
    shmx_pool_format_slots(base, first, count);
    if (shmx_pool_add_extent(pool, cls, first, count, base, lay.total_bytes) != 0) return -1;
    return shmx_pool_push_extent(pool, cls, first);
}

static int bench_parse(int argc, char **argv, bench_opts_t *o) {
    *o = (bench_opts_t){.batches = 201, .batch = 10000, .size = 4096};
    for (int i = 1; i < argc; i += 2) {
        uint64_t v;
        if (i + 1 >= argc) return -1;
        if (strcmp(argv[i], "--batches") == 0 && tool_parse_u64(argv[i + 1], 1, BENCH_MAX_BATCHES, &v) == 0)
            o->batches = (uint32_t)v;
        else if (strcmp(argv[i], "--batch") == 0 && tool_parse_u64(argv[i + 1], 1, 100000000, &v) == 0)
            o->batch = (uint32_t)v;
        else if (strcmp(argv[i], "--size") == 0 && tool_parse_u64(argv[i + 1], 0, 1u << 20, &v) == 0)
            o->size = (uint32_t)v;
        else
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    if (bench_parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: shmx-pool-bench [--batches N] [--batch N] [--size BYTES (<= 1 MiB)]\n");
        return TOOL_EXIT_USAGE;
    }
    printf("#");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");

    shmx_config_t cfg;
    shmx_config_default(&cfg);
    shmx_layout_t lay;
    if (shmx_layout_compute(&cfg, &lay) != 0) return TOOL_EXIT_MISMATCH;
    uint8_t *base = mmap(NULL, lay.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint64_t *samples = calloc(2u * o.batches, sizeof *samples);
    if (base == MAP_FAILED || samples == NULL) return TOOL_EXIT_MISMATCH;
    shmx_pool_t pool;
    shmx_pool_init(&pool, base, &lay, &cfg, 1);
    uint32_t cls = 0;
    while (pool.cls[cls].slot_size < o.size) cls++;
    printf("slot class %u (%u bytes, %u segment slots), default configuration\n", cls, pool.cls[cls].slot_size,
           pool.cls[cls].slot_count);

    uint64_t alone = 0, crowded = 0, extent = 0;
    static bench_worker_t w[2];
    w[0] = (bench_worker_t){.pool = &pool, .o = &o, .owner = 1, .samples = samples};
    w[1] = (bench_worker_t){.pool = &pool, .o = &o, .owner = 2, .samples = samples + o.batches};
    bench_work(&w[0]);
    bench_print("alloc+free uncontended (1 thread)", samples, w[0].kept, o.batches, &alone);

    /* The first two cores we may run on, one per worker. */
    cpu_set_t ours;
    int cores[2], found = 0;
    if (sched_getaffinity(0, sizeof ours, &ours) != 0) return TOOL_EXIT_MISMATCH;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &ours)) cores[found++] = c;
    if (found < 2) {
        fprintf(stderr, "shmx-pool-bench: the contended row needs two cores; this process may use one\n");
        return TOOL_EXIT_MISMATCH;
    }
    printf("contended workers pinned to cores %d and %d\n", cores[0], cores[1]);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        w[t].start = &start;
        w[t].other = &w[1 - t];
        w[t].cpu = cores[t];
        pthread_create(&th[t], NULL, bench_work, &w[t]);
    }
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    /* Both workers' kept samples, side by side. */
    memmove(samples + w[0].kept, samples + o.batches, w[1].kept * sizeof *samples);
    size_t both = w[0].kept + w[1].kept;
    if (w[0].kept == 0 || both == 0) {
        fprintf(stderr, "shmx-pool-bench: no batch ran undisturbed (or both threads at once); try more --batches\n");
        return TOOL_EXIT_MISMATCH;
    }
    bench_print("alloc+free contended (2 threads)", samples, both, 2u * o.batches, &crowded);

    /* Hold every segment slot of the class, then grow it: only extent slots come off its list. */
    uint32_t held_n = pool.cls[cls].slot_count;
    shmx_slot_ref_t *held = calloc(held_n, sizeof *held);
    int ok = held != NULL;
    for (uint32_t i = 0; ok && i < held_n; i++)
        ok = shmx_pool_alloc(&pool, o.size, 3, INT64_MAX, &bench_idle, &held[i]) == 0 && held[i].cls == cls;
    ok = ok && bench_add_extent(&pool, cls, 64) == 0;
    w[0].start = NULL;
    w[0].other = NULL;
    if (ok) bench_work(&w[0]);
    if (ok && !w[0].failed)
        bench_print("alloc+free uncontended, extent slot", samples, w[0].kept, o.batches, &extent);

    if (!ok || w[0].failed || w[1].failed) {
        fprintf(stderr, "shmx-pool-bench: an allocation or a free failed\n");
        return TOOL_EXIT_MISMATCH;
    }
    printf("ratio contended/uncontended (medians): %.2f\n", (double)crowded / (double)alone);
    printf("ratio extent/segment slot (medians): %.2f\n", (double)extent / (double)alone);
    return TOOL_EXIT_OK;
}
