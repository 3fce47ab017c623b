/*
 * shmx-attack-bench: do healthy guests feel a guest that keeps breaking the
 * protocol? (RELIABILITY.md D1: "other peers' latency unaffected"; the target
 * here: their round-trip p99 during the attack <= 1.5 x without it.)
 *
 *   shmx-attack-bench [--guests N (default 3)] [--pairs N (default 4)] [--window-ms MS (default 1500)]
 *                     [--period-us US (default 1000)] [--spin N (default 0)] [--yield N (default 0)]
 *                     [--attacker-nice N (default 0)] [--attacker-spin N (default: the library's)] [--isolate]
 *                     [--attacker-forks]
 *
 * A host in this process: an accept thread, and one echo thread per healthy
 * guest. N healthy guests, each its own shm connection and thread, send 64 B
 * every --period-us and wait for the echo; the round trip is timed
 * (CLOCK_MONOTONIC). After a 1 s warm-up, --pairs pairs of windows of
 * --window-ms: one without an attack, then one during which an attacker
 * process (forked before the host exists, so it shares nothing but the
 * segment it is given) loops as fast as it can: connect, write a garbage
 * record header into its own guest-to-host ring (found through
 * /proc/self/maps and the segment header, as a hostile guest would), wait
 * until it is expelled, close, connect again. The host holds that process's
 * next connection for its readmission wait (10 ms after the first violation,
 * doubling up to 1 s; shmx_host_accept), so the attacker soon manages about
 * one round a second. --attacker-forks makes every round in a new process,
 * a new pid that no wait applies to: that measures the host's handling at
 * the rate an attacker can fork. Between an attack window and
 * the next quiet one the attacker finishes its round and reports that it has
 * stopped; round trips made meanwhile count in neither. Alternating windows
 * matter on a shared machine: its background load drifts over seconds, and
 * one long window of each would compare two moments of that drift. The host
 * meets each violation in the accept thread, which serves every attacker
 * connection by calling receive on it until the call reports the violation,
 * then frees the channel. The host's log is silenced (one warning per
 * quarantine would measure stderr, not the host).
 *
 * Same-run baseline: half a period after each shm round trip, the same guest
 * thread makes a 64 B round trip over a Unix socketpair to an echo thread of
 * its own in this process (blocking read and write). Paced traffic finds the
 * receiver asleep, so both transports pay the kernel's idle wake-up (tens of
 * microseconds in a VM, against well under one microsecond for a back-to-back
 * ping, whose receiver never sleeps); the socket shows what that costs here
 * and now, and its own p99 ratio, a control, shows how much of an attack's
 * effect is the attacker's CPU use rather than the host's handling of it.
 *
 * Idle strategy: --spin and --yield set the healthy guests' and the host's
 * channels (shmx_channel_set_idle); the attacker keeps the library default.
 * The default here is 0 and 0: sleep at once, as the socket does. With the
 * library default (20000 polls, about 0.5 ms of busy polling per idle receive
 * on a current x86 core, then 50 sched_yield), a paced receiver spins out its
 * whole budget after every message, and with more threads than CPUs (2N + 1
 * here, on 2 vCPUs) the thread that must run to answer waits behind a spinner
 * until its budget runs out: round trips then cost one or two budgets (p50
 * about 1 to 1.5 ms, 70 to 120 x the socket in the same run), the guests fall
 * behind their pace, and the windows compare scheduling, not the attack.
 * --spin 20000 --yield 50 reproduces that.
 *
 * --isolate gives the attacker process a CPU of its own (the last this process
 * may use) and keeps this process (the host's threads, the healthy guests,
 * the echoes) on the others. The attacker's own CPU use then competes with
 * nobody; what remains of the effect is the host's handling of the attack:
 * its threads' CPU time, locks, the kernel's work for the attacker's sockets.
 * Without it, on a machine with few CPUs, an attacker that loops as fast as
 * it can takes a CPU from everyone, and the socket control shows that much.
 *
 * The attacker's waits for its expulsion keep the library's idle strategy
 * unless --attacker-spin N sets N busy polls (then sleep): each connection
 * is a new channel, so each spins a full budget before its wait adapts.
 *
 * Prints for all quiet and all attack windows together the shm p50/p99/max
 * (us) with the round trips that started over a period late, the socket's,
 * and their ratios; the p99 ratio attack / none (the rule is on shm; the
 * socket's is printed beside it), the same ratios per pair, the quarantines
 * (shmx_host_violations), this process's CPU time per second in each kind of
 * window and the difference per quarantine (the host's handling, with what
 * its wake-ups cost the others), and PASS/FAIL on the pooled shm ratio; exits 1 on
 * FAIL or a broken echo. Bounded: about 1 + 2 x pairs x window seconds, and
 * at most 5 s more per pair if the attacker is slow to stop.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

#define MAX_PAIRS 32u

/* Between windows (warm-up, the attacker stopping) nothing is recorded. */
enum { PHASE_BETWEEN = 0, PHASE_BASE = 1, PHASE_ATTACK = 2, PHASE_DONE = 3 };

/* The attacker's commands, one byte each on its command pipe. */
#define CMD_ATTACK 'a'
#define CMD_PAUSE 'p'

/* All written by main only; every access relaxed: they order nothing, a thread that sees a change a
 * little late only files one more sample in a neighbouring window or serves one more round. */
static _Atomic int phase;
static _Atomic int pair_now;
static _Atomic int stop_host;

enum { T_SHM = 0, T_SOCK = 1 };

typedef struct healthy {
    pthread_t thread;
    shmx_guest_t *guest;
    int sock;            /* this guest's end of its baseline socketpair */
    pthread_t sock_echo; /* the echo thread on the other end */
    int sock_echo_fd, sock_echo_started;
    uint32_t spin, yields;
    uint64_t period_ns;
    uint64_t *lat[2][2]; /* ns, per kind of window (quiet, attack), per transport (T_SHM, T_SOCK) */
    uint8_t *pair[2][2]; /* the pair each of those samples was taken in */
    size_t n[2][2], cap;
    uint64_t late[2];    /* shm round trips, per window, that started over a period after they were due */
    int failed;          /* a send/receive error or a wrong echo, either transport */
} healthy_t;

typedef struct host_ctx {
    shmx_host_t *host;
    uint32_t spin, yields; /* the idle strategy of every channel it accepts */
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
        shmx_channel_set_idle(ch, c->spin, c->yields);
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

/* ---- the socket baseline ------------------------------------------------------------------ */

static int write_full(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Echo 64 B records until the guest's end closes. */
static void *sock_echo_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    uint8_t buf[MSG_BYTES];
    while (read_full(fd, buf, sizeof buf) == 0 && write_full(fd, buf, sizeof buf) == 0) {
    }
    return NULL;
}

/* ---- healthy guests ------------------------------------------------------------------------ */

static void sleep_until_ns(int64_t t) {
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000LL), .tv_nsec = (long)(t % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void record(healthy_t *g, int p, int k, int t, int64_t ns) {
    if ((p != PHASE_BASE && p != PHASE_ATTACK) || g->n[p - 1][t] >= g->cap) return;
    size_t i = g->n[p - 1][t]++;
    g->lat[p - 1][t][i] = (uint64_t)ns;
    g->pair[p - 1][t][i] = (uint8_t)k;
}

/*
 * Every period: an shm round trip when it is due, then a socket round trip half a period later.
 * A thread that falls behind does not skip: it makes the round trips that are due at once.
 */
static void *healthy_main(void *arg) {
    healthy_t *g = arg;
    shmx_channel_t *ch = shmx_guest_channel(g->guest);
    shmx_channel_set_idle(ch, g->spin, g->yields);
    uint8_t out[MSG_BYTES], in[MSG_BYTES * 2];
    int64_t due = tool_now_ns();
    for (uint32_t seq = 0;; seq++) {
        int p = atomic_load_explicit(&phase, memory_order_relaxed);
        int k = atomic_load_explicit(&pair_now, memory_order_relaxed);
        if (p == PHASE_DONE) break;
        memset(out, (int)(seq & 0xff), sizeof out);
        sleep_until_ns(due);
        int64_t t0 = tool_now_ns();
        int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, out, sizeof out, STEP_NS);
        int64_t n = id < 0 ? id : shmx_channel_receive_copy(ch, in, sizeof in, NULL, STEP_NS);
        int64_t t1 = tool_now_ns();
        if (n != (int64_t)MSG_BYTES || memcmp(in, out, MSG_BYTES) != 0) {
            g->failed++;
            if (n < 0) break;
        }
        record(g, p, k, T_SHM, t1 - t0);
        if ((p == PHASE_BASE || p == PHASE_ATTACK) && t0 - due > (int64_t)g->period_ns) g->late[p - 1]++;

        out[0] ^= 0x5a; /* not the shm payload: a stale echo would show */
        sleep_until_ns(due + (int64_t)g->period_ns / 2);
        t0 = tool_now_ns();
        int ok = write_full(g->sock, out, MSG_BYTES) == 0 && read_full(g->sock, in, MSG_BYTES) == 0;
        t1 = tool_now_ns();
        if (!ok || memcmp(in, out, MSG_BYTES) != 0) {
            g->failed++;
            if (!ok) break;
        }
        record(g, p, k, T_SOCK, t1 - t0);
        due += (int64_t)g->period_ns;
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

/*
 * The next command on @cmd_fd: waits for one if @block, else only looks. CMD_ATTACK or CMD_PAUSE, 0 if
 * none came, -1 to stop (a stop command, the pipe closed or broken). Of several waiting, the last counts.
 */
static int next_command(int cmd_fd, int block) {
    struct pollfd p = {.fd = cmd_fd, .events = POLLIN};
    int n = poll(&p, 1, block ? -1 : 0);
    if (n == 0 || (n < 0 && errno == EINTR)) return 0;
    if (n < 0) return -1;
    char buf[16];
    ssize_t r = read(cmd_fd, buf, sizeof buf);
    if (r <= 0) return r < 0 && errno == EINTR ? 0 : -1;
    char c = buf[r - 1];
    return c == CMD_ATTACK || c == CMD_PAUSE ? c : -1;
}

/* One round: connect, break the protocol, wait to be expelled, close. 1 expelled, 0 not, -1 no connection. */
static int attack_once(const char *name, int64_t spin) {
    shmx_guest_t *g = NULL;
    if (shmx_guest_connect(name, SHMX_TRANSPORT_SHM, STEP_NS, &g) != 0) return -1;
    shmx_channel_t *ch = shmx_guest_channel(g);
    if (spin >= 0) shmx_channel_set_idle(ch, (uint32_t)spin, 0);
    uint8_t *base = find_segment();
    int expelled = 0;
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
        expelled = rc == -SHMX_EEXPELLED;
    }
    shmx_guest_close(g);
    return expelled;
}

/* attack_once in a child of its own, a new pid each time (the host's readmission wait never applies). */
static int attack_once_forked(const char *name, int64_t spin) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(attack_once(name, spin) + 1);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) - 1 : -1;
}

/*
 * Round after round of attack_once while attacking (each in a new process if @forks). A pause command is
 * answered on @reply_fd (one byte) once the round under way has ended; at the end the counts follow.
 */
static void attacker_main(const char *name, int cmd_fd, int reply_fd, int64_t spin, int forks) {
    uint64_t rounds = 0, expelled = 0, failed = 0;
    int attacking = 0;
    for (;;) {
        int cmd = next_command(cmd_fd, !attacking);
        if (cmd < 0) break;
        if (cmd == CMD_ATTACK) attacking = 1;
        if (cmd == CMD_PAUSE) {
            attacking = 0;
            if (write(reply_fd, "p", 1) != 1) _exit(1);
        }
        if (!attacking) continue;
        int r = forks ? attack_once_forked(name, spin) : attack_once(name, spin);
        if (r < 0) {
            failed++;
        } else {
            rounds++;
            expelled += (uint64_t)r;
        }
    }
    uint64_t r[3] = {rounds, expelled, failed};
    if (write(reply_fd, r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    _exit(0);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: shmx-attack-bench [--guests N (default 3, at most %u)] [--pairs N (default 4, at most %u)]\n"
            "                         [--window-ms MS (default 1500)] [--period-us US (default 1000)]\n"
            "                         [--spin N (default 0)] [--yield N (default 0)]\n"
            "                         [--attacker-nice N (default 0)] [--attacker-spin N (default: the library's)]\n"
            "  --pairs          pairs of windows, each a quiet one followed by an attack one\n"
            "  --spin, --yield  idle strategy of the healthy guests' and the host's channels (busy polls, then\n"
            "                   sched_yield polls, before a wait sleeps); the library default is --spin 20000 --yield 50\n"
            "  --attacker-nice  the attacker process's nice value (0-19): with 19 its own CPU use yields to the\n"
            "                   healthy guests and the host, so what remains of the effect is the host's handling\n"
            "  --attacker-spin  busy polls of the attacker's wait for its expulsion before it sleeps\n"
            "  --isolate        the attacker on a CPU of its own, this process on the others (needs 2 CPUs)\n"
            "  --attacker-forks every round in a new attacker process: the host's readmission wait, which holds\n"
            "                   a quarantined process's next connection (10 ms doubling to 1 s), never applies\n",
            MAX_GUESTS, MAX_PAIRS);
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The samples of kind @w (0 quiet, 1 attack) and transport @t of every guest, of pair @k or of all if @k < 0. */
static void merge(const healthy_t *g, uint64_t n, int w, int t, int k, uint64_t **out, size_t *count) {
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) total += g[i].n[w][t];
    *out = malloc((total ? total : 1) * sizeof **out);
    *count = 0;
    for (uint64_t i = 0; *out && i < n; i++)
        for (size_t j = 0; j < g[i].n[w][t]; j++)
            if (k < 0 || g[i].pair[w][t][j] == k) (*out)[(*count)++] = g[i].lat[w][t][j];
}

static double ratio_of(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

/* p99 of kind @w, transport @t, pair @k (all if < 0), in ns; 0 without samples or memory. */
static uint64_t p99_of(const healthy_t *g, uint64_t n, int w, int t, int k) {
    uint64_t *v;
    size_t c;
    merge(g, n, w, t, k, &v, &c);
    tool_percentiles_t pc;
    tool_percentiles(v, v ? c : 0, &pc);
    free(v);
    return pc.p99;
}

/* @all split in two: the last CPU for the attacker (@theirs), the others for this process (@mine); -1 if < 2. */
static int split_cpus(const cpu_set_t *all, cpu_set_t *mine, cpu_set_t *theirs) {
    if (CPU_COUNT(all) < 2) return -1;
    *mine = *all;
    CPU_ZERO(theirs);
    for (int c = CPU_SETSIZE - 1; c >= 0; c--)
        if (CPU_ISSET(c, all)) {
            CPU_CLR(c, mine);
            CPU_SET(c, theirs);
            return 0;
        }
    return -1;
}

/* CPU time this process (the host, the healthy guests, the echoes; not the attacker) has used, in ns. */
static int64_t process_cpu_ns(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
    return ((int64_t)u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000LL;
}

/* Tell the attacker to pause and wait for its answer: 0, or -1 if it did not answer within 5 s. */
static int pause_attacker(int cmd_fd, int reply_fd) {
    char c = CMD_PAUSE;
    if (write(cmd_fd, &c, 1) != 1) return -1;
    struct pollfd p = {.fd = reply_fd, .events = POLLIN};
    return poll(&p, 1, 5000) == 1 && read(reply_fd, &c, 1) == 1 && c == 'p' ? 0 : -1;
}

int main(int argc, char **argv) {
    uint64_t guests = 3, pairs = 4, window_ms = 1500, period_us = 1000, spin = 0, yields = 0, attacker_nice = 0;
    int64_t attacker_spin = -1;
    int isolate = 0, attacker_forks = 0;
    static const struct option longs[] = {{"guests", required_argument, NULL, 'g'},
                                          {"pairs", required_argument, NULL, 'k'},
                                          {"window-ms", required_argument, NULL, 'w'},
                                          {"period-us", required_argument, NULL, 'p'},
                                          {"spin", required_argument, NULL, 's'},
                                          {"yield", required_argument, NULL, 'y'},
                                          {"attacker-nice", required_argument, NULL, 'n'},
                                          {"attacker-spin", required_argument, NULL, 'a'},
                                          {"isolate", no_argument, NULL, 'i'},
                                          {"attacker-forks", no_argument, NULL, 'f'},
                                          {"help", no_argument, NULL, 'h'},
                                          {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        uint64_t v = 0;
        switch (c) {
        case 'g': bad = tool_parse_u64(optarg, 1, MAX_GUESTS, &guests); break;
        case 'k': bad = tool_parse_u64(optarg, 1, MAX_PAIRS, &pairs); break;
        case 'w': bad = tool_parse_u64(optarg, 100, 60000, &window_ms); break;
        case 'p': bad = tool_parse_u64(optarg, 10, 1000000, &period_us); break;
        case 's': bad = tool_parse_u64(optarg, 0, UINT32_MAX, &spin); break;
        case 'y': bad = tool_parse_u64(optarg, 0, UINT32_MAX, &yields); break;
        case 'n': bad = tool_parse_u64(optarg, 0, 19, &attacker_nice); break;
        case 'a':
            bad = tool_parse_u64(optarg, 0, UINT32_MAX, &v);
            attacker_spin = (int64_t)v;
            break;
        case 'i': isolate = 1; break;
        case 'f': attacker_forks = 1; break;
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
    cpu_set_t cpus, mine, theirs;
    if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) CPU_ZERO(&cpus);
    int ncpu = CPU_COUNT(&cpus);
    if (isolate && split_cpus(&cpus, &mine, &theirs) != 0) {
        fprintf(stderr, "shmx-attack-bench: --isolate needs at least 2 CPUs, this process may use %d\n", ncpu);
        return TOOL_EXIT_USAGE;
    }

    /* The attacker first: forked while this process has one thread and no host. */
    int cmd[2], reply[2];
    if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(reply, O_CLOEXEC) != 0) return TOOL_EXIT_MISMATCH;
    pid_t attacker = fork();
    if (attacker < 0) return TOOL_EXIT_MISMATCH;
    if (attacker == 0) {
        close(cmd[1]);
        close(reply[0]);
        /* The attacker's own CPU use, made to yield to everything else: what is left is the host's handling. */
        if (attacker_nice != 0 && setpriority(PRIO_PROCESS, 0, (int)attacker_nice) != 0) _exit(TOOL_EXIT_MISMATCH);
        if (isolate && sched_setaffinity(0, sizeof theirs, &theirs) != 0) _exit(TOOL_EXIT_MISMATCH);
        attacker_main(name, cmd[0], reply[1], attacker_spin, attacker_forks);
    }
    close(cmd[0]);
    close(reply[1]);
    /* Before any thread exists: every thread of this process inherits it. */
    if (isolate && sched_setaffinity(0, sizeof mine, &mine) != 0) {
        fprintf(stderr, "shmx-attack-bench: sched_setaffinity: %s\n", strerror(errno));
        kill(attacker, SIGKILL);
        waitpid(attacker, NULL, 0);
        return TOOL_EXIT_MISMATCH;
    }

    shmx_log_set_handler(NULL, NULL);
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    cfg.max_channels = (uint32_t)guests + 2;
    host_ctx_t hc = {.healthy = (uint32_t)guests, .spin = (uint32_t)spin, .yields = (uint32_t)yields};
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
    for (uint64_t i = 0; i < MAX_GUESTS; i++) g[i].sock = g[i].sock_echo_fd = -1;
    size_t cap = (size_t)(pairs * window_ms * 1000 / period_us) + 1024;
    int exit_code = TOOL_EXIT_OK;
    uint64_t connected = 0;
    for (; connected < guests; connected++) {
        healthy_t *h = &g[connected];
        h->period_ns = period_us * 1000;
        h->spin = (uint32_t)spin;
        h->yields = (uint32_t)yields;
        h->cap = cap;
        int allocated = 1;
        for (int w = 0; w < 2; w++)
            for (int t = 0; t < 2; t++) {
                allocated &= (h->lat[w][t] = calloc(cap, sizeof(uint64_t))) != NULL;
                allocated &= (h->pair[w][t] = calloc(cap, 1)) != NULL;
            }
        int sv[2];
        if (!allocated || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            fprintf(stderr, "shmx-attack-bench: healthy guest %" PRIu64 ": %s\n", connected, strerror(errno ? errno : ENOMEM));
            exit_code = TOOL_EXIT_MISMATCH;
            break;
        }
        h->sock = sv[0];
        h->sock_echo_fd = sv[1];
        h->sock_echo_started = pthread_create(&h->sock_echo, NULL, sock_echo_main, (void *)(intptr_t)sv[1]) == 0;
        rc = shmx_guest_connect(name, SHMX_TRANSPORT_SHM, STEP_NS, &h->guest);
        if (rc != 0 || !h->sock_echo_started) {
            fprintf(stderr, "shmx-attack-bench: healthy guest %" PRIu64 ": %s\n", connected,
                    rc ? shmx_strerror(rc) : "no echo thread");
            if (rc == 0) shmx_guest_close(h->guest);
            exit_code = TOOL_EXIT_CONNECT;
            break;
        }
    }
    for (uint64_t i = 0; i < connected; i++) pthread_create(&g[i].thread, NULL, healthy_main, &g[i]);

    uint64_t att[3] = {0, 0, 0}, quarantines = 0;
    int64_t cpu_quiet = 0, cpu_attack = 0; /* this process's CPU time in all quiet / all attack windows */
    if (exit_code == TOOL_EXIT_OK) {
        sleep_ms(1000);
        for (uint64_t k = 0; k < pairs && exit_code == TOOL_EXIT_OK; k++) {
            atomic_store_explicit(&pair_now, (int)k, memory_order_relaxed);
            atomic_store_explicit(&phase, PHASE_BASE, memory_order_relaxed);
            int64_t cpu0 = process_cpu_ns();
            sleep_ms(window_ms);
            int64_t cpu1 = process_cpu_ns();
            uint64_t before = shmx_host_violations(hc.host);
            atomic_store_explicit(&phase, PHASE_ATTACK, memory_order_relaxed);
            char a = CMD_ATTACK;
            if (write(cmd[1], &a, 1) != 1) exit_code = TOOL_EXIT_MISMATCH;
            sleep_ms(window_ms);
            atomic_store_explicit(&phase, PHASE_BETWEEN, memory_order_relaxed);
            cpu_quiet += cpu1 - cpu0;
            cpu_attack += process_cpu_ns() - cpu1;
            if (pause_attacker(cmd[1], reply[0]) != 0) {
                fprintf(stderr, "shmx-attack-bench: the attacker did not stop within 5 s\n");
                exit_code = TOOL_EXIT_MISMATCH;
            }
            quarantines += shmx_host_violations(hc.host) - before;
        }
    }
    atomic_store_explicit(&phase, PHASE_DONE, memory_order_relaxed);
    close(cmd[1]); /* the attacker's next look at its commands ends it */
    struct pollfd p = {.fd = reply[0], .events = POLLIN};
    if (poll(&p, 1, 5000) != 1 || read(reply[0], att, sizeof att) != (ssize_t)sizeof att) kill(attacker, SIGKILL);
    waitpid(attacker, NULL, 0);
    for (uint64_t i = 0; i < connected; i++) pthread_join(g[i].thread, NULL);
    for (uint64_t i = 0; i < connected; i++) shmx_guest_close(g[i].guest);
    for (uint64_t i = 0; i < MAX_GUESTS; i++) {
        if (g[i].sock >= 0) shutdown(g[i].sock, SHUT_RDWR); /* the echo's read returns 0 */
        if (g[i].sock_echo_started) pthread_join(g[i].sock_echo, NULL);
        if (g[i].sock >= 0) close(g[i].sock);
        if (g[i].sock_echo_fd >= 0) close(g[i].sock_echo_fd);
    }
    atomic_store_explicit(&stop_host, 1, memory_order_relaxed);
    pthread_join(acceptor, NULL);
    for (uint32_t i = 0; i < hc.accepted; i++) pthread_join(hc.echo[i], NULL);
    shmx_host_destroy(hc.host);
    if (exit_code != TOOL_EXIT_OK) return exit_code;

    uint64_t *lat[2][2];
    size_t n[2][2];
    tool_percentiles_t pc[2][2];
    for (int w = 0; w < 2; w++)
        for (int t = 0; t < 2; t++) {
            merge(g, connected, w, t, -1, &lat[w][t], &n[w][t]);
            tool_percentiles(lat[w][t], lat[w][t] ? n[w][t] : 0, &pc[w][t]);
        }
    uint64_t failed = 0;
    for (uint64_t i = 0; i < connected; i++) failed += (uint64_t)g[i].failed;
    double ratio = ratio_of(pc[1][T_SHM].p99, pc[0][T_SHM].p99);
    double sock_ratio = ratio_of(pc[1][T_SOCK].p99, pc[0][T_SOCK].p99);
    uint64_t late[2] = {0, 0};
    for (uint64_t i = 0; i < connected; i++) late[0] += g[i].late[0], late[1] += g[i].late[1];
    shmx_config_t dflt;
    shmx_config_default(&dflt);
    printf("%" PRIu64 " healthy guests, %u B round trips every %" PRIu64 " us, %" PRIu64 " pairs of windows of %" PRIu64
           " ms (quiet, then attack)\n",
           connected, MSG_BYTES, period_us, pairs, window_ms);
    if (isolate)
        printf("this process: %" PRIu64 " threads that wait (guests, shm echoes, accept; the socket echoes block) on %d "
               "CPUs; the attacker process on a CPU of its own (--isolate)\n",
               2 * connected + 1, ncpu - 1);
    else
        printf("this process: %" PRIu64 " threads that wait (guests, shm echoes, accept; the socket echoes block) on %d "
               "CPUs, and the attacker process\n",
               2 * connected + 1, ncpu);
    printf("idle strategy of the guests' and the host's channels: spin %" PRIu64 ", yield %" PRIu64
           " (library default: spin %u, yield %u)\n",
           spin, yields, dflt.spin_iterations, dflt.yield_iterations);
    if (attacker_spin >= 0) printf("the attacker's waits: spin %" PRId64 ", yield 0", attacker_spin);
    else printf("the attacker's waits: the library default");
    printf(attacker_forks ? "; every round in a new process (--attacker-forks)\n" : "; one process for every round\n");
    printf("baseline: a 64 B round trip over a Unix socketpair to an echo thread of this process, from the same guest\n"
           "threads half a period after each shm one; paced, both find the receiver asleep and pay a kernel wake-up\n");
    static const char *const label[2] = {"without attack:", "during attack: "};
    for (int w = 0; w < 2; w++) {
        const tool_percentiles_t *m = &pc[w][T_SHM], *u = &pc[w][T_SOCK];
        printf("%s p50=%.1f us p99=%.1f us max=%.1f us (%zu round trips, %" PRIu64 " started over a period late)\n",
               label[w], m->p50 / 1e3, m->p99 / 1e3, m->max / 1e3, n[w][T_SHM], late[w]);
        printf("  unix socket:  p50=%.1f us p99=%.1f us max=%.1f us (%zu round trips); shm / socket: p50 %.2f, p99 %.2f\n",
               u->p50 / 1e3, u->p99 / 1e3, u->max / 1e3, n[w][T_SOCK], ratio_of(m->p50, u->p50),
               ratio_of(m->p99, u->p99));
    }
    printf("p99 ratio per pair (attack / none), shm and unix socket:");
    for (uint64_t k = 0; k < pairs; k++)
        printf(" %.2f/%.2f", ratio_of(p99_of(g, connected, 1, T_SHM, (int)k), p99_of(g, connected, 0, T_SHM, (int)k)),
               ratio_of(p99_of(g, connected, 1, T_SOCK, (int)k), p99_of(g, connected, 0, T_SOCK, (int)k)));
    printf("\n");
    printf("p99 ratio (attack / none, all windows): %.2f (unix socket, the control: %.2f)\n", ratio, sock_ratio);
    printf("quarantines during the attacks (shmx_host_violations): %" PRIu64 "; attacker: %" PRIu64
           " connections, %" PRIu64 " saw itself expelled, %" PRIu64 " failed; host met %" PRIu64
           " violations on %" PRIu64 " attacker channels\n",
           quarantines, att[0], att[1], att[2], hc.violations_met, hc.attacker_channels);
    double seconds = (double)pairs * (double)window_ms / 1e3;
    printf("this process's CPU (host, healthy guests, echoes; not the attacker): %.0f ms/s without attack, %.0f ms/s "
           "during it; the difference per quarantine: %.1f us\n",
           (double)cpu_quiet / 1e6 / seconds, (double)cpu_attack / 1e6 / seconds,
           quarantines ? (double)(cpu_attack - cpu_quiet) / 1e3 / (double)quarantines : 0.0);
    printf("wrong or failed echoes: %" PRIu64 "\n", failed);
    size_t nb = n[0][T_SHM], nu = n[1][T_SHM];
    int pass = failed == 0 && nb > 0 && nu > 0 && quarantines > 0 && ratio <= TARGET_RATIO;
    printf("target p99 during the attacks <= %.1fx without, every echo right, quarantines > 0: %s\n", TARGET_RATIO,
           pass ? "PASS" : "FAIL");
    for (int w = 0; w < 2; w++)
        for (int t = 0; t < 2; t++) free(lat[w][t]);
    for (uint64_t i = 0; i < MAX_GUESTS; i++)
        for (int w = 0; w < 2; w++)
            for (int t = 0; t < 2; t++) {
                free(g[i].lat[w][t]);
                free(g[i].pair[w][t]);
            }
    return pass ? TOOL_EXIT_OK : TOOL_EXIT_MISMATCH;
}
