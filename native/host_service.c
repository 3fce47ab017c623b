/*
 * The host's service thread and the pool's growth.
 *
 * Growth: when every fitting class is empty, the pool asks for an extent of
 * the smallest fitting class. The host's own threads ask through the pool's
 * grow hook and grow it on the spot; guests send a grow request over their
 * bootstrap socket, which the service thread reads. Either way
 * shmx_host_grow_locked, under the host's lock, creates a sealed memfd of
 * more slots of that class (never resizing the segment), then, in this
 * order:
 *   (a) sends an extent announcement with its fd to every shm guest,
 *   (b) writes its header table entry and raises the header's count (release),
 *   (c) pushes its slots on the class's free list,
 *   (d) wakes allocations waiting for a free.
 * Sending before publishing means a guest that can see a new slot already
 * has its fd queued in its socket; a guest admitted later gets every
 * announcement right after its welcome (same lock). A guest whose socket
 * does not take an announcement could never use those slots: it is hung up
 * on. Total slot bytes stay within pool_max_bytes; at the cap nothing grows
 * and allocations wait for frees. Extents live until the host is destroyed.
 *
 * The service thread ("shmx-host") waits in epoll on the shm guests'
 * bootstrap sockets only: uds sockets carry frames (channel_uds.c) and the
 * listening socket is shmx_host_accept's. Each wake-up reads a bounded number
 * of requests per guest; a malformed request is ignored (with what is queued
 * behind it), descriptors a guest sends are closed, nothing is printed, and a
 * guest that hangs up is no longer watched.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel_internal.h"
#include "host_internal.h"
#include "shmx/errors.h"

#define STOP_TOKEN UINT64_MAX
#define MAX_EVENTS 16
/* Requests read from one guest per wake-up: a flooding guest waits its turn, others do not. */
#define REQUESTS_PER_WAKE 8u
/* Bytes dropped after a malformed request (a bound, not a protocol figure). */
#define DRAIN_BYTES 256u

/* epoll data of an entry: its index and the epoch it was admitted with (a reused entry differs). */
static uint64_t token_of(uint32_t idx, uint32_t epoch) { return (uint64_t)epoch << 32 | idx; }

/* ---- growth ---------------------------------------------------------------------------- */

/* (a): tell every shm guest. One that cannot be told is cut off (it could never map the extent). */
static void announce_locked(shmx_host_t *h, const shmx_extent_t *e, uint32_t id) {
    shmx_extent_msg_t m = {
        .id = id, .cls = e->cls, .first_index = e->first, .slot_count = e->count, .bytes = e->bytes};
    for (uint32_t i = 0; i < h->config.max_channels; i++) {
        shmx_channel_t *ch = h->shm[i];
        if (ch == NULL || ch->sock < 0) continue;
        if (shmx_bootstrap_send_extent(ch->sock, &m, e->fd) != 0) {
            shmx_host_service_forget_locked(h, i, ch->sock);
            shutdown(ch->sock, SHUT_RDWR);
        }
    }
}

/* (b): the header's table, for diagnostics and as a hint to guests. */
static void publish_locked(shmx_host_t *h, const shmx_extent_t *e, uint32_t id) {
    shmx_segment_header_t *hdr = (shmx_segment_header_t *)h->seg.base;
    hdr->extents[id] = (shmx_extent_entry_t){
        .cls = e->cls, .first_index = e->first, .slot_count = e->count, .reserved = 0, .bytes = e->bytes};
    /* Release: the entry is written before a reader (acquire, guest.c) sees the count cover it. */
    atomic_store_explicit(&hdr->extent_count, id + 1u, memory_order_release);
}

int shmx_host_grow_locked(shmx_host_t *h, uint32_t cls) {
    if (cls >= h->pool.class_count || h->extent_count == SHMX_MAX_EXTENTS) return 0;
    /* Someone freed meanwhile: no growth needed. The head is shared, so this is only a
     * hint; a guest lying about it can make the pool grow, but never past the cap. */
    if (!shmx_pool_class_empty(&h->pool, cls)) return 0;
    const shmx_pool_class_t *k = &h->pool.cls[cls];
    uint64_t room = h->config.pool_max_bytes - h->pool_slot_bytes; /* never negative: checked on every growth */
    uint64_t count = k->chunk_slots;
    if (count * k->slot_size > room) count = room / k->slot_size; /* the last one may be short */
    uint32_t first = shmx_pool_class_end(&h->pool, cls);
    if (count > SHMX_POOL_MAX_INDEX - first) count = SHMX_POOL_MAX_INDEX - first;
    if (count == 0) return 0;

    uint32_t id = h->extent_count;
    shmx_extent_t *e = &h->extents[id];
    int rc = shmx_extent_create(cls, k->slot_size, first, (uint32_t)count, e);
    if (rc < 0) return rc;
    /* The host's own view first: nothing refers to these indexes before the push. */
    rc = shmx_pool_add_extent(&h->pool, cls, first, e->count, e->base, e->bytes);
    if (rc < 0) {
        shmx_extent_close(e);
        return rc;
    }
    h->extent_count = id + 1u;
    h->pool_slot_bytes += count * k->slot_size;
    /* Relaxed: a figure read for diagnostics (shmx_host_mapped_bytes). */
    atomic_fetch_add_explicit(&h->extent_bytes, e->bytes, memory_order_relaxed);
    announce_locked(h, e, id);
    publish_locked(h, e, id);
    return shmx_pool_push_extent(&h->pool, cls, first) == 0 ? 1 : -SHMX_ECORRUPT; /* (c) and (d) */
}

/* The pool's grow hook for the host's own allocations. */
static void grow_hook(void *arg, uint32_t cls) {
    shmx_host_t *h = arg;
    pthread_mutex_lock(&h->mu);
    (void)shmx_host_grow_locked(h, cls); /* nothing grown: the allocation waits for a free */
    pthread_mutex_unlock(&h->mu);
}

void shmx_host_extents_close(shmx_host_t *h) {
    for (uint32_t i = 0; i < h->extent_count; i++) shmx_extent_close(&h->extents[i]);
    h->extent_count = 0;
}

/* ---- guests' sockets ------------------------------------------------------------------- */

int shmx_host_service_admit_locked(shmx_host_t *h, uint32_t idx, int sock) {
    for (uint32_t i = 0; i < h->extent_count; i++) {
        const shmx_extent_t *e = &h->extents[i];
        shmx_extent_msg_t m = {
            .id = i, .cls = e->cls, .first_index = e->first, .slot_count = e->count, .bytes = e->bytes};
        int rc = shmx_bootstrap_send_extent(sock, &m, e->fd);
        if (rc < 0) return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = token_of(idx, h->epochs[idx])};
    if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, sock, &ev) != 0) return -errno;
    h->watch[idx] = (shmx_host_watch_t){.watched = 1};
    return 0;
}

void shmx_host_service_forget_locked(shmx_host_t *h, uint32_t idx, int sock) {
    if (!h->watch[idx].watched) return;
    (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, sock, NULL); /* fails only if already gone: nothing to do */
    h->watch[idx].watched = 0;
}

/* A malformed request: dropped, with what is queued behind it (once), so that the guest's
 * later requests start on a message boundary again. The guest stays. */
static void drop_malformed(int sock, shmx_host_watch_t *w) {
    uint8_t junk[DRAIN_BYTES];
    w->partial_len = 0;
    (void)shmx_bootstrap_read_some(sock, junk, sizeof junk);
}

/* Read and serve up to REQUESTS_PER_WAKE grow requests of the guest behind @token. */
static void serve_locked(shmx_host_t *h, uint64_t token) {
    uint32_t idx = (uint32_t)token;
    /* Gone or replaced since epoll reported it: the event is stale. */
    if (idx >= h->config.max_channels || h->shm[idx] == NULL || !h->watch[idx].watched ||
        token_of(idx, h->epochs[idx]) != token)
        return;
    int sock = h->shm[idx]->sock;
    shmx_host_watch_t *w = &h->watch[idx];
    for (uint32_t served = 0; served < REQUESTS_PER_WAKE;) {
        ssize_t n = shmx_bootstrap_read_some(sock, w->partial + w->partial_len, SHMX_GROW_BYTES - w->partial_len);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            /* Hung up or broken: nothing more will come. Its channel learns it from the socket. */
            shmx_host_service_forget_locked(h, idx, sock);
            return;
        }
        w->partial_len += (uint32_t)n;
        /* Checked as the bytes come: garbage is never kept waiting to spoil the next request. */
        if (!shmx_bootstrap_grow_prefix_ok(w->partial, w->partial_len)) {
            served++;
            drop_malformed(sock, w);
            continue;
        }
        if (w->partial_len < SHMX_GROW_BYTES) continue;
        w->partial_len = 0;
        served++;
        uint32_t cls;
        if (shmx_bootstrap_parse_grow(w->partial, &cls) != 0) drop_malformed(sock, w);
        else if (cls < h->pool.class_count) (void)shmx_host_grow_locked(h, cls); /* else: no such class */
    }
}

static void *service_main(void *arg) {
    shmx_host_t *h = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(h->epoll_fd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return NULL; /* the set itself is broken: growth then only happens in the host's own allocations */
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STOP_TOKEN) return NULL;
            pthread_mutex_lock(&h->mu);
            serve_locked(h, evs[i].data.u64);
            pthread_mutex_unlock(&h->mu);
        }
    }
}

/* ---- start and stop --------------------------------------------------------------------- */

int shmx_host_service_start(shmx_host_t *h) {
    h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = h->epoll_fd < 0 || h->stop_fd < 0 ? -errno : 0;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TOKEN};
        if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->stop_fd, &ev) != 0) rc = -errno;
    }
    if (rc == 0) {
        /* Every signal blocked in the thread: the application's threads keep receiving them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = -pthread_create(&h->thread, NULL, service_main, h);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc < 0) {
        shmx_host_service_stop(h);
        return rc;
    }
    h->has_thread = 1;
    (void)pthread_setname_np(h->thread, "shmx-host"); /* a name is a courtesy to debuggers */
    h->pool.hook_arg = h;
    h->pool.grow = grow_hook;
    return 0;
}

void shmx_host_service_stop(shmx_host_t *h) {
    if (h->has_thread) {
        uint64_t one = 1;
        /* An eventfd write of 8 bytes cannot fail short; it could only fail if the counter
         * were about to overflow, which one write per host never makes it. */
        ssize_t w;
        do {
            w = write(h->stop_fd, &one, sizeof one);
        } while (w < 0 && errno == EINTR);
        pthread_join(h->thread, NULL);
        h->has_thread = 0;
    }
    if (h->epoll_fd >= 0) close(h->epoll_fd);
    if (h->stop_fd >= 0) close(h->stop_fd);
    h->epoll_fd = -1;
    h->stop_fd = -1;
}
