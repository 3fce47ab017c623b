/*
 * shmx-pong: the host side of the ping protocol (DESIGN.md section 5).
 *
 * Creates a host under --name and serves every guest in its own thread until
 * SIGTERM or SIGINT. Per received message:
 *   type 2 (DATA)       reply type 4 (RESPONSE), same id, same payload
 *   type 256 (sink)     count it and its bytes; no reply
 *   type 257 (sink end) reply type 4, same id, 16 bytes: u64 LE count and
 *                       u64 LE bytes of the sinks since the previous sink end
 *   anything else       ignored
 * A guest that hangs up or dies costs its own thread and channel only.
 *
 * Signals are blocked in every thread and read from a signalfd by the main
 * thread, which also polls the listening socket: no flag polling, no sleeps.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "shmx/shmx.h"
#include "tool_args.h"

#define RECEIVE_SLICE_NS 200000000LL /* how often an idle worker looks at liveness and shutdown */
#define REPLY_TIMEOUT_NS 5000000000LL
#define SHUTDOWN_WAIT_S 10
#define TYPE_SINK 256u
#define TYPE_SINK_END 257u

typedef struct server {
    shmx_host_t *host;
    int spin_set;
    uint32_t spin;
    atomic_int stopping;  /* set by main at shutdown; workers check it between messages */
    pthread_mutex_t mu;   /* guards `active` */
    pthread_cond_t idle;  /* signalled when a worker ends */
    uint32_t active;
} server_t;

typedef struct worker {
    server_t *srv;
    shmx_channel_t *ch;
    uint8_t *copy;        /* large requests are copied out and released before the reply */
    uint64_t sink_count;
    uint64_t sink_bytes;
} worker_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: shmx-pong --name NAME [--transport shm|uds|both] [--max-guests N] [--spin N]\n"
            "  --transport   transports offered (default both)\n"
            "  --max-guests  guests served at once (default 8)\n"
            "  --spin        busy polls before a wait yields and sleeps (channel idle strategy)\n");
}

static const char *transport_name(int t) { return t == SHMX_TRANSPORT_SHM ? "shm" : "uds"; }

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Echo @m as a RESPONSE and release it. The reply is claimed without waiting
 * and the payload copied straight across (zero-copy on both ends). If no room
 * is free right now, the request is copied out and released first, and only
 * then does the reply wait for room: guests sending large messages at once
 * could otherwise hold every slot while each reply waits for one.
 */
static int64_t echo(worker_t *w, shmx_message_t *m) {
    shmx_channel_t *ch = w->ch;
    uint32_t len = m->length;
    uint64_t id = m->id;
    void *dst;
    /* A fragment is echoed as a fragment: same id, same MORE flag. */
    uint8_t flags = m->flags & SHMX_FLAG_MORE;
    int rc = shmx_channel_claim(ch, len, 0, &dst);
    if (rc == 0) {
        memcpy(dst, m->data, len);
        /* Publish first: the release (zeroing the request's record) is off the round trip. */
        int64_t sent = shmx_channel_commit(ch, SHMX_TYPE_RESPONSE, flags, id);
        int rel = shmx_channel_release(ch, m);
        return sent < 0 ? sent : rel < 0 ? rel : sent;
    }
    if (rc != -SHMX_EWOULDBLOCK) {
        (void)shmx_channel_release(ch, m);
        return rc;
    }
    memcpy(w->copy, m->data, len);
    int rel = shmx_channel_release(ch, m);
    if (rel < 0) return rel;
    return shmx_channel_send(ch, SHMX_TYPE_RESPONSE, flags, id, w->copy, len, REPLY_TIMEOUT_NS);
}

static int64_t sink_end(worker_t *w, shmx_message_t *m) {
    uint8_t reply[16];
    put_le64(reply, w->sink_count);
    put_le64(reply + 8, w->sink_bytes);
    w->sink_count = 0;
    w->sink_bytes = 0;
    uint64_t id = m->id;
    int rel = shmx_channel_release(w->ch, m);
    if (rel < 0) return rel;
    return shmx_channel_send(w->ch, SHMX_TYPE_RESPONSE, 0, id, reply, sizeof reply, REPLY_TIMEOUT_NS);
}

/* Serve one message. Returns >= 0 to go on, or the code that ends this guest. */
static int64_t serve_one(worker_t *w, shmx_message_t *m) {
    switch (m->type) {
    case SHMX_TYPE_DATA: return echo(w, m);
    case TYPE_SINK_END: return sink_end(w, m);
    case TYPE_SINK:
        /* A message counts once, at its last fragment. */
        if (!(m->flags & SHMX_FLAG_MORE)) w->sink_count++;
        w->sink_bytes += m->length;
        /* fall through */
    default: return shmx_channel_release(w->ch, m);
    }
}

/* Why a worker stops: the code it met, or 0 at shutdown or when the guest hung up. */
static int64_t serve(worker_t *w) {
    shmx_channel_t *ch = w->ch;
    while (!atomic_load_explicit(&w->srv->stopping, memory_order_relaxed)) { /* relaxed: a stop sign, no data */
        shmx_message_t m;
        int rc = shmx_channel_receive(ch, &m, RECEIVE_SLICE_NS);
        if (rc == -SHMX_EEMPTY) {
            if (shmx_channel_peer_alive(ch) == 0) return 0;
            continue;
        }
        if (rc == -SHMX_ECLOSED || rc == -SHMX_EHOSTGONE) return 0;
        if (rc == -SHMX_ECORRUPT) return rc; /* the guest broke the protocol: drop it */
        if (rc < 0) {
            /* A frame that failed its checks was consumed and dropped: report, go on. */
            fprintf(stderr, "pong: channel %u: dropped a message: %s\n", shmx_channel_index(ch), shmx_strerror(rc));
            continue;
        }
        int64_t r = serve_one(w, &m);
        if (r == -SHMX_ECLOSED) return 0;
        if (r < 0) return r;
    }
    return 0;
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    server_t *srv = w->srv;
    int t = shmx_channel_transport(w->ch);
    uint32_t idx = shmx_channel_index(w->ch);
    int64_t why = serve(w);
    if (why < 0)
        fprintf(stderr, "pong: %s guest on channel %u dropped: %s\n", transport_name(t), idx,
                shmx_strerror((int)why));
    else
        fprintf(stderr, "pong: %s guest on channel %u left\n", transport_name(t), idx);
    shmx_channel_free(w->ch); /* returns the entry and reclaims the guest's slots */
    free(w->copy);
    free(w);
    pthread_mutex_lock(&srv->mu);
    srv->active--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void start_worker(server_t *srv, shmx_channel_t *ch) {
    worker_t *w = calloc(1, sizeof *w);
    uint32_t max = shmx_channel_max_payload(ch);
    if (w) w->copy = malloc(max ? max : 1);
    if (!w || !w->copy) {
        fprintf(stderr, "pong: out of memory for a guest\n");
        if (w) free(w);
        shmx_channel_free(ch);
        return;
    }
    w->srv = srv;
    w->ch = ch;
    /* Before the thread starts: from then on the channel is the worker's (it may free it at once). */
    fprintf(stderr, "pong: %s guest on channel %u connected\n", transport_name(shmx_channel_transport(ch)),
            shmx_channel_index(ch));
    /* --spin changes the spin phase only; the yield phase keeps the host's setting. */
    if (srv->spin_set) shmx_channel_set_idle(ch, srv->spin, shmx_host_config(srv->host)->yield_iterations);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&srv->mu);
    srv->active++;
    pthread_mutex_unlock(&srv->mu);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        fprintf(stderr, "pong: cannot start a thread for a guest: %s\n", strerror(rc));
        pthread_mutex_lock(&srv->mu);
        srv->active--;
        pthread_mutex_unlock(&srv->mu);
        shmx_channel_free(ch);
        free(w->copy);
        free(w);
    }
}

/* Accept guests until a signal arrives. Returns 0 or 1 (a fatal error). */
static int accept_loop(server_t *srv, int sigfd) {
    struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = shmx_host_fd(srv->host), .events = POLLIN}};
    int wait_ms = -1;
    for (;;) {
        int n = poll(p, 2, wait_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("pong: poll");
            return 1;
        }
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si)
                fprintf(stderr, "pong: %s, shutting down\n", strsignal((int)si.ssi_signo));
            return 0;
        }
        /* Readable listener, or the back-off below ran out: try one guest. */
        wait_ms = -1;
        p[1].events = POLLIN;
        shmx_channel_t *ch = NULL;
        int rc = shmx_host_accept(srv->host, 0, &ch);
        if (rc == 0) {
            start_worker(srv, ch);
        } else if (rc == -EMFILE || rc == -ENFILE || rc == -ENOMEM) {
            /* The guest stays pending: look again in a second (or on a signal), not in a tight loop. */
            fprintf(stderr, "pong: cannot accept a guest now: %s\n", shmx_strerror(rc));
            wait_ms = 1000;
            p[1].events = 0;
        } else if (rc != -ETIMEDOUT) {
            fprintf(stderr, "pong: refused a guest: %s\n", shmx_strerror(rc));
        }
    }
}

/* Stop the workers (each frees its own channel) and wait for them, bounded. */
static int stop_workers(server_t *srv) {
    atomic_store_explicit(&srv->stopping, 1, memory_order_relaxed); /* relaxed: a stop sign, no data */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_WAIT_S;
    pthread_mutex_lock(&srv->mu);
    int rc = 0;
    while (srv->active > 0 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&srv->idle, &srv->mu, &until);
    uint32_t left = srv->active;
    pthread_mutex_unlock(&srv->mu);
    return left == 0 ? 0 : -1;
}

static int parse(int argc, char **argv, const char **name, shmx_config_t *cfg, server_t *srv) {
    static const struct option longs[] = {{"name", required_argument, NULL, 'n'},
                                          {"transport", required_argument, NULL, 't'},
                                          {"max-guests", required_argument, NULL, 'g'},
                                          {"spin", required_argument, NULL, 'p'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n': *name = optarg; break;
        case 't':
            if (tool_parse_transport(optarg, 1, &cfg->transports) != 0) return -1;
            break;
        case 'g':
            if (tool_parse_u64(optarg, 1, SHMX_MAX_CHANNELS, &v) != 0) return -1;
            cfg->max_channels = (uint32_t)v;
            break;
        case 'p':
            if (tool_parse_u64(optarg, 0, UINT32_MAX, &v) != 0) return -1;
            srv->spin = (uint32_t)v;
            srv->spin_set = 1;
            break;
        case 'h': usage(stdout); exit(TOOL_EXIT_OK);
        default: return -1;
        }
    }
    return optind == argc && *name ? 0 : -1;
}

int main(int argc, char **argv) {
    static server_t srv;
    const char *name = NULL;
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    cfg.max_channels = 8;
    if (parse(argc, argv, &name, &cfg, &srv) != 0) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }

    /* Block the shutdown signals everywhere (threads inherit the mask) and take them from a signalfd. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sigfd < 0) {
        perror("pong: signalfd");
        return 1;
    }

    int rc = shmx_host_create(name, &cfg, &srv.host);
    if (rc < 0) {
        fprintf(stderr, "pong: cannot create host '%s': %s%s%s\n", name, shmx_strerror(rc),
                rc == -SHMX_ECONFIG ? ": " : "", rc == -SHMX_ECONFIG ? shmx_config_problem(&cfg) : "");
        return 1;
    }
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.idle, NULL);
    fprintf(stderr, "pong: listening on %s (%s)\n", name, shmx_host_socket_path(srv.host));

    int status = accept_loop(&srv, sigfd);
    if (stop_workers(&srv) != 0) {
        /* A worker still holds its channel: destroying the host under it would be worse than leaving. */
        fprintf(stderr, "pong: workers did not stop within %d s\n", SHUTDOWN_WAIT_S);
        return 1;
    }
    shmx_host_destroy(srv.host);
    close(sigfd);
    return status;
}
