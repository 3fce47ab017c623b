/*
 * Event-loop integration: the channel's pollable fd, arming, and attaching
 * the doorbells (doorbell.h).
 *
 * A shm channel's fd is an epoll set of this side's rx bell, its private
 * wake eventfd and the bootstrap socket's hang-up. arm() drains the bell
 * and the wake eventfd, announces the sleep in
 * the ring (shmx_ring_arm) and looks once more; the producer's commit (or
 * either side's close) rings the bell only for an armed consumer. A peer
 * that dies between publishing and ringing closes its socket, which the set
 * also watches: the sleeper wakes and finds the record.
 *
 * A uds channel's fd is its socket: the frames themselves make it readable.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bootstrap.h"
#include "channel_shm.h"
#include "doorbell.h"
#include "shmx/errors.h"

/*
 * Own this side's ends @h2g and @g2h and point each ring at its bell: we send
 * on the tx ring's, we wait on the rx ring's. Plus the private wake eventfd.
 * Returns 0, or -errno with @h2g and @g2h closed.
 */
static int attach(shmx_channel_t *ch, int h2g, int g2h) {
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
        int rc = -errno;
        close(h2g);
        close(g2h);
        return rc;
    }
    ch->bell[SHMX_RING_HOST_TO_GUEST] = h2g;
    ch->bell[SHMX_RING_GUEST_TO_HOST] = g2h;
    ch->wake_fd = wake;
    ch->tx.bell_fd = ch->is_host ? h2g : g2h;
    ch->rx.bell_fd = ch->is_host ? g2h : h2g;
    ch->has_bells = 1;
    return 0;
}

static void detach(shmx_channel_t *ch) {
    if (!ch->has_bells) return;
    close(ch->bell[0]);
    close(ch->bell[1]);
    close(ch->wake_fd);
    ch->bell[0] = ch->bell[1] = ch->wake_fd = -1;
    ch->tx.bell_fd = ch->rx.bell_fd = -1;
    ch->has_bells = 0;
}

static int attachable(const shmx_channel_t *ch) {
    if (ch == NULL || ch->transport != SHMX_TRANSPORT_SHM) return -SHMX_EINVAL;
    return ch->has_bells ? -SHMX_ESTATE : 0;
}

int shmx_channel_bells_create(shmx_channel_t *ch, int guest[2]) {
    int rc = attachable(ch);
    if (rc < 0) return rc;
    int host[2];
    rc = shmx_doorbell_create(host, guest);
    if (rc < 0) return rc;
    rc = attach(ch, host[SHMX_RING_HOST_TO_GUEST], host[SHMX_RING_GUEST_TO_HOST]);
    if (rc < 0) {
        close(guest[0]);
        close(guest[1]);
    }
    return rc;
}

int shmx_channel_bells_send(shmx_channel_t *ch) {
    if (ch != NULL && ch->sock < 0) return -SHMX_EINVAL;
    int guest[2];
    int rc = shmx_channel_bells_create(ch, guest);
    if (rc < 0) return rc;
    rc = shmx_bootstrap_send_bells(ch->sock, guest);
    close(guest[0]); /* the guest has its own copies now, or never will */
    close(guest[1]);
    if (rc < 0) detach(ch);
    return rc;
}

int shmx_channel_bells_adopt(shmx_channel_t *ch, int h2g, int g2h) {
    int rc = attachable(ch);
    if (rc == 0 && (h2g < 0 || g2h < 0 || h2g == g2h)) rc = -SHMX_EINVAL;
    if (rc == 0) rc = shmx_doorbell_check(h2g);
    if (rc == 0) rc = shmx_doorbell_check(g2h);
    if (rc < 0) {
        if (h2g >= 0) close(h2g);
        if (g2h >= 0 && g2h != h2g) close(g2h);
        return rc;
    }
    return attach(ch, h2g, g2h);
}

int shmx_channel_bells_recv(shmx_channel_t *ch, int64_t deadline_ns) {
    int rc = attachable(ch);
    if (rc == 0 && ch->sock < 0) rc = -SHMX_EINVAL;
    if (rc < 0) return rc;
    int fds[2];
    rc = shmx_bootstrap_recv_bells(ch->sock, deadline_ns, fds);
    if (rc < 0) return rc;
    return shmx_channel_bells_adopt(ch, fds[0], fds[1]);
}

void shmx_channel_events_destroy(shmx_channel_t *ch) {
    int ep1 = ch->events_fd_plus1;
    if (ep1 > 0) close(ep1 - 1);
    ch->events_fd_plus1 = 0;
    detach(ch);
}

/* ---- public ------------------------------------------------------------------- */

int shmx_channel_fd(shmx_channel_t *ch) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return ch->sock >= 0 ? ch->sock : -SHMX_ESTATE;
    if (!ch->has_bells) return -SHMX_ESTATE;
    /* Acquire: pairs with the CAS below, so the set a racing caller made is complete. */
    int cur = __atomic_load_n(&ch->events_fd_plus1, __ATOMIC_ACQUIRE);
    if (cur > 0) return cur - 1;
    int ep = shmx_doorbell_epoll(ch->rx.bell_fd, ch->wake_fd, ch->sock);
    if (ep < 0) return ep;
    /* Two first callers on different threads: one set wins, the other is closed. */
    int expected = 0;
    if (!__atomic_compare_exchange_n(&ch->events_fd_plus1, &expected, ep + 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        close(ep);
        return expected - 1;
    }
    return ep;
}

/* uds: readable now, or the stream is over (the frames are the wake-up). */
static int uds_arm(shmx_channel_t *ch) {
    if (ch->sock < 0) return -SHMX_ESTATE;
    /* Relaxed/acquire as in channel_uds.c: one-way flags. */
    if (__atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE) || __atomic_load_n(&ch->uds_peer_gone, __ATOMIC_RELAXED))
        return 1;
    struct pollfd p = {.fd = ch->sock, .events = POLLIN | POLLRDHUP, .revents = 0};
    int n;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return n > 0;
}

int shmx_channel_arm(shmx_channel_t *ch) {
    if (ch == NULL) return -SHMX_EINVAL;
    if (ch->transport == SHMX_TRANSPORT_UDS) return uds_arm(ch);
    if (!ch->has_bells) return -SHMX_ESTATE;
    /* Drain first: a ring that lands after this is kept and wakes the next poll. */
    shmx_doorbell_drain(ch->rx.bell_fd);
    uint64_t woken;
    (void)!read(ch->wake_fd, &woken, sizeof woken); /* ours alone, non-blocking: EAGAIN when not woken */
    if (shmx_ring_arm(&ch->rx)) return 1;
    /* A peer gone between publishing and ringing: its records wait in the ring. The set
     * watches the socket too; answering here spares the caller one empty wake-up. */
    if (shmx_sock_hung_up(ch->sock)) return 1;
    return 0;
}

void shmx_channel_wake_local(shmx_channel_t *ch) {
    if (ch == NULL || ch->transport != SHMX_TRANSPORT_SHM || !ch->has_bells) return;
    uint64_t one = 1;
    /* Our own eventfd, non-blocking: EAGAIN only with the counter at its maximum, already woken. */
    (void)!write(ch->wake_fd, &one, sizeof one);
}
