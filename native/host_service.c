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
 * bootstrap sockets, spawned guests' pidfds and, for hang-ups only, the uds
 * guests' sockets (they carry frames, which channel_uds.c reads); the
 * listening socket is shmx_host_accept's. Each wake-up reads a bounded number
 * of requests per guest; a malformed request is ignored (with what is queued
 * behind it), descriptors a guest sends are closed, and nothing is printed.
 *
 * Liveness: a guest ends when its socket hangs up (a close if it said bye
 * first, else a death), when its spawned process exits (pidfd), or when it
 * leaves records in the host-to-guest ring with the ring's head unmoved for
 * liveness_ms (checked every liveness_ms / 4, at least every 250 ms). Then,
 * at once and under the host's lock: both rings are closed (the host's
 * waiters wake; what the guest committed can still be received), every pool
 * slot the guest owned is taken back, and an event goes to the listener after
 * the lock is released. The entry itself returns to the free list only when
 * the application frees the host's channel and the guest has hung up (host.c),
 * so a guest that was expelled but still runs never writes into the rings of
 * the next one; the next one gets a fresh epoch.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_internal.h"
#include "doorbell.h"
#include "host_internal.h"
#include "log.h"
#include "shmx/errors.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* waitid on a pidfd (Linux 5.4); older libc headers lack the name */
#endif

#define STOP_TOKEN UINT64_MAX
#define KICK_TOKEN (UINT64_MAX - 1u)
/* Tokens of pidfds and uds sockets carry a tag bit; shm sockets' tokens are (epoch, index). */
#define CHILD_TAG (1ull << 62)
#define UDS_TAG (1ull << 61)
#define DRAIN_TAG (1ull << 60)
/* How long a spawned guest's exit status may lag behind its socket's hang-up (both come from its exit). */
#define EXIT_LAG_MS 50
#define MAX_EVENTS 16
/* Requests read from one guest per wake-up: a flooding guest waits its turn, others do not. */
#define REQUESTS_PER_WAKE 8u
/* Bytes dropped after a malformed request (a bound, not a protocol figure). */
#define DRAIN_BYTES 256u

/* epoll data of an entry: its index and the epoch it was admitted with (a reused entry differs). */
static uint64_t token_of(uint32_t idx, uint32_t epoch) { return (uint64_t)epoch << 32 | idx; }

/* The entry a token names, if it still serves the same guest; max_channels if not. */
static uint32_t entry_of(const shmx_host_t *h, uint64_t token) {
    uint32_t idx = (uint32_t)token;
    if (idx >= h->config.max_channels || h->shm[idx] == NULL || h->watch[idx].ended ||
        token_of(idx, h->epochs[idx]) != (token & ~CHILD_TAG))
        return h->config.max_channels;
    return idx;
}

/* ---- growth ---------------------------------------------------------------------------- */

static void end_locked(shmx_host_t *h, uint32_t idx, uint32_t reason, int status, int violation);

/*
 * (a): tell every shm guest. One that cannot be told (it stopped reading its
 * socket) could never map the extent: it is expelled, and its hang-up is
 * still watched for, so the entry is reaped when it really goes.
 */
static void announce_locked(shmx_host_t *h, const shmx_extent_t *e, uint32_t id) {
    shmx_extent_msg_t m = {
        .id = id, .cls = e->cls, .first_index = e->first, .slot_count = e->count, .bytes = e->bytes};
    for (uint32_t i = 0; i < h->config.max_channels; i++) {
        shmx_channel_t *ch = h->shm[i];
        if (ch == NULL || ch->sock < 0 || h->watch[i].ended) continue;
        if (shmx_bootstrap_send_extent(ch->sock, &m, e->fd) != 0) end_locked(h, i, SHMX_PEER_EXPELLED, 0, 0);
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
    h->watch[idx] = (shmx_host_watch_t){.watched = 1, .pidfd = -1};
    return 0;
}

void shmx_host_service_forget_locked(shmx_host_t *h, uint32_t idx, int sock) {
    shmx_host_watch_t *w = &h->watch[idx];
    if (w->watched) (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, sock, NULL); /* fails only if already gone */
    w->watched = 0;
    if (w->pidfd >= 0) {
        (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, w->pidfd, NULL);
        close(w->pidfd);
        w->pidfd = -1;
    }
}

void shmx_host_service_watch_draining_locked(shmx_host_t *h, uint32_t idx, int sock) {
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = DRAIN_TAG | token_of(idx, h->epochs[idx])};
    /* Without it the entry is still reaped, later: when an admission looks for a free one. */
    (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, sock, &ev);
}

int shmx_host_service_watch_uds_locked(shmx_host_t *h, shmx_channel_t *ch) {
    /* Hang-ups only: the frames are the channel's to read (EPOLLHUP and EPOLLERR always come). */
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = UDS_TAG | (uint64_t)(uintptr_t)ch};
    return epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, ch->sock, &ev) == 0 ? 0 : -errno;
}

void shmx_host_service_forget_uds_locked(shmx_host_t *h, shmx_channel_t *ch) {
    if (ch->sock >= 0) (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, ch->sock, NULL); /* may be gone already */
}

int shmx_host_watch_child(shmx_host_t *h, shmx_channel_t *ch, pid_t pid, int pidfd) {
    if (!h || !ch || pidfd < 0 || ch->transport != SHMX_TRANSPORT_SHM) {
        if (pidfd >= 0) close(pidfd);
        return -SHMX_EINVAL;
    }
    pthread_mutex_lock(&h->mu);
    uint32_t idx = ch->index;
    int rc = 0;
    if (idx >= h->config.max_channels || h->shm[idx] != ch || h->watch[idx].pidfd >= 0) {
        rc = -SHMX_EINVAL;
    } else {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CHILD_TAG | token_of(idx, h->epochs[idx])};
        if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) != 0) rc = -errno;
    }
    if (rc == 0) {
        ch->peer_pid = pid;
        h->watch[idx].pidfd = pidfd;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) close(pidfd);
    return rc;
}

/* ---- guests that end ------------------------------------------------------------------ */

/*
 * A spawned child's wait status once it has ended (within @wait_ms), left for
 * the application's own wait to collect (WNOWAIT). 1 if it ended.
 */
static int child_status(int pidfd, int wait_ms, int *status) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, wait_ms) <= 0) return 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) return 0;
    if (si.si_code == CLD_EXITED) *status = (si.si_status & 0xff) << 8;
    else *status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0); /* as waitpid reports a signal */
    return 1;
}

/* Wake the service thread to report what was queued (an application thread may have queued it). */
static void kick(shmx_host_t *h) {
    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(h->kick_fd, &one, sizeof one);
    } while (w < 0 && errno == EINTR); /* EAGAIN: the counter is already nonzero, a wake is pending anyway */
}

/* Queue an event for the listener: the service thread reports it without the lock. */
static void report_locked(shmx_host_t *h, const shmx_peer_event_t *ev) {
    if (h->event_count < 2u * h->config.max_channels) h->events[h->event_count++] = *ev;
    kick(h);
}

/*
 * Entry @idx's guest ended for @reason: take back all it had, wake the host's
 * side, report. An expelled or quarantined guest may still run: its entry is
 * marked so that both sides stop, and only our half of its socket shuts.
 */
static void end_locked(shmx_host_t *h, uint32_t idx, uint32_t reason, int status, int violation) {
    shmx_channel_t *ch = h->shm[idx];
    shmx_host_watch_t *w = &h->watch[idx];
    w->ended = 1;
    shmx_host_service_forget_locked(h, idx, ch->sock);
    if (reason == SHMX_PEER_EXPELLED || reason == SHMX_PEER_VIOLATION) {
        /* Release: both sides' next calls read it (channel_shm.h): the guest learns why, the
         * host's side delivers nothing more of it. */
        atomic_store_explicit(&shmx_segment_channel(&h->seg, idx)->state, SHMX_CHANNEL_EXPELLED,
                              memory_order_release);
        /* Our half only: the entry stays withheld until the guest hangs up too (host.c reap). */
        shutdown(ch->sock, SHUT_WR);
        if (reason == SHMX_PEER_EXPELLED)
            shmx_log(SHMX_LOG_WARN, "host: guest %u (pid %d) expelled: its messages waited unconsumed for %u ms",
                     idx, (int)ch->peer_pid, h->config.liveness_ms);
        else
            shmx_log(SHMX_LOG_WARN, "host: guest %u (pid %d) quarantined for a protocol violation: %s", idx,
                     (int)ch->peer_pid, shmx_strerror(violation));
    }
    shmx_ring_close(shmx_segment_ring_ctl(&h->seg, idx, SHMX_RING_HOST_TO_GUEST));
    shmx_ring_close(shmx_segment_ring_ctl(&h->seg, idx, SHMX_RING_GUEST_TO_HOST));
    shmx_channel_wake_local(ch); /* a host side waiting in its own event loop learns it too */
    /* A guest that may still run keeps the slots it is writing until it hangs up (host.c reap). */
    int alive = reason == SHMX_PEER_EXPELLED || reason == SHMX_PEER_VIOLATION;
    shmx_peer_event_t ev = {.peer = idx,
                            .epoch = h->epochs[idx],
                            .reason = reason,
                            .pid = ch->peer_pid,
                            .exit_status = status,
                            .reclaimed = alive ? shmx_pool_reclaim_sent(&h->pool, idx)
                                               : shmx_pool_reclaim_owner(&h->pool, idx),
                            .noticed_ns = shmx_now_ns(),
                            .violation = violation};
    report_locked(h, &ev);
}

/* Entry @idx's socket hung up: a close if the guest said bye, an exit if its process ended, else a death. */
static void hung_up_locked(shmx_host_t *h, uint32_t idx) {
    /* Relaxed: a hint the guest wrote before hanging up; a lie only changes the reason. */
    uint32_t bye = atomic_load_explicit(&shmx_segment_channel(&h->seg, idx)->bye, memory_order_relaxed);
    int status = 0;
    uint32_t reason = SHMX_PEER_DIED;
    if (bye) reason = SHMX_PEER_CLOSED;
    else if (h->watch[idx].pidfd >= 0 && child_status(h->watch[idx].pidfd, EXIT_LAG_MS, &status))
        reason = SHMX_PEER_EXITED;
    end_locked(h, idx, reason, status, 0);
}

static void child_exited_locked(shmx_host_t *h, uint32_t idx) {
    int status = 0;
    /* The application may have reaped it first (its child handle's wait): then the status is
     * gone, and a made-up 0 would read as a clean exit. */
    if (child_status(h->watch[idx].pidfd, 0, &status)) end_locked(h, idx, SHMX_PEER_EXITED, status, 0);
    else end_locked(h, idx, SHMX_PEER_DIED, 0, 0);
}

/* A uds guest's socket reported a hang-up (or a stale event for a channel since freed). */
static void uds_hung_up_locked(shmx_host_t *h, uint64_t token) {
    shmx_channel_t *ch = (shmx_channel_t *)(uintptr_t)(token & ~UDS_TAG);
    uint32_t i = 0;
    while (i < h->uds_count && h->uds[i] != ch) i++;
    if (i == h->uds_count || !shmx_sock_hung_up(ch->sock)) return;
    shmx_host_service_forget_uds_locked(h, ch);
    /* Our own close shuts the socket down too: that is no news about the guest. */
    if (__atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE)) return;
    shmx_peer_event_t ev = {.reason = SHMX_PEER_DIED, .pid = ch->peer_pid, .noticed_ns = shmx_now_ns()};
    report_locked(h, &ev);
}

/* Expel every guest that left the host's records unconsumed for liveness_ms. */
static void check_liveness_locked(shmx_host_t *h, int64_t now) {
    int64_t limit = (int64_t)h->config.liveness_ms * 1000000;
    for (uint32_t idx = 0; idx < h->config.max_channels; idx++) {
        shmx_host_watch_t *w = &h->watch[idx];
        if (h->shm[idx] == NULL || w->ended) continue;
        const shmx_ring_ctl_t *r = shmx_segment_ring_ctl(&h->seg, idx, SHMX_RING_HOST_TO_GUEST);
        /* A closed channel is ending by itself: its last messages may wait for a reader at leisure. */
        if (shmx_ring_is_closed(r)) continue;
        /* Relaxed: progress is all we look for; a guest faking it only keeps its own channel. */
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        if (tail == head) {
            w->stuck_since = 0;
        } else if (w->stuck_since == 0 || head != w->last_head) {
            w->last_head = head;
            w->stuck_since = now;
        } else if (now - w->stuck_since >= limit) {
            end_locked(h, idx, SHMX_PEER_EXPELLED, 0, 0);
        }
    }
}

/* Hand the queued events to the listener, without the lock (they are copied out under it). */
static void report_events(shmx_host_t *h) {
    pthread_mutex_lock(&h->mu);
    uint32_t n = h->event_count;
    memcpy(h->reporting, h->events, n * sizeof *h->events);
    h->event_count = 0;
    shmx_peer_listener_fn fn = h->listener;
    void *arg = h->listener_arg;
    pthread_mutex_unlock(&h->mu);
    for (uint32_t i = 0; fn != NULL && i < n; i++) fn(arg, &h->reporting[i]);
}

void shmx_host_quarantine(shmx_host_t *h, shmx_channel_t *ch, int code) {
    pthread_mutex_lock(&h->mu);
    uint32_t idx = ch->index;
    if (ch->transport == SHMX_TRANSPORT_SHM && idx < h->config.max_channels && h->shm[idx] == ch &&
        !h->watch[idx].ended) {
        h->violations++;
        end_locked(h, idx, SHMX_PEER_VIOLATION, 0, code);
    }
    pthread_mutex_unlock(&h->mu);
}

/* A malformed request: dropped, with what is queued behind it (once), so that the guest's
 * later requests start on a message boundary again. The guest stays. */
static void drop_malformed(int sock, shmx_host_watch_t *w) {
    uint8_t junk[DRAIN_BYTES];
    w->partial_len = 0;
    (void)shmx_bootstrap_read_some(sock, junk, sizeof junk);
}

/* Read and serve up to REQUESTS_PER_WAKE grow requests of the guest behind @token. */
static void serve_locked(shmx_host_t *h, uint32_t idx) {
    int sock = h->shm[idx]->sock;
    shmx_host_watch_t *w = &h->watch[idx];
    for (uint32_t served = 0; served < REQUESTS_PER_WAKE;) {
        ssize_t n = shmx_bootstrap_read_some(sock, w->partial + w->partial_len, SHMX_GROW_BYTES - w->partial_len);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            hung_up_locked(h, idx); /* hung up or broken: nothing more will come */
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

/* One epoll event, under the lock. */
static void dispatch_locked(shmx_host_t *h, const struct epoll_event *e) {
    uint64_t token = e->data.u64;
    if (token & UDS_TAG) {
        uds_hung_up_locked(h, token);
        return;
    }
    if (token & DRAIN_TAG) {
        uint32_t idx = (uint32_t)token;
        /* Closing the socket in the reap takes it out of the set. */
        if (idx < h->config.max_channels && h->draining[idx] != NULL &&
            token_of(idx, h->epochs[idx]) == (token & ~DRAIN_TAG))
            (void)shmx_host_reap_locked(h, idx);
        return;
    }
    uint32_t idx = entry_of(h, token);
    if (idx == h->config.max_channels) return; /* gone or replaced since epoll reported it */
    if (token & CHILD_TAG) child_exited_locked(h, idx);
    else if (e->events & EPOLLIN) serve_locked(h, idx); /* a hang-up behind the requests reads as end of stream */
    else if (e->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) hung_up_locked(h, idx);
}

/* Milliseconds until the next liveness check, or -1 without one. */
static int tick_wait_ms(shmx_host_t *h, int64_t now) {
    if (h->config.liveness_ms == 0) return -1;
    if (now >= h->next_tick) {
        uint32_t tick = h->config.liveness_ms / 4u;
        tick = tick < 5u ? 5u : tick > 250u ? 250u : tick;
        h->next_tick = now + (int64_t)tick * 1000000;
        pthread_mutex_lock(&h->mu);
        check_liveness_locked(h, now);
        pthread_mutex_unlock(&h->mu);
    }
    return (int)((h->next_tick - now + 999999) / 1000000);
}

static void *service_main(void *arg) {
    shmx_host_t *h = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int timeout = tick_wait_ms(h, shmx_now_ns());
        report_events(h);
        int n = epoll_wait(h->epoll_fd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return NULL; /* the set itself is broken: growth then only happens in the host's own allocations */
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STOP_TOKEN) return NULL;
            if (evs[i].data.u64 == KICK_TOKEN) {
                uint64_t count;
                (void)!read(h->kick_fd, &count, sizeof count); /* nonblocking: the events are in the queue */
                continue;
            }
            pthread_mutex_lock(&h->mu);
            dispatch_locked(h, &evs[i]);
            pthread_mutex_unlock(&h->mu);
        }
        report_events(h);
    }
}

/* ---- start and stop --------------------------------------------------------------------- */

int shmx_host_service_start(shmx_host_t *h) {
    h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    h->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    h->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = h->epoll_fd < 0 || h->stop_fd < 0 || h->kick_fd < 0 ? -errno : 0;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TOKEN};
        if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->stop_fd, &ev) != 0) rc = -errno;
    }
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KICK_TOKEN};
        if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, h->kick_fd, &ev) != 0) rc = -errno;
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
    if (h->has_seg) {
        h->pool.hook_arg = h;
        h->pool.grow = grow_hook;
    }
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
    if (h->kick_fd >= 0) close(h->kick_fd);
    h->epoll_fd = -1;
    h->stop_fd = -1;
    h->kick_fd = -1;
}
