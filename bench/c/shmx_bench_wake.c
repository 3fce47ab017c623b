/*
 * shmx-bench-wake: how fast, and at what CPU cost, a process sleeping on a
 * doorbell is woken by another process, for each way of sleeping.
 *
 *   shmx-bench-wake [--mode all|uring|futex|epoll|uring-poll|uring-mpoll|uring-read[,...]]
 *                   [--fd eventfd|socket] [--count N] [--warmup N] [--seconds S]
 *                   [--cpus A,B]
 *
 * Two processes (fork) ping-pong a wake-up: the parent rings the child's
 * doorbell and sleeps on its own until the child rings back. Nobody spins:
 * every wait sleeps in the kernel, so each round trip is two wake-ups of a
 * sleeping process. The doorbells are two eventfds (one per direction, as
 * shmx channels will have) or, with --fd socket, a Unix socketpair (what the
 * host's loop waits on today). The modes differ only in how a side sleeps:
 *
 *   futex        FUTEX_WAIT on a shared word, FUTEX_WAKE to ring (no fd: shmx today)
 *   epoll        epoll_wait, then read() the doorbell, write() to ring
 *   uring-poll   one-shot IORING_OP_POLL_ADD submitted and waited for in one
 *                io_uring_enter, then read() and write() as epoll
 *   uring-mpoll  multishot poll armed once, then one io_uring_enter per wait:
 *                the closest match to a persistent epoll registration
 *   uring-read   IORING_OP_READ of the doorbell is the wait (no poll, no read()),
 *                the ring a write(): two system calls per wake against epoll's
 *                three. Not IORING_OP_WRITE: eventfd has no non-blocking write
 *                for io_uring, which hands it to an io-wq worker thread (tried:
 *                three times the latency and CPU on Linux 6.18)
 *
 * The rings are set up with SINGLE_ISSUER | DEFER_TASKRUN where the kernel
 * has them (io_uring's cheapest completion path), else COOP_TASKRUN, else
 * plain; the line says which. The io_uring modes exist only when built with
 * -DSHMX_WITH_URING=ON; otherwise --mode all skips them and says so.
 *
 * --mode takes a comma-separated list, run in the order given (default all:
 * futex, epoll, then the io_uring modes); listing a mode twice runs it twice.
 *
 * Prints the command line, then one line per mode:
 *   wake_rtt_ns mode=M p50=.. p90=.. p99=.. p999=.. max=.. count=.. cpu_ns_per_rt=.. (parent=.. child=..)
 * Round trips timed with CLOCK_MONOTONIC (tool_stats.h); CPU is user + system
 * time of both processes (getrusage) over the timed rounds, divided by the
 * round trips. A mode stops at --count or after --seconds, whichever is first.
 * Exit: 0, 1 a failed or stalled run, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef SHMX_HAVE_URING
#include <liburing.h>
#include <poll.h>
#endif

#include "tool_args.h"
#include "tool_stats.h"

#define MAX_RUNS 32

/* A peer silent for this long is taken as gone: the run fails instead of hanging. Every mode
 * sleeps with this timeout, so each pays the same timer set-up per wait. */
#define STALL_NS 10000000000LL

enum mode { MODE_FUTEX, MODE_EPOLL, MODE_URING_POLL, MODE_URING_MPOLL, MODE_URING_READ, MODE_COUNT };
static const char *const MODE_NAMES[MODE_COUNT] = {"futex", "epoll", "uring-poll", "uring-mpoll", "uring-read"};

static int mode_is_uring(int m) { return m >= MODE_URING_POLL; }

/* Shared by both processes (MAP_SHARED): the futex doorbells and the end-of-run handshake. */
typedef struct shared {
    alignas(64) _Atomic uint32_t bell[2]; /* futex mode: [0] rings the parent, [1] the child */
    alignas(64) _Atomic uint32_t stop;
    alignas(64) _Atomic int64_t child_cpu_ns;
} shared_t;

/* One side of the ping-pong: index 0 is the parent, 1 the child. */
typedef struct side {
    int mode;
    int me;
    int rx, tx;       /* sleep until rx is readable; write tx to ring the peer */
    size_t msg;       /* bytes per ring: 8 for an eventfd, 1 for a socket */
    shared_t *sh;
    uint32_t heard;   /* futex mode: the last value of our word we acted on */
    int epfd;
    const char *setup; /* io_uring setup flags obtained, for the report */
#ifdef SHMX_HAVE_URING
    struct io_uring ring;
    int armed;        /* uring-mpoll: the multishot poll is live */
#endif
} side_t;

typedef struct options {
    int order[MAX_RUNS]; /* the modes to run, in this order */
    int runs;
    int use_socket;
    uint64_t count, warmup, seconds;
    int cpus[2]; /* -1: not pinned */
    char cmdline[1024];
} options_t;

static int64_t cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* the whole process: io_uring's worker threads, if any, count too */
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int pin(int cpu) {
    if (cpu < 0) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

/* ---- futex: shmx's wait today, without its spin and yield phases ---- */

static int futex_ring(side_t *s) {
    _Atomic uint32_t *w = &s->sh->bell[!s->me];
    /* Release: pairs with the acquire load in futex_sleep on the other side. */
    atomic_fetch_add_explicit(w, 1, memory_order_release);
    /* Always wake, as a doorbell write always is a system call: the modes stay comparable. */
    return syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0 ? -errno : 0;
}

static int futex_sleep(side_t *s) {
    _Atomic uint32_t *w = &s->sh->bell[s->me];
    int64_t deadline = tool_now_ns() + STALL_NS;
    for (;;) {
        /* Acquire: pairs with the release increment in futex_ring. */
        uint32_t v = atomic_load_explicit(w, memory_order_acquire);
        if (v != s->heard) {
            s->heard = v;
            return 0;
        }
        int64_t left = deadline - tool_now_ns();
        if (left <= 0) return -ETIMEDOUT;
        struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
        /* No FUTEX_PRIVATE_FLAG: the word is shared between processes. */
        if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, &ts, NULL, 0) < 0 && errno != EAGAIN &&
            errno != EINTR && errno != ETIMEDOUT)
            return -errno;
    }
}

/* ---- file-descriptor doorbells ---- */

static int fd_ring(side_t *s) {
    uint64_t one = 1;
    return write(s->tx, &one, s->msg) == (ssize_t)s->msg ? 0 : -errno;
}

/* Consume the ring that woke us (an eventfd read resets its counter). */
static int fd_drain(side_t *s) {
    uint64_t v;
    return read(s->rx, &v, s->msg) == (ssize_t)s->msg ? 0 : -EIO;
}

static int epoll_sleep(side_t *s) {
    struct epoll_event ev;
    int n;
    do {
        n = epoll_wait(s->epfd, &ev, 1, (int)(STALL_NS / 1000000));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0) return -ETIMEDOUT;
    return fd_drain(s);
}

#ifdef SHMX_HAVE_URING
static int uring_setup(side_t *s) {
    /* Cheapest first: DEFER_TASKRUN runs completions only when we wait (6.1+), COOP_TASKRUN (5.19+)
     * spares the waker an interrupt; older kernels refuse the flags with EINVAL. */
    static const struct {
        unsigned flags;
        const char *name;
    } tries[] = {{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single-issuer+defer-taskrun"},
                 {IORING_SETUP_COOP_TASKRUN, "coop-taskrun"},
                 {0, "plain"}};
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        rc = io_uring_queue_init(8, &s->ring, tries[i].flags);
        if (rc == 0) {
            s->setup = tries[i].name;
            return 0;
        }
        if (rc != -EINVAL) break;
    }
    return rc;
}

static struct io_uring_sqe *uring_sqe(side_t *s) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (!sqe) { /* cannot happen with one or two entries in flight in a ring of 8 */
        fprintf(stderr, "bench-wake: io_uring submission queue full\n");
        abort();
    }
    return sqe;
}

/* Submit what is queued and wait for @want completions, each checked and consumed. */
static int uring_reap(side_t *s, unsigned want) {
    struct __kernel_timespec ts = {.tv_sec = STALL_NS / 1000000000LL};
    while (want > 0) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&s->ring, &cqe, want, &ts, NULL);
        if (rc == -EINTR) continue;
        if (rc < 0) return rc == -ETIME ? -ETIMEDOUT : rc;
        unsigned head, seen = 0;
        int bad = 0;
        io_uring_for_each_cqe(&s->ring, head, cqe) {
            if (cqe->res < 0) bad = cqe->res;
            else if (cqe->user_data != 0 && (size_t)cqe->res != s->msg) bad = -EIO; /* a short read or write */
            if (s->mode == MODE_URING_MPOLL && !(cqe->flags & IORING_CQE_F_MORE)) s->armed = 0; /* re-arm */
            seen++;
        }
        io_uring_cq_advance(&s->ring, seen);
        if (bad) return bad;
        want = seen >= want ? 0 : want - seen;
    }
    return 0;
}

static int uring_poll_sleep(side_t *s) {
    if (s->mode == MODE_URING_POLL) {
        struct io_uring_sqe *p = uring_sqe(s);
        io_uring_prep_poll_add(p, s->rx, POLLIN);
        io_uring_sqe_set_data64(p, 0); /* 0: a poll, whose res is an event mask rather than a size */
    } else if (!s->armed) {
        struct io_uring_sqe *p = uring_sqe(s);
        io_uring_prep_poll_multishot(p, s->rx, POLLIN);
        io_uring_sqe_set_data64(p, 0);
        s->armed = 1;
    }
    int rc = uring_reap(s, 1);
    return rc < 0 ? rc : fd_drain(s);
}

static uint64_t uring_rx_buf;

/* uring-read: IORING_OP_READ of our doorbell is the wait itself (no separate poll, no read()). */
static int uring_read_sleep(side_t *s, int ring) {
    int rc = ring ? fd_ring(s) : 0;
    if (rc < 0) return rc;
    struct io_uring_sqe *r = uring_sqe(s);
    io_uring_prep_read(r, s->rx, &uring_rx_buf, (unsigned)s->msg, 0);
    io_uring_sqe_set_data64(r, 2);
    return uring_reap(s, 1);
}
#endif

static int side_open(side_t *s) {
    if (s->mode == MODE_EPOLL) {
        /* After fork: an epoll instance inherited across fork would be shared by both sides. */
        s->epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        if (s->epfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->rx, &ev) != 0) return -errno;
    }
#ifdef SHMX_HAVE_URING
    if (mode_is_uring(s->mode)) return uring_setup(s);
#endif
    return 0;
}

static void side_close(side_t *s) {
    if (s->epfd >= 0) close(s->epfd);
#ifdef SHMX_HAVE_URING
    if (mode_is_uring(s->mode) && s->setup[0]) io_uring_queue_exit(&s->ring); /* only a ring set up */
#endif
}

/* Ring the peer (if @ring), then sleep until the peer rings us. */
static int side_step(side_t *s, int ring) {
#ifdef SHMX_HAVE_URING
    if (s->mode == MODE_URING_READ) return uring_read_sleep(s, ring);
#endif
    int rc = 0;
    if (ring) rc = s->mode == MODE_FUTEX ? futex_ring(s) : fd_ring(s);
    if (rc < 0) return rc;
    switch (s->mode) {
    case MODE_FUTEX: return futex_sleep(s);
    case MODE_EPOLL: return epoll_sleep(s);
#ifdef SHMX_HAVE_URING
    case MODE_URING_POLL:
    case MODE_URING_MPOLL: return uring_poll_sleep(s);
#endif
    default: return -ENOSYS;
    }
}

/* The stop ring, outside any loop: a plain write or futex wake whatever the mode. */
static int side_ring_only(side_t *s) { return s->mode == MODE_FUTEX ? futex_ring(s) : fd_ring(s); }

static int child(side_t *s, const options_t *o) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the parent asleep on a doorbell */
    if (pin(o->cpus[1]) < 0 || side_open(s) < 0) return 1;
    int64_t cpu0 = cpu_ns();
    int rc = side_step(s, 0);
    for (uint64_t k = 0; rc == 0; k++) {
        /* Acquire: pairs with the parent's release store of stop before its last ring. */
        if (atomic_load_explicit(&s->sh->stop, memory_order_acquire)) break;
        if (k == o->warmup) cpu0 = cpu_ns(); /* the parent's timed rounds begin here */
        rc = side_step(s, 1);
    }
    /* Relaxed: the parent reads it after waitpid, which orders it. */
    atomic_store_explicit(&s->sh->child_cpu_ns, cpu_ns() - cpu0, memory_order_relaxed);
    side_close(s);
    if (rc < 0) fprintf(stderr, "bench-wake: child (%s): %s\n", MODE_NAMES[s->mode], strerror(-rc));
    return rc < 0;
}

static int make_doorbells(const options_t *o, int fds[4]) {
    /* fds: parent rx, parent tx, child rx, child tx. */
    if (o->use_socket) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -errno;
        fds[0] = fds[1] = sv[0];
        fds[2] = fds[3] = sv[1];
        return 0;
    }
    int to_parent = eventfd(0, EFD_CLOEXEC), to_child = eventfd(0, EFD_CLOEXEC);
    if (to_parent < 0 || to_child < 0) return -errno;
    fds[0] = to_parent;
    fds[1] = to_child;
    fds[2] = to_child;
    fds[3] = to_parent;
    return 0;
}

static void close_doorbells(int fds[4]) {
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++)
            if (fds[j] == fds[i]) fds[i] = -1; /* close each fd once */
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0) close(fds[i]);
}

static int run_mode(int mode, const options_t *o, shared_t *sh, uint64_t *samples) {
    int fds[4];
    if (make_doorbells(o, fds) < 0) {
        perror("bench-wake: doorbells");
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    side_t sides[2];
    for (int i = 0; i < 2; i++)
        sides[i] = (side_t){.mode = mode, .me = i, .rx = fds[2 * i], .tx = fds[2 * i + 1],
                            .msg = o->use_socket ? 1 : 8, .sh = sh, .epfd = -1, .setup = ""};
    fflush(stdout); /* or the child would print the parent's buffer again */
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench-wake: fork");
        close_doorbells(fds);
        return 1;
    }
    if (pid == 0) _exit(child(&sides[1], o));

    side_t *s = &sides[0];
    int rc = pin(o->cpus[0]);
    if (rc == 0) rc = side_open(s);
    uint64_t n = 0, total = o->warmup + o->count;
    int64_t cpu0 = cpu_ns(), end = 0;
    for (uint64_t i = 0; rc == 0 && i < total; i++) {
        if (i == o->warmup) {
            cpu0 = cpu_ns();
            end = tool_now_ns() + (int64_t)o->seconds * 1000000000LL;
        }
        int64_t t0 = tool_now_ns();
        rc = side_step(s, 1);
        int64_t t1 = tool_now_ns();
        if (rc == 0 && i >= o->warmup) {
            samples[n++] = (uint64_t)(t1 - t0);
            if (t1 > end) break; /* bounded run time on a slow or busy machine */
        }
    }
    int64_t parent_cpu = cpu_ns() - cpu0;
    /* Release: pairs with the child's acquire load of stop after it wakes. */
    atomic_store_explicit(&sh->stop, 1, memory_order_release);
    if (rc == 0) rc = side_ring_only(s);
    if (rc < 0) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    side_close(s);
    close_doorbells(fds);
    if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench-wake: %s failed: %s\n", MODE_NAMES[mode],
                rc == -ETIMEDOUT ? "no wake-up for 10 s: the child is gone or stalled"
                : rc < 0         ? strerror(-rc)
                                 : "the child failed");
        return 1;
    }
    /* Relaxed: written by the child before it exited; waitpid orders it. */
    int64_t child_cpu = atomic_load_explicit(&sh->child_cpu_ns, memory_order_relaxed);
    tool_percentiles_t p;
    tool_percentiles(samples, n, &p);
    printf("wake_rtt_ns mode=%s p50=%llu p90=%llu p99=%llu p999=%llu max=%llu count=%llu cpu_ns_per_rt=%lld "
           "(parent=%lld child=%lld)%s%s%s\n",
           MODE_NAMES[mode], (unsigned long long)p.p50, (unsigned long long)p.p90, (unsigned long long)p.p99,
           (unsigned long long)p.p999, (unsigned long long)p.max, (unsigned long long)n,
           n ? (long long)((parent_cpu + child_cpu) / (int64_t)n) : 0LL, n ? (long long)(parent_cpu / (int64_t)n) : 0LL,
           n ? (long long)(child_cpu / (int64_t)n) : 0LL, mode_is_uring(mode) ? " setup=" : "", s->setup,
           n < o->count ? " (stopped at the --seconds limit)" : "");
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-bench-wake [--mode all|uring|futex|epoll|uring-poll|uring-mpoll|uring-read[,...]]\n"
               "                       [--fd eventfd|socket] [--count N (20000)] [--warmup N (1000)]\n"
               "                       [--seconds S per mode (5)] [--cpus A,B (pin parent to A, child to B)]\n");
}

/* Append the modes of a comma-separated list (names, "uring" or "all") in the order given. */
static int parse_modes(const char *list, options_t *o) {
    char buf[256];
    if (strlen(list) >= sizeof buf) return -1;
    strcpy(buf, list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int all = strcmp(t, "all") == 0, uring = strcmp(t, "uring") == 0, found = 0;
        for (int m = 0; m < MODE_COUNT; m++) {
            if (!all && !(uring && mode_is_uring(m)) && strcmp(t, MODE_NAMES[m]) != 0) continue;
            if (o->runs == MAX_RUNS) return -1;
            o->order[o->runs++] = m;
            found = 1;
        }
        if (!found) return -1;
    }
    return o->runs ? 0 : -1;
}

static int parse_cpus(const char *s, int cpus[2]) {
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ',') return -1;
    const char *rest = end + 1;
    long b = strtol(rest, &end, 10);
    if (end == rest || *end || a < 0 || b < 0 || a >= CPU_SETSIZE || b >= CPU_SETSIZE) return -1;
    cpus[0] = (int)a;
    cpus[1] = (int)b;
    return 0;
}

static int parse(int argc, char **argv, options_t *o) {
    static const struct option longs[] = {
        {"mode", required_argument, NULL, 'm'},   {"fd", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'c'},  {"warmup", required_argument, NULL, 'w'},
        {"seconds", required_argument, NULL, 's'}, {"cpus", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    *o = (options_t){.count = 20000, .warmup = 1000, .seconds = 5, .cpus = {-1, -1}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': bad = parse_modes(optarg, o); break;
        case 'f':
            o->use_socket = strcmp(optarg, "socket") == 0;
            bad = !o->use_socket && strcmp(optarg, "eventfd") != 0;
            break;
        case 'c': bad = tool_parse_u64(optarg, 1, 100000000, &o->count); break;
        case 'w': bad = tool_parse_u64(optarg, 0, 100000000, &o->warmup); break;
        case 's': bad = tool_parse_u64(optarg, 1, 3600, &o->seconds); break;
        case 'p': bad = parse_cpus(optarg, o->cpus); break;
        case 'h': usage(stdout); exit(TOOL_EXIT_OK);
        default: bad = 1;
        }
        if (bad) return -1;
    }
    if (o->runs == 0) parse_modes("all", o);
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof o->cmdline; i++)
        len += (size_t)snprintf(o->cmdline + len, sizeof o->cmdline - len, "%s%s", i ? " " : "", argv[i]);
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    int uring_built = 0;
#ifdef SHMX_HAVE_URING
    uring_built = 1;
#endif
    int only_uring = 1;
    for (int i = 0; i < o.runs; i++) only_uring &= mode_is_uring(o.order[i]);
    if (only_uring && !uring_built) { /* nothing left to measure: say so rather than print nothing */
        fprintf(stderr, "bench-wake: io_uring was not built in (configure with -DSHMX_WITH_URING=ON)\n");
        return TOOL_EXIT_USAGE;
    }
    printf("# %s\n", o.cmdline);
    printf("# doorbell %s, %s, io_uring %s\n", o.use_socket ? "socketpair" : "eventfd per direction",
           o.cpus[0] < 0 ? "not pinned" : "pinned (parent, child) to the --cpus",
           uring_built ? "built in" : "not built in (-DSHMX_WITH_URING=ON)");
    uint64_t *samples = malloc(o.count * sizeof *samples);
    shared_t *sh = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!samples || sh == MAP_FAILED) {
        perror("bench-wake: memory");
        return TOOL_EXIT_MISMATCH;
    }
    int rc = 0;
    for (int i = 0; i < o.runs; i++) {
        if (mode_is_uring(o.order[i]) && !uring_built) continue; /* the header line said so */
        rc |= run_mode(o.order[i], &o, sh, samples);
    }
    free(samples);
    munmap(sh, sizeof(shared_t));
    return rc ? TOOL_EXIT_MISMATCH : TOOL_EXIT_OK;
}
