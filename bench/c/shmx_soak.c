/*
 * shmx-soak: a kill loop against one host (issue 4's second target: host
 * memory and fd count flat, zero leaked slots, healthy guests' round-trip
 * p99 within 1.5x of a run without kills). scripts/soak runs it.
 *
 *   shmx-soak --minutes N [--healthy N (default 2)] [--victims N (default 3)]
 *
 * The host (this process) accepts guests on one thread and echoes each
 * channel on a thread of its own, which frees the channel when its guest
 * ends. Guests are separate processes (this program run again with --role):
 * "healthy" guests do a paced round trip every millisecond, 64 bytes and
 * every 100th 64 KiB, check every echo, and report histograms of their
 * latencies; "victims" send bursts of 1-3 messages of mixed sizes, hold the
 * echoes, release them, pause a little, forever.
 * Phase 1 (baseline, 20% of the time, at least 30 s or half a short run):
 * victims run but nobody is killed. Phase 2: the same, while this process
 * SIGKILLs a random victim every 50-300 ms and starts a new one.
 * Then every guest ends, every channel is freed, and the pool is counted
 * from outside: the pool cannot grow (pool_max_bytes is the segment's own
 * pool), so claiming slot after slot of each class on a fresh channel
 * until none is left counts the free slots with the public API alone
 * (libshmx exports nothing else); the same count is taken at the start.
 * Ctrl-C (SIGINT/SIGTERM) stops early: every guest is killed and reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <shmx/shmx.h>

#include "tool_args.h"
#include "tool_stats.h"

#define MAX_GUESTS 16
#define HIST_BUCKETS 2048 /* log-linear: 32 per power of two, ~3% wide */
#define MS 1000000LL
#define SECOND 1000000000LL
#define RTT_PERIOD_NS 1000000LL /* a healthy guest's pace */
#define BIG 65536u
#define TARGET_RATIO 1.5
/* Waits spin briefly, then sleep: a dozen threads spinning for a millisecond each would turn a
 * 2-CPU machine's scheduler into the figure being measured. Same in both phases. */
#define SPIN 2000u
#define YIELDS 20u

/* ---- latency histograms (healthy guests write them to the host through a pipe) ---- */

typedef struct hist {
    uint64_t n[HIST_BUCKETS];
} hist_t;

static int bucket_of(uint64_t v) {
    if (v < 32) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int b = (msb - 4) * 32 + (int)((v >> (msb - 5)) & 31u);
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t bucket_mid(int b) {
    if (b < 32) return (uint64_t)b;
    int msb = b / 32 + 4;
    uint64_t lo = (uint64_t)(32 + b % 32) << (msb - 5);
    return lo + ((1ull << (msb - 5)) >> 1);
}

/* Nearest-rank percentile @p (0..100) in ns. */
static uint64_t hist_pct(const hist_t *h, double p) {
    uint64_t total = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) total += h->n[i];
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)total + 0.999999);
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) return bucket_mid(i);
    }
    return bucket_mid(HIST_BUCKETS - 1);
}

static uint64_t hist_count(const hist_t *h) {
    uint64_t t = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) t += h->n[i];
    return t;
}

/* ---- guests -------------------------------------------------------------------------- */

static uint8_t pattern_byte(uint32_t seed, uint32_t i) { return (uint8_t)(seed * 131u + i * 7u + (i >> 8)); }

static int send_seeded(shmx_channel_t *ch, uint32_t len, uint32_t seed) {
    void *dst;
    int rc = shmx_channel_claim(ch, len, 5 * SECOND, &dst);
    if (rc != 0) return rc;
    uint8_t *p = dst;
    for (uint32_t i = 0; i < len; i++) p[i] = pattern_byte(seed, i);
    int64_t id = shmx_channel_commit(ch, SHMX_TYPE_DATA, 0, 0);
    return id < 0 ? (int)id : 0;
}

static int check_seeded(const shmx_message_t *m, uint32_t len, uint32_t seed) {
    if (m->length != len) return -1;
    const uint8_t *p = m->data;
    for (uint32_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(seed, i)) return -1;
    return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* A healthy guest: paced round trips for @seconds, then both histograms to stdout. Exit 0 or a step. */
static int healthy_main(const char *name, uint64_t seconds) {
    shmx_guest_t *g = NULL;
    if (shmx_guest_connect(name, SHMX_TRANSPORT_SHM, 10 * SECOND, &g) != 0) return 2;
    shmx_channel_t *ch = shmx_guest_channel(g);
    shmx_channel_set_idle(ch, SPIN, YIELDS);
    static hist_t small, big;
    int64_t end = tool_now_ns() + (int64_t)seconds * SECOND;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    int rc = 0;
    for (uint32_t i = 0; tool_now_ns() < end && !stop_requested; i++) {
        uint32_t len = i % 100 == 99 ? BIG : 64;
        int64_t t0 = tool_now_ns();
        if (send_seeded(ch, len, i) != 0) {
            rc = 3;
            break;
        }
        shmx_message_t m;
        if (shmx_channel_receive(ch, &m, 5 * SECOND) != 0) {
            rc = 4;
            break;
        }
        int64_t t1 = tool_now_ns();
        if (check_seeded(&m, len, i) != 0) rc = 5;
        shmx_channel_release(ch, &m);
        if (rc) break;
        hist_t *h = len == BIG ? &big : &small;
        h->n[bucket_of((uint64_t)(t1 - t0))]++;
        next.tv_nsec += RTT_PERIOD_NS;
        if (next.tv_nsec >= SECOND) {
            next.tv_nsec -= SECOND;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    shmx_guest_close(g);
    if (fwrite(&small, sizeof small, 1, stdout) != 1 || fwrite(&big, sizeof big, 1, stdout) != 1) return 6;
    fflush(stdout);
    return rc;
}

/* A victim: bursts with held echoes, forever (until killed). */
static int victim_main(const char *name) {
    shmx_guest_t *g = NULL;
    if (shmx_guest_connect(name, SHMX_TRANSPORT_SHM, 10 * SECOND, &g) != 0) return 2;
    shmx_channel_t *ch = shmx_guest_channel(g);
    shmx_channel_set_idle(ch, SPIN, YIELDS);
    static const uint32_t sizes[] = {64, 64, 3000, 60000};
    uint32_t rnd = (uint32_t)getpid() * 2654435761u;
    for (uint32_t seq = 0;; seq += 4) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t n = 1 + (rnd >> 16) % 3, len[3];
        for (uint32_t k = 0; k < n; k++) {
            rnd = rnd * 1103515245u + 12345u;
            len[k] = sizes[(rnd >> 16) % 4];
            if (send_seeded(ch, len[k], seq + k) != 0) return 3;
        }
        shmx_message_t held[3];
        for (uint32_t k = 0; k < n; k++) {
            if (shmx_channel_receive(ch, &held[k], 5 * SECOND) != 0) return 4;
            if (check_seeded(&held[k], len[k], seq + k) != 0) return 5;
        }
        for (uint32_t k = 0; k < n; k++) shmx_channel_release(ch, &held[k]);
        struct timespec ts = {0, (long)(500000 + (rnd >> 8) % 1500000)};
        nanosleep(&ts, NULL);
    }
}

/* ---- the host -------------------------------------------------------------------------- */

typedef struct soak_host {
    shmx_host_t *host;
    atomic_int stop;
    atomic_int live;        /* channels being served */
    atomic_int echo_errors; /* echo sends that failed other than by the guest's end */
    atomic_uint died, closed, other;
} soak_host_t;

static void on_event(void *arg, const shmx_peer_event_t *e) {
    soak_host_t *s = arg;
    /* Relaxed: counters read once the run is over. */
    if (e->reason == SHMX_PEER_DIED) atomic_fetch_add_explicit(&s->died, 1, memory_order_relaxed);
    else if (e->reason == SHMX_PEER_CLOSED) atomic_fetch_add_explicit(&s->closed, 1, memory_order_relaxed);
    else atomic_fetch_add_explicit(&s->other, 1, memory_order_relaxed);
}

typedef struct serve_arg {
    soak_host_t *s;
    shmx_channel_t *ch;
} serve_arg_t;

static void *serve(void *arg) {
    serve_arg_t a = *(serve_arg_t *)arg;
    free(arg);
    shmx_channel_set_idle(a.ch, SPIN, YIELDS);
    for (;;) {
        shmx_message_t m;
        int rc = shmx_channel_receive(a.ch, &m, 50 * MS);
        if (rc == -SHMX_EEMPTY) {
            if (atomic_load(&a.s->stop)) break;
            continue;
        }
        if (rc != 0) break; /* the guest ended */
        int64_t id = shmx_channel_send(a.ch, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, SECOND);
        if (id < 0 && id != -SHMX_ECLOSED) atomic_fetch_add(&a.s->echo_errors, 1);
        shmx_channel_release(a.ch, &m);
    }
    shmx_channel_free(a.ch);
    atomic_fetch_sub(&a.s->live, 1);
    return NULL;
}

static void *accept_loop(void *arg) {
    soak_host_t *s = arg;
    while (!atomic_load(&s->stop)) {
        shmx_channel_t *ch = NULL;
        if (shmx_host_accept(s->host, 50 * MS, &ch) != 0) continue; /* timeouts; guests killed mid-handshake */
        serve_arg_t *a = malloc(sizeof *a);
        pthread_t t;
        atomic_fetch_add(&s->live, 1);
        if (a) *a = (serve_arg_t){s, ch};
        if (!a || pthread_create(&t, NULL, serve, a) != 0) {
            free(a);
            shmx_channel_free(ch);
            atomic_fetch_sub(&s->live, 1);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* Resident KiB of this process: all of it (VmRSS) and its private memory (RssAnon). */
static void rss_kib(long *all, long *anon) {
    *all = *anon = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *all = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "RssAnon:", 8) == 0) *anon = strtol(line + 8, NULL, 10);
    }
    fclose(f);
}

/* Count the free pool slots from outside (see the top): claim each class to exhaustion on a fresh channel. */
typedef struct probe_arg {
    const char *name;
    shmx_guest_t *g;
    int rc;
} probe_arg_t;

static void *probe_connect(void *arg) {
    probe_arg_t *p = arg;
    p->rc = shmx_guest_connect(p->name, SHMX_TRANSPORT_SHM, 10 * SECOND, &p->g);
    return NULL;
}

static long count_free_slots(soak_host_t *s, const char *name, const shmx_config_t *cfg) {
    probe_arg_t p = {.name = name};
    pthread_t t;
    if (pthread_create(&t, NULL, probe_connect, &p) != 0) return -1;
    shmx_channel_t *ch = NULL;
    /* The accept thread is stopped while we probe: this thread takes the probe's channel. */
    int rc = shmx_host_accept(s->host, 10 * SECOND, &ch);
    pthread_join(t, NULL);
    if (rc != 0 || p.rc != 0) {
        if (ch) shmx_channel_free(ch);
        shmx_guest_close(p.g);
        return -1;
    }
    long n = 0;
    /* Largest class first: a claim takes the smallest fitting class that has a slot. */
    for (int k = (int)cfg->class_count - 1; k >= 0; k--) {
        uint32_t len = k == 0 ? cfg->inline_max + 1 : cfg->class_size[k - 1] + 1;
        void *dst;
        while (shmx_channel_claim(ch, len, 0, &dst) == 0) {
            if (shmx_channel_commit(ch, SHMX_TYPE_DATA, 0, 0) < 0) return -1;
            n++;
        }
    }
    shmx_guest_close(p.g);
    shmx_channel_free(ch);
    return n;
}

/* ---- children -------------------------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int out; /* healthy: the read end of its stdout */
} child_t;

static const char *self_exe = "/proc/self/exe";

static child_t spawn(const char *role, const char *name, uint64_t seconds) {
    child_t c = {-1, -1};
    int fds[2] = {-1, -1};
    int healthy = strcmp(role, "healthy") == 0;
    if (healthy && pipe2(fds, O_CLOEXEC) != 0) return c;
    char secs[32];
    snprintf(secs, sizeof secs, "%llu", (unsigned long long)seconds);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the soak */
        if (healthy) dup2(fds[1], 1);
        execl(self_exe, "shmx-soak", "--role", role, "--name", name, "--seconds", secs, (char *)NULL);
        _exit(127);
    }
    if (healthy) close(fds[1]);
    c.pid = pid;
    c.out = healthy ? fds[0] : -1;
    return c;
}

static void kill_reap(child_t *c) {
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    if (c->out >= 0) close(c->out);
    c->pid = -1;
    c->out = -1;
}

/* Collect a healthy guest's histograms after it ends (bounded); 0 or -1. */
static int collect(child_t *c, hist_t *small, hist_t *big, int64_t wait_ns) {
    static hist_t hs, hb;
    size_t want = sizeof hs + sizeof hb, got = 0;
    uint8_t *buf = malloc(want);
    int64_t end = tool_now_ns() + wait_ns;
    while (buf && got < want) {
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        int64_t left = end - tool_now_ns();
        if (left <= 0 || poll(&p, 1, (int)(left / MS) + 1) <= 0) break;
        ssize_t n = read(c->out, buf + got, want - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    int status = -1;
    if (got == want) waitpid(c->pid, &status, 0);
    else kill_reap(c);
    c->pid = -1;
    if (got == want) {
        memcpy(&hs, buf, sizeof hs);
        memcpy(&hb, buf + sizeof hs, sizeof hb);
        for (int i = 0; i < HIST_BUCKETS; i++) {
            small->n[i] += hs.n[i];
            big->n[i] += hb.n[i];
        }
    }
    free(buf);
    if (c->out >= 0) close(c->out);
    c->out = -1;
    if (got != want || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shmx-soak: a healthy guest failed (status %d, %zu of %zu report bytes)\n", status, got, want);
        return -1;
    }
    return 0;
}

typedef struct phase_result {
    hist_t small, big;
    int healthy_failures;
    unsigned kills;
    unsigned victim_failures; /* victims that ended on their own (not by our SIGKILL) */
} phase_result_t;

typedef struct sample {
    int fds_max;
    long rss_max, anon_max;
} sample_t;

static void sample(sample_t *m) {
    int fds = count_fds();
    long all, anon;
    rss_kib(&all, &anon);
    if (fds > m->fds_max) m->fds_max = fds;
    if (all > m->rss_max) m->rss_max = all;
    if (anon > m->anon_max) m->anon_max = anon;
}

static void run_phase(const char *name, uint64_t seconds, int healthy_n, int victims_n, int kills,
                      phase_result_t *r, sample_t *m) {
    child_t healthy[MAX_GUESTS], victims[MAX_GUESTS];
    for (int i = 0; i < victims_n; i++) victims[i] = spawn("victim", name, 0);
    for (int i = 0; i < healthy_n; i++) healthy[i] = spawn("healthy", name, seconds);
    int64_t end = tool_now_ns() + (int64_t)seconds * SECOND;
    int64_t next_sample = 0;
    uint32_t rnd = (uint32_t)getpid();
    while (!stop_requested && tool_now_ns() < end) {
        rnd = rnd * 1103515245u + 12345u;
        int64_t pause_ns = kills ? (50 + (rnd >> 16) % 250) * MS : 100 * MS;
        struct timespec ts = {0, (long)pause_ns};
        nanosleep(&ts, NULL);
        /* A victim that ended on its own is a failure (it may not see an error): replace it. */
        for (int i = 0; i < victims_n; i++) {
            int st;
            if (victims[i].pid > 0 && waitpid(victims[i].pid, &st, WNOHANG) == victims[i].pid) {
                fprintf(stderr, "shmx-soak: a victim ended on its own (status %d)\n", st);
                r->victim_failures++;
                victims[i] = spawn("victim", name, 0);
            }
        }
        if (kills && tool_now_ns() < end) {
            rnd = rnd * 1103515245u + 12345u;
            int i = (int)((rnd >> 16) % (uint32_t)victims_n);
            kill_reap(&victims[i]);
            r->kills++;
            victims[i] = spawn("victim", name, 0);
        }
        if (tool_now_ns() >= next_sample) {
            sample(m);
            next_sample = tool_now_ns() + SECOND;
        }
    }
    for (int i = 0; i < healthy_n; i++) {
        if (stop_requested) kill_reap(&healthy[i]);
        else if (collect(&healthy[i], &r->small, &r->big, 20 * SECOND) != 0) r->healthy_failures++;
    }
    for (int i = 0; i < victims_n; i++) kill_reap(&victims[i]);
}

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-soak --minutes N [--healthy N (default 2)] [--victims N (default 3)]\n");
}

int main(int argc, char **argv) {
    uint64_t minutes = 0, seconds = 0, healthy_n = 2, victims_n = 3;
    const char *role = NULL, *name_arg = NULL;
    static const struct option longs[] = {{"minutes", required_argument, NULL, 'm'},
                                          {"healthy", required_argument, NULL, 'y'},
                                          {"victims", required_argument, NULL, 'v'},
                                          {"role", required_argument, NULL, 'r'},
                                          {"name", required_argument, NULL, 'n'},
                                          {"seconds", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': bad = tool_parse_u64(optarg, 1, 24 * 60, &minutes); break;
        case 'y': bad = tool_parse_u64(optarg, 1, 4, &healthy_n); break;
        case 'v': bad = tool_parse_u64(optarg, 1, 8, &victims_n); break;
        case 'r': role = optarg; break;
        case 'n': name_arg = optarg; break;
        case 's': bad = tool_parse_u64(optarg, 0, 1u << 30, &seconds); break;
        case 'h': usage(stdout); return TOOL_EXIT_OK;
        default: bad = -1;
        }
        if (bad) {
            usage(stderr);
            return TOOL_EXIT_USAGE;
        }
    }
    if (role && name_arg) {
        signal(SIGINT, on_stop); /* a healthy guest still reports on Ctrl-C; the host kills it anyway */
        if (strcmp(role, "healthy") == 0) return healthy_main(name_arg, seconds);
        if (strcmp(role, "victim") == 0) return victim_main(name_arg);
    }
    if (minutes == 0 || optind != argc) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t total = minutes * 60;
    uint64_t base_secs = total / 5;
    if (base_secs < 30) base_secs = 30 < total / 2 ? 30 : total / 2;
    uint64_t kill_secs = total - base_secs;

    char name[64];
    snprintf(name, sizeof name, "soak-%d", (int)getpid());
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    cfg.max_channels = MAX_GUESTS;
    cfg.class_slots[1] = 64; /* 64 KiB: the healthy guests' large round trips and the victims' 60000 */
    uint64_t pool_bytes = 0, total_slots = 0;
    for (uint32_t k = 0; k < cfg.class_count; k++) {
        pool_bytes += (uint64_t)cfg.class_slots[k] * cfg.class_size[k];
        total_slots += cfg.class_slots[k];
    }
    cfg.pool_max_bytes = pool_bytes;        /* the pool never grows: its slots can be counted from outside */
    cfg.window_bytes = (uint32_t)pool_bytes; /* one channel may hold every slot (the count needs it) */

    soak_host_t s;
    memset(&s, 0, sizeof s);
    int rc = shmx_host_create(name, &cfg, &s.host);
    if (rc != 0) {
        fprintf(stderr, "shmx-soak: host: %s\n", shmx_strerror(rc));
        return TOOL_EXIT_CONNECT;
    }
    shmx_host_set_peer_listener(s.host, on_event, &s);
    long free_start = count_free_slots(&s, name, &cfg);
    int fds_start = count_fds();
    long rss_start, anon_start;
    rss_kib(&rss_start, &anon_start);
    sample_t m = {fds_start, rss_start, anon_start};

    pthread_t acceptor;
    if (pthread_create(&acceptor, NULL, accept_loop, &s) != 0) return TOOL_EXIT_MISMATCH;
    printf("shmx-soak: %llu s baseline (no kills), then %llu s of kills; %llu healthy guests, %llu victims\n",
           (unsigned long long)base_secs, (unsigned long long)kill_secs, (unsigned long long)healthy_n,
           (unsigned long long)victims_n);
    fflush(stdout);
    static phase_result_t base, kills;
    run_phase(name, base_secs, (int)healthy_n, (int)victims_n, 0, &base, &m);
    long rss_mid, anon_mid;
    rss_kib(&rss_mid, &anon_mid);
    int fds_mid = count_fds();
    if (!stop_requested) run_phase(name, kill_secs, (int)healthy_n, (int)victims_n, 1, &kills, &m);

    /* Every guest is gone: wait (bounded) until every channel is freed, then stop accepting. */
    for (int i = 0; i < 500 && atomic_load(&s.live) > 0; i++) {
        struct timespec ts = {0, 10 * MS};
        nanosleep(&ts, NULL);
    }
    int left = atomic_load(&s.live);
    atomic_store(&s.stop, 1);
    pthread_join(acceptor, NULL);
    for (int i = 0; i < 200 && atomic_load(&s.live) > 0; i++) {
        struct timespec ts = {0, 10 * MS};
        nanosleep(&ts, NULL);
    }
    long rss_end, anon_end;
    rss_kib(&rss_end, &anon_end);
    int fds_before_count = count_fds();
    long free_end = count_free_slots(&s, name, &cfg);
    /* After the count's accept: an entry whose guest had not quite hung up when its channel was
     * freed keeps its socket until the next accept reaps it (host.c), which the count makes. */
    int fds_end = count_fds();
    sample(&m);

    uint64_t b50 = hist_pct(&base.small, 50), b99 = hist_pct(&base.small, 99);
    uint64_t k50 = hist_pct(&kills.small, 50), k99 = hist_pct(&kills.small, 99);
    double ratio = b99 ? (double)k99 / (double)b99 : 0;
    long leaked = free_end < 0 ? -1 : (long)total_slots - free_end;
    long anon_growth = anon_end - anon_mid;
    int mem_flat = anon_growth <= 4096 + anon_mid / 10; /* KiB: private memory during the kill phase */
    int fds_flat = fds_end == fds_start;
    int failures = base.healthy_failures + kills.healthy_failures + (int)base.victim_failures +
                   (int)kills.victim_failures + atomic_load(&s.echo_errors) + (left != 0);
    int pass = !stop_requested && leaked == 0 && free_start == (long)total_slots && mem_flat && fds_flat &&
               ratio <= TARGET_RATIO && failures == 0 && kills.kills > 0;

    printf("command: ");
    for (int i = 0; i < argc; i++) printf("%s%s", i ? " " : "", argv[i]);
    printf("\n");
    printf("host RSS (KiB):        start %ld, kill phase start %ld, end %ld, max %ld\n", rss_start, rss_mid, rss_end,
           m.rss_max);
    printf("host private RSS (KiB): start %ld, kill phase start %ld, end %ld, max %ld (growth in the kill phase %ld)\n",
           anon_start, anon_mid, anon_end, m.anon_max, anon_growth);
    printf("host fds:              start %d, kill phase start %d, end %d (before the next accept %d), max %d\n",
           fds_start, fds_mid, fds_end, fds_before_count, m.fds_max);
    printf("pool slots:            total %llu, free at start %ld, free at end %ld, leaked %ld\n",
           (unsigned long long)total_slots, free_start, free_end, leaked);
    printf("kills:                 %u (death events %u, closes %u, other %u)\n", kills.kills, atomic_load(&s.died),
           atomic_load(&s.closed), atomic_load(&s.other));
    printf("healthy 64 B RTT (us): baseline p50 %.1f p99 %.1f (%llu trips); kill phase p50 %.1f p99 %.1f (%llu trips);"
           " p99 ratio %.2f\n",
           b50 / 1e3, b99 / 1e3, (unsigned long long)hist_count(&base.small), k50 / 1e3, k99 / 1e3,
           (unsigned long long)hist_count(&kills.small), ratio);
    printf("healthy 64 KiB RTT (us): baseline p50 %.1f p99 %.1f; kill phase p50 %.1f p99 %.1f\n",
           hist_pct(&base.big, 50) / 1e3, hist_pct(&base.big, 99) / 1e3, hist_pct(&kills.big, 50) / 1e3,
           hist_pct(&kills.big, 99) / 1e3);
    printf("failures:              healthy %d, victims ending on their own %u, echo errors %d, channels never freed %d\n",
           base.healthy_failures + kills.healthy_failures, base.victim_failures + kills.victim_failures,
           atomic_load(&s.echo_errors), left);
    printf("targets: memory flat %s, fds flat %s, zero leaked slots %s, p99 ratio <= %.1f %s: %s%s\n",
           mem_flat ? "yes" : "NO", fds_flat ? "yes" : "NO", leaked == 0 ? "yes" : "NO", TARGET_RATIO,
           ratio <= TARGET_RATIO ? "yes" : "NO", pass ? "PASS" : "FAIL", stop_requested ? " (interrupted)" : "");
    shmx_host_destroy(s.host);
    return pass ? TOOL_EXIT_OK : TOOL_EXIT_MISMATCH;
}
