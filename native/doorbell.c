/* Doorbell socketpairs and the per-channel epoll set; see doorbell.h. */
#include "doorbell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "layout.h"
#include "shmx/errors.h"

int shmx_doorbell_create(int host[2], int guest[2]) {
    int h2g[2], g2h[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, h2g) != 0) return -errno;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, g2h) != 0) {
        int rc = -errno;
        close(h2g[0]);
        close(h2g[1]);
        return rc;
    }
    /* Only the producer sends and only the consumer reads each pair. */
    host[SHMX_RING_HOST_TO_GUEST] = h2g[0];
    guest[SHMX_RING_HOST_TO_GUEST] = h2g[1];
    host[SHMX_RING_GUEST_TO_HOST] = g2h[0];
    guest[SHMX_RING_GUEST_TO_HOST] = g2h[1];
    return 0;
}

int shmx_doorbell_check(int fd) {
    /* Anything but a stream socket (a pipe, a file) would make the wake-ups silently wrong. */
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        return errno == ENOTSOCK || errno == EBADF ? -SHMX_EPROTO : -errno;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return -errno;
    if (domain != AF_UNIX || type != SOCK_STREAM) return -SHMX_EPROTO;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
    return 0;
}

void shmx_doorbell_ring(int fd) {
    ssize_t w;
    /* EAGAIN: the buffer is full, which already reads as rung; EPIPE: the peer is gone. */
    do {
        w = send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
}

/* Reads per drain: what a well-behaved peer queues is one byte per arm; a flood stays for later. */
#define DRAIN_READS 4

void shmx_doorbell_drain(int fd) {
    char buf[256];
    for (int i = 0; i < DRAIN_READS; i++) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) continue;
        if (r < (ssize_t)sizeof buf) return; /* emptied, nothing there, or the peer is gone */
    }
}

int shmx_doorbell_epoll(int bell, int wake, int sock) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = bell};
    int rc = epoll_ctl(ep, EPOLL_CTL_ADD, bell, &ev) == 0 ? 0 : -errno;
    struct epoll_event wv = {.events = EPOLLIN, .data.fd = wake};
    if (rc == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, wake, &wv) != 0) rc = -errno;
    if (rc == 0 && sock >= 0) {
        /* Hang-up only: EPOLLHUP and EPOLLERR are always reported; POLLIN would fire for
         * extent announcements (guest) and grow requests (host) that others read. */
        struct epoll_event hv = {.events = EPOLLRDHUP, .data.fd = sock};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &hv) != 0) rc = -errno;
    }
    if (rc < 0) {
        close(ep);
        return rc;
    }
    return ep;
}
