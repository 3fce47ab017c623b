/*
 * The guest: connects to a host by name, receives its channel (and, for the
 * shm transport, the segment fd), checks what the host announced against the
 * segment itself, and opens its side of the channel.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap.h"
#include "channel_internal.h"
#include "shmx/errors.h"
#include "shmx/frame.h"
#include "shmx/peer.h"

/* However short the caller's timeout (it bounds the wait for the host to
 * appear), a host that has accepted gets this long to answer the hello. */
#define HANDSHAKE_MIN_NS 2000000000LL

struct shmx_guest {
    shmx_channel_t *ch;
    int has_seg;
    shmx_segment_t seg; /* shm transport: the host's segment, validated on attach */
    shmx_pool_t pool;
};

/* The entry the welcome names must be ours: in range, ACTIVE, with our epoch. */
static int check_entry(const shmx_guest_t *g, const shmx_welcome_t *w) {
    if (w->channel_index >= g->seg.config.max_channels) return -SHMX_EPROTO;
    if (w->max_payload != g->seg.config.max_payload || w->segment_bytes != g->seg.size) return -SHMX_EPROTO;
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
    rc = shmx_channel_open_shm(&g->seg, &g->pool, w->channel_index, 0, sock, &g->ch);
    if (rc < 0) close(sock); /* a failed open leaves the socket with us */
    return rc;
}

int shmx_guest_connect(const char *name, uint32_t transport, int64_t timeout_ns, shmx_guest_t **out) {
    if (!out) return -SHMX_EINVAL;
    *out = NULL;
    if (transport != SHMX_TRANSPORT_SHM && transport != SHMX_TRANSPORT_UDS) return -SHMX_EINVAL;
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
    shmx_welcome_t w;
    int seg_fd = -1;
    rc = shmx_bootstrap_recv_welcome(sock, deadline, &w, &seg_fd);
    if (rc == 0 && w.status != 0) rc = w.status;
    else if (rc == 0 && w.transport != transport) rc = -SHMX_EPROTO;
    else if (rc == -SHMX_EHOSTGONE && sent < 0) rc = sent;
    if (rc < 0) {
        if (seg_fd >= 0) close(seg_fd);
        close(sock);
        return rc;
    }

    shmx_guest_t *g = calloc(1, sizeof *g);
    if (!g) {
        if (seg_fd >= 0) close(seg_fd);
        close(sock);
        return -ENOMEM;
    }
    if (transport == SHMX_TRANSPORT_SHM) {
        rc = open_shm(g, sock, seg_fd, &w, deadline);
    } else if (w.max_payload == 0 || w.max_payload > SHMX_FRAME_MAX_PAYLOAD) {
        close(sock); /* the channel would allocate buffers of this size: never trust it blindly */
        rc = -SHMX_EPROTO;
    } else {
        rc = shmx_channel_open_uds(sock, 0, w.max_payload, &g->ch);
        if (rc < 0) close(sock);
    }
    if (rc < 0) {
        shmx_guest_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

shmx_channel_t *shmx_guest_channel(shmx_guest_t *g) { return g ? g->ch : NULL; }

uint64_t shmx_guest_mapped_bytes(const shmx_guest_t *g) { return g && g->has_seg ? g->seg.size : 0; }

void shmx_guest_close(shmx_guest_t *g) {
    if (!g) return;
    /* The channel first, while the segment is mapped: it closes the rings (the host sees
     * -SHMX_ECLOSED at once), gives back the slots it holds, and hangs up. */
    if (g->ch) shmx_channel_free(g->ch);
    if (g->has_seg) shmx_segment_close(&g->seg);
    free(g);
}
