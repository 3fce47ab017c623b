/* Doorbell eventfds and the per-channel epoll set; see doorbell.h. */
#include "doorbell.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shmx/errors.h"

int shmx_doorbell_create_pair(int fds[2]) {
    fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fds[0] < 0) return -errno;
    fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fds[1] < 0) {
        int rc = -errno;
        close(fds[0]);
        fds[0] = -1;
        return rc;
    }
    return 0;
}

int shmx_doorbell_check(int fd) {
    /* An eventfd names itself so in /proc; anything else (a pipe, a socket that never
     * becomes readable) would make the channel's wake-ups silently wrong. */
    char link[64], target[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return errno == ENOENT ? -SHMX_EPROTO : -errno;
    target[n] = '\0';
    if (strcmp(target, "anon_inode:[eventfd]") != 0) return -SHMX_EPROTO;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
    return 0;
}

void shmx_doorbell_ring(int fd) {
    uint64_t one = 1;
    ssize_t w;
    /* EAGAIN: the counter is at its maximum, which already reads as rung. */
    do {
        w = write(fd, &one, sizeof one);
    } while (w < 0 && errno == EINTR);
}

void shmx_doorbell_drain(int fd) {
    uint64_t v;
    ssize_t r;
    /* One read zeroes an eventfd (no EFD_SEMAPHORE); EAGAIN: it was zero. */
    do {
        r = read(fd, &v, sizeof v);
    } while (r < 0 && errno == EINTR);
}

int shmx_doorbell_epoll(int bell, int sock) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = bell};
    int rc = epoll_ctl(ep, EPOLL_CTL_ADD, bell, &ev) == 0 ? 0 : -errno;
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
