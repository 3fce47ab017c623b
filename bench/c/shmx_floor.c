/*
 * shmx-floor: the raw floor under any shared-memory round trip on this
 * machine. Two processes (fork) bounce one cache line of a MAP_SHARED
 * anonymous mapping: the parent writes n, the child waits for n and writes
 * n + 1, the parent waits for n + 1. Both busy-spin with the CPU's pause
 * hint; no shmx code is involved. Prints
 *   floor_rtt_ns p50=... p90=... p99=... p999=... max=... count=...
 * timed with CLOCK_MONOTONIC like shmx-ping (see tool_stats.h).
 *
 * On a machine with fewer free cores than two, the two spinners share a core
 * and the figure measures the scheduler instead: run it on an idle machine.
 */
#include <getopt.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tool_args.h"
#include "tool_stats.h"

/* A peer that is gone (or descheduled for this long) ends the run instead of spinning forever. */
#define STALL_LIMIT_NS 10000000000LL
#define DONE UINT64_MAX

typedef struct line {
    alignas(64) _Atomic uint64_t counter;
    char pad[64 - sizeof(uint64_t)];
} line_t;
_Static_assert(sizeof(line_t) == 64, "one cache line");

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin until the counter equals @want or DONE. Returns the value seen, or 0 after a stall. */
static uint64_t spin_for(line_t *l, uint64_t want) {
    int64_t since = 0;
    for (uint32_t i = 1;; i++) {
        /* Acquire: pairs with the other process's release store of the counter. */
        uint64_t v = atomic_load_explicit(&l->counter, memory_order_acquire);
        if (v == want || v == DONE) return v;
        cpu_relax();
        if ((i & 0xFFFFFu) == 0) { /* look at the clock only now and then */
            int64_t now = tool_now_ns();
            if (since == 0) since = now;
            else if (now - since > STALL_LIMIT_NS) return 0;
        }
    }
}

static int child(line_t *l) {
    /* Die with the parent rather than spin on an orphaned mapping. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (uint64_t n = 1;; n += 2) {
        uint64_t v = spin_for(l, n);
        if (v == DONE) return 0;
        if (v == 0) return 1;
        /* Release: pairs with the parent's acquire load in spin_for. */
        atomic_store_explicit(&l->counter, n + 1, memory_order_release);
    }
}

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-floor [--count N (default 200000)] [--warmup N (default 10000)]\n");
}

int main(int argc, char **argv) {
    static const struct option longs[] = {{"count", required_argument, NULL, 'c'},
                                          {"warmup", required_argument, NULL, 'w'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    uint64_t count = 200000, warmup = 10000;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': bad = tool_parse_u64(optarg, 1, UINT32_MAX, &count); break;
        case 'w': bad = tool_parse_u64(optarg, 0, UINT32_MAX, &warmup); break;
        case 'h': usage(stdout); return TOOL_EXIT_OK;
        default: bad = 1;
        }
        if (bad) {
            usage(stderr);
            return TOOL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }

    uint64_t *samples = malloc(count * sizeof *samples);
    line_t *l = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!samples || l == MAP_FAILED) {
        perror("floor: memory");
        return 1;
    }
    atomic_store_explicit(&l->counter, 0, memory_order_relaxed); /* before fork: the child inherits it */
    pid_t pid = fork();
    if (pid < 0) {
        perror("floor: fork");
        return 1;
    }
    if (pid == 0) _exit(child(l));

    int rc = 0;
    uint64_t total = warmup + count;
    for (uint64_t i = 0; i < total; i++) {
        uint64_t n = 2 * i + 1;
        int64_t t0 = tool_now_ns();
        /* Release: pairs with the child's acquire load in spin_for. */
        atomic_store_explicit(&l->counter, n, memory_order_release);
        uint64_t v = spin_for(l, n + 1);
        int64_t t1 = tool_now_ns();
        if (v != n + 1) {
            fprintf(stderr, "floor: the child stopped answering at round %llu\n", (unsigned long long)i);
            rc = 1;
            break;
        }
        if (i >= warmup) samples[i - warmup] = (uint64_t)(t1 - t0);
    }
    atomic_store_explicit(&l->counter, DONE, memory_order_release); /* pairs with spin_for in the child */
    int status = 0;
    if (rc != 0) kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (rc == 0) {
        tool_percentiles_t p;
        tool_percentiles(samples, count, &p);
        tool_print_percentiles(stdout, "floor_rtt_ns", &p);
    }
    free(samples);
    munmap(l, 4096);
    return rc;
}
