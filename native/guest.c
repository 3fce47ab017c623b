/*
 * The guest: connects to a host by name, receives its channel (and, for the
 * shm transport, the segment fd), checks what the host announced against the
 * segment itself, and opens its side of the channel.
 *
 * Pool extents: the guest's pool asks the host to grow (a grow request on
 * the bootstrap socket) when every fitting class is empty, and maps extents
 * lazily: a lookup that meets an index beyond what is mapped reads the
 * announcements queued on the socket (the host sends them before any slot of
 * the extent is published), checks each, and maps them in order. One mutex
 * serialises that reading and mapping; lookups on other threads stay
 * lock-free (pool.c). An index past everything announced is refused, never
 * waited on for more than EXTENT_WAIT_NS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap.h"
#include "channel_internal.h"
#include "doorbell.h"
#include "extent.h"
#include "log.h"
#include "ticket.h"
#include "shmx/errors.h"
#include "shmx/frame.h"
#include "shmx/peer.h"

/* However short the caller's timeout (it bounds the wait for the host to
 * appear), a host that has accepted gets this long to answer the hello. */
#define HANDSHAKE_MIN_NS 2000000000LL
/* Longest a lookup waits for an announcement the header says was made. */
#define EXTENT_WAIT_NS 1000000000LL

struct shmx_guest {
    shmx_channel_t *ch;
    int has_seg;
    shmx_segment_t seg; /* shm transport: the host's segment, validated on attach */
    shmx_pool_t pool;
    int sock;           /* shm: the bootstrap socket (the channel owns it); -1 once it is closed */
    pthread_mutex_t mu; /* serialises reading announcements and mapping extents */
    int has_mu;
    int extents_done;   /* a bad announcement or a hang-up: nothing more will be mapped */
    uint32_t extent_count;
    shmx_extent_t extents[SHMX_MAX_EXTENTS];
    _Atomic uint64_t extent_bytes; /* mapped extent bytes, for shmx_guest_mapped_bytes (relaxed) */
};

/* ---- extents ------------------------------------------------------------------------ */

/* The pool's grow hook: ask the host. A full socket or a gone host just leaves the wait to decide. */
static void grow_hook(void *arg, uint32_t cls) {
    shmx_guest_t *g = arg;
    (void)shmx_bootstrap_send_grow(g->sock, cls);
}

/*
 * Read, check and map the next announcement (it is queued: the caller polled).
 * Returns 0, or a negative code after which nothing more is mapped.
 */
static int map_next_locked(shmx_guest_t *g, int64_t deadline) {
    shmx_extent_msg_t m;
    int fd;
    int rc = shmx_bootstrap_recv_extent(g->sock, deadline, &m, &fd);
    if (rc < 0) return rc;
    shmx_pool_t *p = &g->pool;
    shmx_extent_layout_t lay;
    /* In order, continuing its class, sized as its class says: anything else is not our host's. */
    if (m.id != g->extent_count || m.cls >= p->class_count || m.first_index != shmx_pool_class_end(p, m.cls) ||
        m.slot_count == 0 || m.slot_count > p->cls[m.cls].chunk_slots ||
        shmx_extent_layout(p->cls[m.cls].slot_size, m.slot_count, &lay) != 0 || lay.total_bytes != m.bytes) {
        close(fd);
        return -SHMX_EPROTO;
    }
    shmx_extent_t *e = &g->extents[g->extent_count];
    rc = shmx_extent_attach(fd, m.bytes, e); /* checks the seals and the size; closes fd */
    if (rc == 0) rc = shmx_pool_add_extent(p, m.cls, m.first_index, m.slot_count, e->base, e->bytes);
    if (rc < 0) {
        shmx_extent_close(e);
        return rc;
    }
    e->cls = m.cls;
    e->first = m.first_index;
    e->count = m.slot_count;
    g->extent_count++;
    /* Relaxed: a figure for diagnostics. */
    atomic_fetch_add_explicit(&g->extent_bytes, e->bytes, memory_order_relaxed);
    return 0;
}

/* 1 if the socket has something to read within @timeout_ns (0: only look). */
static int readable(int sock, int64_t timeout_ns) {
    struct pollfd pf = {.fd = sock, .events = POLLIN, .revents = 0};
    int ms = timeout_ns <= 0 ? 0 : (int)((timeout_ns + 999999) / 1000000);
    int n;
    do {
        n = poll(&pf, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

/* The pool's map hook: map announced extents until slot @index of class @cls is mapped. */
static int map_hook(void *arg, uint32_t cls, uint32_t index) {
    shmx_guest_t *g = arg;
    const shmx_segment_header_t *hdr = (const shmx_segment_header_t *)g->seg.base;
    int64_t deadline = shmx_deadline(EXTENT_WAIT_NS);
    int rc = -SHMX_EBADSLOT;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        /* Another thread may have mapped it while we waited for the lock. */
        if (index < shmx_pool_class_end(&g->pool, cls)) {
            rc = 0;
            break;
        }
        if (g->extents_done || g->extent_count == SHMX_MAX_EXTENTS || g->sock < 0) break;
        /* Wait only while the header claims more extents than we have read: a hint (any
         * guest can write it), so a lie costs at most EXTENT_WAIT_NS. Acquire: pairs with
         * the host's release store of the count (host_service.c). */
        uint32_t hint = atomic_load_explicit(&hdr->extent_count, memory_order_acquire);
        int64_t left = hint > g->extent_count ? deadline - shmx_now_ns() : 0;
        if (!readable(g->sock, left)) break;
        if (map_next_locked(g, deadline) != 0) g->extents_done = 1;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* The entry the welcome names must be ours: in range, ACTIVE, with our epoch. */
static int check_entry(const shmx_guest_t *g, const shmx_welcome_t *w) {
    if (w->channel_index >= g->seg.config.max_channels) return -SHMX_EPROTO;
    if (w->max_payload != g->seg.config.max_payload || w->max_message != g->seg.config.max_message ||
        w->segment_bytes != g->seg.size)
        return -SHMX_EPROTO;
    shmx_channel_ctl_t *ctl = shmx_segment_channel(&g->seg, w->channel_index);
    /* Acquire: pairs with the host's release store of ACTIVE (host.c), after
     * which the formatted rings and the epoch are visible. */
    uint32_t state = atomic_load_explicit(&ctl->state, memory_order_acquire);
    uint32_t epoch = atomic_load_explicit(&ctl->epoch, memory_order_relaxed);
    return state == SHMX_CHANNEL_ACTIVE && epoch == w->epoch ? 0 : -SHMX_EPROTO;
}

static int open_shm(shmx_guest_t *g, int sock, int seg_fd, const shmx_welcome_t *w, int64_t deadline) {
    int64_t left = deadline == INT64_MAX ? -1 : deadline - shmx_now_ns();
    if (deadline != INT64_MAX && left < 0) left = 0; /* still one look: the host made it ready before listening */
    int rc = shmx_segment_attach_fd(seg_fd, left, &g->seg); /* owns seg_fd from here */
    if (rc < 0) {
        close(sock);
        return rc;
    }
    g->has_seg = 1;
    shmx_pool_init(&g->pool, g->seg.base, &g->seg.layout, &g->seg.config, 0);
    rc = check_entry(g, w);
    if (rc < 0) {
        close(sock);
        return rc;
    }
    rc = shmx_channel_open_shm(&g->seg, &g->pool, w->channel_index, 0, w->epoch, sock, &g->ch);
    if (rc < 0) {
        close(sock); /* a failed open leaves the socket with us */
        return rc;
    }
    rc = shmx_channel_bells_recv(g->ch, deadline);
    if (rc < 0) return rc; /* the channel owns sock: shmx_guest_close frees both */
    g->sock = sock;
    g->pool.hook_arg = g;
    g->pool.grow = grow_hook;
    g->pool.map = map_hook;
    return 0;
}

/* What a spawned guest's ticket names (shmx_guest_attach_ticket). */
typedef struct ticket {
    uint32_t peer;
    uint32_t epoch;
} ticket_t;

/*
 * Read the host's welcome on @sock (connected, hello sent with result @sent)
 * and open the channel it gives. @wanted: the transport asked for (AUTO takes
 * either). @t: a spawn ticket the welcome must match, or NULL. Owns @sock.
 */
static int guest_finish(int sock, uint32_t wanted, int sent, int64_t deadline, const ticket_t *t,
                        shmx_guest_t **out) {
    shmx_welcome_t w;
    int seg_fd = -1;
    int rc = shmx_bootstrap_recv_welcome(sock, deadline, &w, &seg_fd);
    uint32_t transport = rc == 0 ? w.transport : 0;
    if (rc == 0 && w.status != 0) rc = w.status;
    else if (rc == 0 && transport != wanted && (wanted != SHMX_TRANSPORT_AUTO ||
                                                (transport != SHMX_TRANSPORT_SHM && transport != SHMX_TRANSPORT_UDS)))
        rc = -SHMX_EPROTO;
    else if (rc == 0 && t != NULL && (transport != SHMX_TRANSPORT_SHM || w.channel_index != t->peer || w.epoch != t->epoch))
        rc = -SHMX_EPROTO; /* not the entry the host reserved for us */
    else if (rc == -SHMX_EHOSTGONE && sent < 0) rc = sent;
    if (rc < 0) {
        if (seg_fd >= 0) close(seg_fd);
        close(sock);
        return rc;
    }

    shmx_guest_t *g = calloc(1, sizeof *g);
    int err = g ? pthread_mutex_init(&g->mu, NULL) : ENOMEM;
    if (err != 0) {
        free(g);
        if (seg_fd >= 0) close(seg_fd);
        close(sock);
        return -err;
    }
    g->has_mu = 1;
    g->sock = -1;
    if (transport == SHMX_TRANSPORT_SHM) {
        rc = open_shm(g, sock, seg_fd, &w, deadline);
    } else if (w.max_payload == 0 || w.max_payload > SHMX_FRAME_MAX_PAYLOAD || w.max_message < w.max_payload) {
        close(sock); /* the channel would allocate buffers of this size: never trust it blindly */
        rc = -SHMX_EPROTO;
    } else {
        rc = shmx_channel_open_uds(sock, 0, w.max_payload, &g->ch);
        if (rc < 0) close(sock);
        else g->ch->max_message = w.max_message; /* receive_message grows buffers only up to this */
    }
    if (rc < 0) {
        shmx_guest_close(g);
        return rc;
    }
    if (wanted == SHMX_TRANSPORT_AUTO && transport == SHMX_TRANSPORT_UDS)
        shmx_log(SHMX_LOG_WARN, "guest: the host gave the Unix socket transport, not shared memory (hybrid fallback)");
    *out = g;
    return 0;
}

int shmx_guest_connect(const char *name, uint32_t transport, int64_t timeout_ns, shmx_guest_t **out) {
    if (!out) return -SHMX_EINVAL;
    *out = NULL;
    if (transport != SHMX_TRANSPORT_SHM && transport != SHMX_TRANSPORT_UDS && transport != SHMX_TRANSPORT_AUTO)
        return -SHMX_EINVAL;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int rc = shmx_socket_path(name, path, sizeof path);
    if (rc < 0) return rc;

    int64_t deadline = shmx_deadline(timeout_ns);
    int sock = shmx_bootstrap_connect(path, deadline);
    if (sock < 0) return sock;
    int64_t floor = shmx_now_ns() + HANDSHAKE_MIN_NS;
    if (deadline < floor) deadline = floor;

    shmx_hello_t hello = {.transport = (uint16_t)transport};
    int sent = shmx_bootstrap_send_hello(sock, &hello);
    /* A host that refused us may have hung up before our hello arrived; its
     * welcome (with the reason) is still there to read. */
    if (sent < 0 && sent != -EPIPE && sent != -ECONNRESET) {
        close(sock);
        return sent;
    }
    return guest_finish(sock, transport, sent, deadline, NULL, out);
}

int shmx_guest_attach_ticket(const char *text, int64_t timeout_ns, shmx_guest_t **out) {
    if (!out) return -SHMX_EINVAL;
    *out = NULL;
    if (text == NULL) text = getenv(SHMX_TICKET_ENV);
    ticket_t t;
    int sock;
    if (text == NULL || shmx_ticket_parse(text, &t.peer, &t.epoch, &sock) != 0) return -SHMX_EINVAL;
    struct stat st;
    if (fstat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) return -SHMX_EINVAL;
    /* Ours alone from here: a program this guest runs must not inherit the host's socket. */
    int fl = fcntl(sock, F_GETFD);
    if (fl < 0 || fcntl(sock, F_SETFD, fl | FD_CLOEXEC) != 0) return -errno;
    int64_t deadline = shmx_deadline(timeout_ns);
    int64_t floor = shmx_now_ns() + HANDSHAKE_MIN_NS;
    if (deadline < floor) deadline = floor;
    return guest_finish(sock, SHMX_TRANSPORT_SHM, 0, deadline, &t, out);
}

shmx_channel_t *shmx_guest_channel(shmx_guest_t *g) { return g ? g->ch : NULL; }

uint64_t shmx_guest_mapped_bytes(const shmx_guest_t *g) {
    if (!g || !g->has_seg) return 0;
    /* Relaxed: a figure for diagnostics; map_next_locked raises it. */
    return g->seg.size + atomic_load_explicit(&g->extent_bytes, memory_order_relaxed);
}

void shmx_guest_close(shmx_guest_t *g) {
    if (!g) return;
    /* The channel first, while the segment and extents are mapped: it closes the rings
     * (the host sees -SHMX_ECLOSED at once), gives back the slots it holds, and hangs up
     * (closing the socket: no hook may run after this). The bye before it tells the
     * host's service thread that this hang-up is a close, not a death. */
    if (g->ch && g->ch->ctl) atomic_store_explicit(&g->ch->ctl->bye, 1, memory_order_release);
    if (g->ch) shmx_channel_free(g->ch);
    g->sock = -1;
    for (uint32_t i = 0; i < g->extent_count; i++) shmx_extent_close(&g->extents[i]);
    if (g->has_seg) shmx_segment_close(&g->seg);
    if (g->has_mu) pthread_mutex_destroy(&g->mu);
    free(g);
}
