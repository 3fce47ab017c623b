/*
 * shmx-attack-bench: do healthy guests feel a guest that keeps breaking the
 * protocol? (RELIABILITY.md D1: "other peers' latency unaffected"; the target
 * here: their round-trip p99 during the attack <= 1.5 x without it.)
 *
 *   shmx-attack-bench [--guests N (default 3)] [--window-ms MS (default 4000)] [--period-us US (default 1000)]
 *
 * A host in this process: an accept thread, and one echo thread per healthy
 * guest. N healthy guests, each its own shm connection and thread, send 64 B
 * every --period-us and wait for the echo; the round trip is timed
 * (CLOCK_MONOTONIC). After a 1 s warm-up, one window of --window-ms without an
 * attack, then one during which an attacker process (forked before the host
 * exists, so it shares nothing but the segment it is given) loops as fast as
 * it can: connect, write a garbage record header into its own guest-to-host
 * ring (found through /proc/self/maps and the segment header, as a hostile
 * guest would), wait until it is expelled, close, connect again. The host
 * meets each violation in the accept thread, which serves every attacker
 * connection by calling receive on it until the call reports the violation,
 * then frees the channel. The host's log is silenced (one warning per
 * quarantine would measure stderr, not the host).
 *
 * Prints both windows' p50/p99 (us), the p99 ratio, the quarantines
 * (shmx_host_violations) and PASS/FAIL; exits 1 on FAIL or a broken echo.
 * Bounded: about 1 + 2 x window seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmx/shmx.h>

#include "../../native/layout.h" /* the shared layout a hostile guest reads: header fields, ring offsets */
#include "tool_args.h"
#include "tool_stats.h"

#define MSG_BYTES 64u
#define MAX_GUESTS 16u
#define TARGET_RATIO 1.5
#define STEP_NS 2000000000LL
#define MS 1000000LL

enum { PHASE_WARMUP = 0, PHASE_BASE = 1, PHASE_ATTACK = 2, PHASE_DONE = 3 };

/* Both written by main only; every access relaxed: they order nothing, a thread that sees a change a
 * little late only files one more sample in the previous window or serves one more round. */
static _Atomic int phase;
static _Atomic int stop_host;

typedef struct healthy {
    pthread_t thread;
    shmx_guest_t *guest;
    uint64_t period_ns;
    uint64_t *lat[2]; /* ns, per window */
    size_t n[2], cap;
    int failed;       /* a send/receive error or a wrong echo */
} healthy_t;

typedef struct host_ctx {
    shmx_host_t *host;
    uint32_t healthy; /* the first this many accepted channels are healthy guests */
    uint32_t accepted;
    shmx_channel_t *echo_ch[MAX_GUESTS];
    pthread_t echo[MAX_GUESTS];
    uint64_t attacker_channels, violations_met, attacker_other;
} host_ctx_t;

/* ---- host ---------------------------------------------------------------------------------- */

static void *echo_main(void *arg) {
    shmx_channel_t *ch = arg;
    while (!atomic_load_explicit(&stop_host, memory_order_relaxed)) {
        shmx_message_t m;
        int rc = shmx_channel_receive(ch, &m, 50 * MS);
        if (rc == -SHMX_EEMPTY || rc == -ETIMEDOUT) continue;
        if (rc != 0) break;
        shmx_channel_send(ch, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, STEP_NS);
        shmx_channel_release(ch, &m);
    }
    return NULL;
}

/* An attacker's channel: receive until the call meets the violation (or 1 s), then free it. */
static void serve_attacker(host_ctx_t *c, shmx_channel_t *ch) {
    c->attacker_channels++;
    int64_t end = tool_now_ns() + 1000 * MS;
    int rc;
    do {
        shmx_message_t m;
        rc = shmx_channel_receive(ch, &m, 1 * MS);
        if (rc == 0) shmx_channel_release(ch, &m); /* it may send something valid too */
    } while ((rc == -SHMX_EEMPTY || rc == -ETIMEDOUT || rc == 0) && tool_now_ns() < end);
    if (rc == -SHMX_ECORRUPT || rc == -SHMX_EBADSLOT) c->violations_met++;
    else c->attacker_other++;
    shmx_channel_free(ch);
}

static void *accept_main(void *arg) {
    host_ctx_t *c = arg;
    while (!atomic_load_explicit(&stop_host, memory_order_relaxed)) {
        shmx_channel_t *ch = NULL;
        if (shmx_host_accept(c->host, 100 * MS, &ch) != 0) continue;
        if (c->accepted < c->healthy) {
            c->echo_ch[c->accepted] = ch;
            pthread_create(&c->echo[c->accepted], NULL, echo_main, ch);
            c->accepted++;
        } else {
            serve_attacker(c, ch);
        }
    }
    return NULL;
}

/* ---- healthy guests ------------------------------------------------------------------------ */

static void *healthy_main(void *arg) {
    healthy_t *g = arg;
    shmx_channel_t *ch = shmx_guest_channel(g->guest);
    uint8_t out[MSG_BYTES], in[MSG_BYTES * 2];
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (uint32_t seq = 0;; seq++) {
        int p = atomic_load_explicit(&phase, memory_order_relaxed);
        if (p == PHASE_DONE) break;
        memset(out, (int)(seq & 0xff), sizeof out);
        int64_t t0 = tool_now_ns();
        int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, out, sizeof out, STEP_NS);
        int64_t n = id < 0 ? id : shmx_channel_receive_copy(ch, in, sizeof in, NULL, STEP_NS);
        int64_t t1 = tool_now_ns();
        if (n != (int64_t)MSG_BYTES || memcmp(in, out, MSG_BYTES) != 0) {
            g->failed++;
            if (n < 0) break;
        }
        if ((p == PHASE_BASE || p == PHASE_ATTACK) && g->n[p - 1] < g->cap) g->lat[p - 1][g->n[p - 1]++] = (uint64_t)(t1 - t0);
        next.tv_nsec += (long)g->period_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

/* ---- attacker process ---------------------------------------------------------------------- */

/* This process's mapping of the host's segment: a memfd mapped from offset 0 that starts with the magic. */
static uint8_t *find_segment(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    char line[512];
    uint8_t *found = NULL;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) != 4) continue;
        if (off != 0 || perms[0] != 'r' || perms[1] != 'w' || !strstr(line, "memfd:shmx:")) continue;
        if (hi - lo < SHMX_HEADER_BYTES) continue;
        const shmx_segment_header_t *h = (const shmx_segment_header_t *)lo;
        if (__atomic_load_n(&h->magic, __ATOMIC_RELAXED) == SHMX_SEGMENT_MAGIC) found = (uint8_t *)lo;
    }
    fclose(f);
    return found;
}

/* Connect, break the protocol, wait to be expelled, close; again until @stop_fd is readable. */
static void attacker_main(const char *name, int go_fd, int stop_fd, int result_fd) {
    char c;
    if (read(go_fd, &c, 1) != 1) _exit(0);
    uint64_t rounds = 0, expelled = 0, failed = 0;
    for (;;) {
        struct pollfd p = {.fd = stop_fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 0) break;
        shmx_guest_t *g = NULL;
        if (shmx_guest_connect(name, SHMX_TRANSPORT_SHM, STEP_NS, &g) != 0) {
            failed++;
            continue;
        }
        rounds++;
        shmx_channel_t *ch = shmx_guest_channel(g);
        uint8_t *base = find_segment();
        if (base) {
            const shmx_segment_header_t *h = (const shmx_segment_header_t *)base;
            uint8_t *ring = base + h->channels_offset + (uint64_t)shmx_channel_index(ch) * h->channel_stride +
                            SHMX_CHANNEL_RING_DATA_OFFSET(SHMX_RING_GUEST_TO_HOST, h->config.ring_bytes);
            /* A record header of a kind that does not exist (body 64, kind 0x6363), where the host reads next.
             * Release: like a real commit, so the host's acquire load of the header sees it whole. */
            __atomic_store_n((uint64_t *)ring, 0x0000636300000040ull, __ATOMIC_RELEASE);
            int64_t end = tool_now_ns() + STEP_NS;
            int rc;
            do {
                shmx_message_t m;
                rc = shmx_channel_receive(ch, &m, 20 * MS);
            } while ((rc == -SHMX_EEMPTY || rc == -ETIMEDOUT) && tool_now_ns() < end);
            if (rc == -SHMX_EEXPELLED) expelled++;
        } else {
            failed++;
        }
        shmx_guest_close(g);
    }
    uint64_t r[3] = {rounds, expelled, failed};
    if (write(result_fd, r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-attack-bench [--guests N (default 3, at most %u)] [--window-ms MS (default 4000)] "
               "[--period-us US (default 1000)]\n",
            MAX_GUESTS);
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void merge(healthy_t *g, uint64_t n, int w, uint64_t **out, size_t *count) {
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += g[i].n[w];
    *out = malloc((total ? total : 1) * sizeof **out);
    *count = 0;
    for (uint64_t i = 0; *out && i < n; i++) {
        memcpy(*out + *count, g[i].lat[w], g[i].n[w] * sizeof **out);
        *count += g[i].n[w];
    }
}

int main(int argc, char **argv) {
    uint64_t guests = 3, window_ms = 4000, period_us = 1000;
    static const struct option longs[] = {{"guests", required_argument, NULL, 'g'},
                                          {"window-ms", required_argument, NULL, 'w'},
                                          {"period-us", required_argument, NULL, 'p'},
                                          {"help", no_argument, NULL, 'h'},
                                          {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'g': bad = tool_parse_u64(optarg, 1, MAX_GUESTS, &guests); break;
        case 'w': bad = tool_parse_u64(optarg, 100, 60000, &window_ms); break;
        case 'p': bad = tool_parse_u64(optarg, 10, 1000000, &period_us); break;
        case 'h': usage(stdout); return TOOL_EXIT_OK;
        default: bad = -1;
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
    printf("command: ");
    for (int i = 0; i < argc; i++) printf("%s%s", i ? " " : "", argv[i]);
    printf("\n");
    fflush(stdout);

    char name[64];
    snprintf(name, sizeof name, "attackbench-%d", (int)getpid());

    /* The attacker first: forked while this process has one thread and no host. */
    int go[2], stop[2], result[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(stop, O_CLOEXEC) != 0 || pipe2(result, O_CLOEXEC) != 0) return TOOL_EXIT_MISMATCH;
    pid_t attacker = fork();
    if (attacker < 0) return TOOL_EXIT_MISMATCH;
    if (attacker == 0) {
        close(go[1]);
        close(stop[1]);
        close(result[0]);
        attacker_main(name, go[0], stop[0], result[1]);
    }
    close(go[0]);
    close(stop[0]);
    close(result[1]);

    shmx_log_set_handler(NULL, NULL);
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    cfg.max_channels = (uint32_t)guests + 2;
    host_ctx_t hc = {.healthy = (uint32_t)guests};
    int rc = shmx_host_create(name, &cfg, &hc.host);
    if (rc != 0) {
        fprintf(stderr, "shmx-attack-bench: host: %s\n", shmx_strerror(rc));
        kill(attacker, SIGKILL);
        waitpid(attacker, NULL, 0);
        return TOOL_EXIT_CONNECT;
    }
    pthread_t acceptor;
    pthread_create(&acceptor, NULL, accept_main, &hc);

    healthy_t g[MAX_GUESTS];
    memset(g, 0, sizeof g);
    size_t cap = (size_t)(window_ms * 1000 / period_us) + 1024;
    int exit_code = TOOL_EXIT_OK;
    uint64_t connected = 0;
    for (; connected < guests; connected++) {
        g[connected].period_ns = period_us * 1000;
        g[connected].cap = cap;
        g[connected].lat[0] = calloc(cap, sizeof(uint64_t));
        g[connected].lat[1] = calloc(cap, sizeof(uint64_t));
        rc = shmx_guest_connect(name, SHMX_TRANSPORT_SHM, STEP_NS, &g[connected].guest);
        if (rc != 0 || !g[connected].lat[0] || !g[connected].lat[1]) {
            fprintf(stderr, "shmx-attack-bench: healthy guest %" PRIu64 ": %s\n", connected, shmx_strerror(rc));
            exit_code = TOOL_EXIT_CONNECT;
            break;
        }
    }
    for (uint64_t i = 0; i < connected; i++) pthread_create(&g[i].thread, NULL, healthy_main, &g[i]);

    uint64_t att[3] = {0, 0, 0}, violations_before = 0, violations_after = 0;
    if (exit_code == TOOL_EXIT_OK) {
        sleep_ms(1000);
        atomic_store_explicit(&phase, PHASE_BASE, memory_order_relaxed);
        sleep_ms(window_ms);
        violations_before = shmx_host_violations(hc.host);
        atomic_store_explicit(&phase, PHASE_ATTACK, memory_order_relaxed);
        if (write(go[1], "g", 1) != 1) exit_code = TOOL_EXIT_MISMATCH;
        sleep_ms(window_ms);
        atomic_store_explicit(&phase, PHASE_DONE, memory_order_relaxed);
        violations_after = shmx_host_violations(hc.host);
    }
    atomic_store_explicit(&phase, PHASE_DONE, memory_order_relaxed);
    if (write(stop[1], "s", 1) != 1) exit_code = TOOL_EXIT_MISMATCH;
    close(go[1]);
    struct pollfd p = {.fd = result[0], .events = POLLIN};
    if (poll(&p, 1, 5000) != 1 || read(result[0], att, sizeof att) != (ssize_t)sizeof att) kill(attacker, SIGKILL);
    waitpid(attacker, NULL, 0);
    for (uint64_t i = 0; i < connected; i++) pthread_join(g[i].thread, NULL);
    for (uint64_t i = 0; i < connected; i++) shmx_guest_close(g[i].guest);
    atomic_store_explicit(&stop_host, 1, memory_order_relaxed);
    pthread_join(acceptor, NULL);
    for (uint32_t i = 0; i < hc.accepted; i++) pthread_join(hc.echo[i], NULL);
    shmx_host_destroy(hc.host);
    if (exit_code != TOOL_EXIT_OK) return exit_code;

    uint64_t *base, *under;
    size_t nb, nu;
    merge(g, connected, 0, &base, &nb);
    merge(g, connected, 1, &under, &nu);
    tool_percentiles_t pb, pu;
    tool_percentiles(base, nb, &pb);
    tool_percentiles(under, nu, &pu);
    uint64_t failed = 0;
    for (uint64_t i = 0; i < connected; i++) failed += (uint64_t)g[i].failed;
    double ratio = pb.p99 ? (double)pu.p99 / (double)pb.p99 : 0.0;
    printf("%" PRIu64 " healthy guests, %u B round trips every %" PRIu64 " us, windows of %" PRIu64 " ms\n", connected,
           MSG_BYTES, period_us, window_ms);
    printf("without attack: p50=%.1f us p99=%.1f us max=%.1f us (%zu round trips)\n", pb.p50 / 1e3, pb.p99 / 1e3,
           pb.max / 1e3, nb);
    printf("during attack:  p50=%.1f us p99=%.1f us max=%.1f us (%zu round trips)\n", pu.p50 / 1e3, pu.p99 / 1e3,
           pu.max / 1e3, nu);
    printf("p99 ratio (attack / none): %.2f\n", ratio);
    printf("quarantines during the attack (shmx_host_violations): %" PRIu64 "; attacker: %" PRIu64
           " connections, %" PRIu64 " saw itself expelled, %" PRIu64 " failed; host met %" PRIu64
           " violations on %" PRIu64 " attacker channels\n",
           violations_after - violations_before, att[0], att[1], att[2], hc.violations_met, hc.attacker_channels);
    printf("wrong or failed echoes: %" PRIu64 "\n", failed);
    int pass = failed == 0 && nb > 0 && nu > 0 && violations_after > violations_before && ratio <= TARGET_RATIO;
    printf("target p99 during the attack <= %.1fx without, every echo right, quarantines > 0: %s\n", TARGET_RATIO,
           pass ? "PASS" : "FAIL");
    free(base);
    free(under);
    for (uint64_t i = 0; i < MAX_GUESTS; i++) {
        free(g[i].lat[0]);
        free(g[i].lat[1]);
    }
    return pass ? TOOL_EXIT_OK : TOOL_EXIT_MISMATCH;
}
