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
 * the lock is released. A spawned guest's exit status may lag behind its
 * socket's hang-up (both come from its exit): its event waits for the pidfd
 * up to EXIT_LAG_MS, in the epoll loop, never under the lock. Log messages
 * too leave only from the service thread, without the lock: a log handler
 * may call the host. The entry itself returns to the free list only when
 * the application frees the host's channel and the guest has hung up (host.c),
 * so a guest that was expelled but still runs never writes into the rings of
 * the next one; the next one gets a fresh epoch.
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
/* Tokens are (epoch, index) of an entry or (for UDS_TAG) of a uds peer; all but shm sockets' carry a tag bit. */
#define CHILD_TAG (1ull << 62)
#define UDS_TAG (1ull << 61)
#define DRAIN_TAG (1ull << 60)
#define TAGS (CHILD_TAG | UDS_TAG | DRAIN_TAG)
/* The epoch bits a token keeps: all 32 would reach the tags after 2^28 admissions of an entry. A
 * stale token matching a later epoch would need 2^28 admissions while its event is in flight. */
#define TOKEN_EPOCH_MASK 0x0fffffffu
_Static_assert(((uint64_t)TOKEN_EPOCH_MASK << 32 & TAGS) == 0, "a token's epoch must stay below the tags");
/* How long a spawned guest's exit status may lag behind its socket's hang-up (both come from its exit). */
#define EXIT_LAG_MS 50
/* end_locked's reason for a spawned guest that hung up but has not exited (yet): EXITED or DIED, decided later. */
#define UNDECIDED 0u
#define MAX_EVENTS 16
/* Requests read from one guest per wake-up: a flooding guest waits its turn, others do not. */
#define REQUESTS_PER_WAKE 8u
/* Bytes dropped after a malformed request (a bound, not a protocol figure). */
#define DRAIN_BYTES 256u

/* epoll data of an entry: its index and the epoch it was admitted with (a reused entry differs). */
static uint64_t token_of(uint32_t idx, uint32_t epoch) { return (uint64_t)(epoch & TOKEN_EPOCH_MASK) << 32 | idx; }

/* The index a (tagged) token names if its epoch in @epochs (entries' or uds') is unchanged; else max_channels. */
static uint32_t index_of(const shmx_host_t *h, const uint32_t *epochs, uint64_t token) {
    uint32_t idx = (uint32_t)token;
    if (idx >= h->config.max_channels || token_of(idx, epochs[idx]) != (token & ~TAGS)) return h->config.max_channels;
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

static void unwatch_socket_locked(shmx_host_t *h, uint32_t idx, int sock) {
    shmx_host_watch_t *w = &h->watch[idx];
    if (w->watched) (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, sock, NULL); /* fails only if already gone */
    w->watched = 0;
}

static void forget_child_locked(shmx_host_t *h, uint32_t idx);

void shmx_host_service_forget_locked(shmx_host_t *h, uint32_t idx, int sock) {
    unwatch_socket_locked(h, idx, sock);
    forget_child_locked(h, idx);
}

void shmx_host_service_watch_draining_locked(shmx_host_t *h, uint32_t idx, int sock) {
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = DRAIN_TAG | token_of(idx, h->epochs[idx])};
    /* Without it the entry is still reaped, later: when an admission looks for a free one. */
    (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, sock, &ev);
}

int shmx_host_service_watch_uds_locked(shmx_host_t *h, shmx_channel_t *ch) {
    /* Hang-ups only: the frames are the channel's to read (EPOLLHUP and EPOLLERR always come). */
    struct epoll_event ev = {.events = EPOLLRDHUP,
                             .data.u64 = UDS_TAG | token_of(ch->index - h->config.max_channels, ch->epoch)};
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
 * How a spawned child ended, without waiting: SHMX_PEER_EXITED with its wait
 * status in *@status, left for the application's own wait to collect
 * (WNOWAIT); else SHMX_PEER_DIED and 0: it has not exited, or the application
 * reaped it first and the status is gone (a made-up 0 would read as a clean exit).
 */
static uint32_t child_reason(int pidfd, int *status) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    *status = 0;
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
        return SHMX_PEER_DIED;
    if (si.si_code == CLD_EXITED) *status = (si.si_status & 0xff) << 8;
    else *status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0); /* as waitpid reports a signal */
    return SHMX_PEER_EXITED;
}

/* Wake the service thread to report what was queued (an application thread may have queued it). */
static void kick(shmx_host_t *h) {
    uint64_t one = 1;
    ssize_t w;
    do {
        w = write(h->kick_fd, &one, sizeof one);
    } while (w < 0 && errno == EINTR); /* EAGAIN: the counter is already nonzero, a wake is pending anyway */
}

/* Queue an event for the listener: the service thread reports it without the lock. A queue that a slow
 * listener let fill up loses the event, and the loss is counted and logged. */
static void report_locked(shmx_host_t *h, const shmx_peer_event_t *ev) {
    if (h->event_count < 2u * h->config.max_channels) h->events[h->event_count++] = *ev;
    else h->events_lost++;
    kick(h);
}

void shmx_host_service_slots_back_locked(shmx_host_t *h, uint32_t count) {
    h->slots_back += count;
    kick(h);
}

/* Stop watching entry @idx's child; an end held for its exit status is reported now, with what is known. */
static void forget_child_locked(shmx_host_t *h, uint32_t idx) {
    shmx_host_watch_t *w = &h->watch[idx];
    if (w->pidfd < 0) return;
    if (w->held_until != 0) {
        w->held.reason = child_reason(w->pidfd, &w->held.exit_status);
        w->held_until = 0;
        report_locked(h, &w->held);
    }
    (void)epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, w->pidfd, NULL);
    close(w->pidfd);
    w->pidfd = -1;
}

/*
 * Entry @idx's guest ended for @reason: take back all it had, wake the host's
 * side, report (UNDECIDED: hold the report until its child's exit status
 * comes or EXIT_LAG_MS pass; service thread only). An expelled or quarantined
 * guest may still run: its entry is marked so that both sides stop, and only
 * our half of its socket shuts.
 */
static void end_locked(shmx_host_t *h, uint32_t idx, uint32_t reason, int status, int violation) {
    shmx_channel_t *ch = h->shm[idx];
    shmx_host_watch_t *w = &h->watch[idx];
    w->ended = 1;
    unwatch_socket_locked(h, idx, ch->sock);
    if (reason == SHMX_PEER_EXPELLED || reason == SHMX_PEER_VIOLATION) {
        /* The host's side delivers nothing more of it: its own record, never read back from the entry.
         * Relaxed: a one-way flag (channel_shm.h). */
        __atomic_store_n(&ch->peer_end, -SHMX_ECLOSED, __ATOMIC_RELAXED);
        /* Release: the guest's next call reads it (channel_shm.h) and learns why. */
        atomic_store_explicit(&shmx_segment_channel(&h->seg, idx)->state, SHMX_CHANNEL_EXPELLED,
                              memory_order_release);
        /* Our half only: the entry stays withheld until the guest hangs up too (host.c reap). */
        shutdown(ch->sock, SHUT_WR);
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
    if (reason == UNDECIDED) {
        /* The pidfd stays watched: its event, or the lag running out (settle_due_locked), reports. */
        w->held = ev;
        w->held_until = ev.noticed_ns + EXIT_LAG_MS * 1000000LL;
        if (w->held_until < h->next_settle) h->next_settle = w->held_until;
        return;
    }
    forget_child_locked(h, idx);
    report_locked(h, &ev);
}

/* Entry @idx's socket hung up: a close if the guest said bye, an exit if its process ended, else a death. */
static void hung_up_locked(shmx_host_t *h, uint32_t idx) {
    /* Relaxed: a hint the guest wrote before hanging up; a lie only changes the reason. */
    uint32_t bye = atomic_load_explicit(&shmx_segment_channel(&h->seg, idx)->bye, memory_order_relaxed);
    int status = 0;
    uint32_t reason = SHMX_PEER_DIED;
    if (bye) {
        reason = SHMX_PEER_CLOSED;
    } else if (h->watch[idx].pidfd >= 0) {
        reason = child_reason(h->watch[idx].pidfd, &status);
        if (reason == SHMX_PEER_DIED) reason = UNDECIDED; /* not exited yet, or its status is still on the way */
    }
    end_locked(h, idx, reason, status, 0);
}

/* Entry @idx's child exited: the guest ends, or the end held for this is reported. */
static void child_exited_locked(shmx_host_t *h, uint32_t idx) {
    if (h->watch[idx].ended) {
        forget_child_locked(h, idx);
        return;
    }
    int status;
    uint32_t reason = child_reason(h->watch[idx].pidfd, &status);
    end_locked(h, idx, reason, status, 0);
}

/* Report the held ends whose lag ran out (children that live on: deaths). Returns the next held_until or INT64_MAX. */
static int64_t settle_due_locked(shmx_host_t *h, int64_t now) {
    int64_t next = INT64_MAX;
    for (uint32_t idx = 0; idx < h->config.max_channels; idx++) {
        int64_t until = h->watch[idx].held_until;
        if (until != 0 && until <= now) forget_child_locked(h, idx);
        else if (until != 0 && until < next) next = until;
    }
    return next;
}

/* A uds guest's socket reported a hang-up (or a stale event for a channel since freed). */
static void uds_hung_up_locked(shmx_host_t *h, uint64_t token) {
    uint32_t k = index_of(h, h->uds_epochs, token);
    shmx_channel_t *ch = k < h->config.max_channels ? h->uds[k] : NULL;
    if (ch == NULL || !shmx_sock_hung_up(ch->sock)) return;
    shmx_host_service_forget_uds_locked(h, ch);
    /* Our own close shuts the socket down too: that is no news about the guest. */
    if (__atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE)) return;
    shmx_peer_event_t ev = {.peer = ch->index,
                            .epoch = ch->epoch,
                            .reason = SHMX_PEER_DIED,
                            .pid = ch->peer_pid,
                            .noticed_ns = shmx_now_ns()};
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

/* The warning an event carries, if any (logged without the lock: a log handler may call the host). */
static void log_event(const shmx_host_t *h, const shmx_peer_event_t *ev) {
    if (ev->reason == SHMX_PEER_EXPELLED)
        shmx_log(SHMX_LOG_WARN, "host: guest %u (pid %d) expelled: its messages waited unconsumed for %u ms",
                 ev->peer, (int)ev->pid, h->config.liveness_ms);
    else if (ev->reason == SHMX_PEER_VIOLATION)
        shmx_log(SHMX_LOG_WARN, "host: guest %u (pid %d) quarantined for a protocol violation: %s", ev->peer,
                 (int)ev->pid, shmx_strerror(ev->violation));
}

/*
 * Log what was queued and hand the queued events to the listener (unless
 * @logs_only), without the lock: they are copied out under it.
 */
static void report_events(shmx_host_t *h, int logs_only) {
    pthread_mutex_lock(&h->mu);
    uint32_t n = h->event_count;
    memcpy(h->reporting, h->events, n * sizeof *h->events);
    h->event_count = 0;
    uint32_t back = h->slots_back;
    h->slots_back = 0;
    uint64_t lost = h->events_lost;
    h->events_lost = 0;
    shmx_peer_listener_fn fn = logs_only ? NULL : h->listener;
    void *arg = h->listener_arg;
    pthread_mutex_unlock(&h->mu);
    if (back != 0)
        shmx_log(SHMX_LOG_INFO, "host: %u pool slots lost by guests that died inside a pool operation are back", back);
    if (lost != 0)
        shmx_log(SHMX_LOG_WARN,
                 "host: %llu guest ends were not reported: they came while the peer listener was still busy and "
                 "the queue of %u was full",
                 (unsigned long long)lost, 2u * h->config.max_channels);
    for (uint32_t i = 0; i < n; i++) {
        log_event(h, &h->reporting[i]);
        if (fn != NULL) fn(arg, &h->reporting[i]);
    }
}

void shmx_host_quarantine(shmx_host_t *h, shmx_channel_t *ch, int code) {
    pthread_mutex_lock(&h->mu);
    uint32_t idx = ch->index;
    if (ch->transport == SHMX_TRANSPORT_SHM && idx < h->config.max_channels && h->shm[idx] == ch &&
        !h->watch[idx].ended) {
        h->violations++;
        shmx_readmit_strike(&h->readmit, ch->peer_pid, shmx_now_ns());
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
    uint32_t idx = index_of(h, h->epochs, token);
    if (idx == h->config.max_channels) return; /* replaced since epoll reported it */
    if (token & DRAIN_TAG) {
        /* Closing the socket in the reap takes it out of the set. */
        if (h->draining[idx] != NULL) (void)shmx_host_reap_locked(h, idx);
        return;
    }
    if (h->shm[idx] == NULL) return; /* freed since */
    if (token & CHILD_TAG) {
        child_exited_locked(h, idx);
    } else if (!h->watch[idx].ended) { /* else a stale event: an ended guest's socket is out of the set */
        if (e->events & EPOLLIN) serve_locked(h, idx); /* a hang-up behind the requests reads as end of stream */
        else if (e->events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) hung_up_locked(h, idx);
    }
}

/* Run the timers that are due (liveness check, held ends); milliseconds until the next one, or -1. */
static int run_timers(shmx_host_t *h, int64_t now) {
    if (h->config.liveness_ms != 0 && now >= h->next_tick) {
        uint32_t tick = h->config.liveness_ms / 4u;
        tick = tick < 5u ? 5u : tick > 250u ? 250u : tick;
        h->next_tick = now + (int64_t)tick * 1000000;
        pthread_mutex_lock(&h->mu);
        check_liveness_locked(h, now);
        pthread_mutex_unlock(&h->mu);
    }
    if (now >= h->next_settle) {
        pthread_mutex_lock(&h->mu);
        h->next_settle = settle_due_locked(h, now);
        pthread_mutex_unlock(&h->mu);
    }
    int64_t next = h->next_settle;
    if (h->config.liveness_ms != 0 && h->next_tick < next) next = h->next_tick;
    return next == INT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
}

/*
 * Log what the host's view of the pool met on lists and references a peer
 * scribbled on or forged (pool.c counts them; it never logs: its calls run
 * under the lock and on hot paths). At most once per FAULTS_LOG_MS, when the
 * thread wakes anyway (the liveness tick, an event): never an extra wake-up,
 * and a peer that scribbles in a loop costs one line per interval.
 */
#define FAULTS_LOG_MS 1000
static void log_pool_faults(shmx_host_t *h, int64_t now) {
    if (!h->has_seg || now < h->next_faults_check) return;
    h->next_faults_check = now + (int64_t)FAULTS_LOG_MS * 1000000;
    shmx_pool_faults_t f, *was = &h->faults_logged;
    shmx_pool_faults(&h->pool, &f);
    if (f.lists_cut == was->lists_cut && f.slots_skipped == was->slots_skipped && f.refs_refused == was->refs_refused)
        return;
    shmx_log(SHMX_LOG_WARN,
             "host: a peer wrote into the shared pool: %llu free lists cut (their slots come back when every guest "
             "is gone), %llu listed slots that were not free skipped, %llu forged slot references refused (so far)",
             (unsigned long long)f.lists_cut, (unsigned long long)f.slots_skipped, (unsigned long long)f.refs_refused);
    *was = f;
}

static void *service_main(void *arg) {
    shmx_host_t *h = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int64_t now = shmx_now_ns();
        int timeout = run_timers(h, now);
        report_events(h, 0);
        log_pool_faults(h, now);
        int n = epoll_wait(h->epoll_fd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return NULL; /* the set itself is broken: growth then only happens in the host's own allocations */
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == STOP_TOKEN) {
                /* Ends held for a child's exit status are reported now, with what is known, on this
                 * thread like every report: the host is going, and nothing would report them later. */
                pthread_mutex_lock(&h->mu);
                (void)settle_due_locked(h, INT64_MAX);
                pthread_mutex_unlock(&h->mu);
                report_events(h, 0);
                return NULL;
            }
            if (evs[i].data.u64 == KICK_TOKEN) {
                uint64_t count;
                (void)!read(h->kick_fd, &count, sizeof count); /* nonblocking: the events are in the queue */
                continue;
            }
            pthread_mutex_lock(&h->mu);
            dispatch_locked(h, &evs[i]);
            pthread_mutex_unlock(&h->mu);
        }
        report_events(h, 0);
    }
}

/* ---- start and stop --------------------------------------------------------------------- */

int shmx_host_service_start(shmx_host_t *h) {
    h->next_settle = INT64_MAX;
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
        report_events(h, 1); /* what it had no time to log; the listener is called on its thread only */
    }
    if (h->epoll_fd >= 0) close(h->epoll_fd);
    if (h->stop_fd >= 0) close(h->stop_fd);
    if (h->kick_fd >= 0) close(h->kick_fd);
    h->epoll_fd = -1;
    h->stop_fd = -1;
    h->kick_fd = -1;
}
