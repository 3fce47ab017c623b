/*
 * The host: owns the segment, listens under a name, admits guests and hands
 * out channel entries; takes everything back when a guest leaves or dies.
 *
 * The host's truth is private: which entry belongs to which channel, and each
 * entry's epoch, live in this struct; the shared state and epoch words are
 * only announcements to guests. A guest that misbehaves, hangs up or dies
 * costs its own channel and nothing else: refusals close only its socket, and
 * shmx_host_forget_channel reclaims every slot it held or sent.
 *
 * The service thread and the pool's growth live in host_service.c; the
 * struct both work on is in host_internal.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap.h"
#include "channel_internal.h"
#include "doorbell.h"
#include "host_internal.h"
#include "log.h"
#include "shmx/errors.h"
#include "shmx/frame.h"
#include "shmx/peer.h"

/* How long a connected guest may take to say hello before it is dropped (and the accept returns
 * -SHMX_EPROTO). Generous: on a loaded machine the suite saw a guest's hello arrive more than a
 * second after its connection, and a silent guest only costs this one accept. */
#define HELLO_TIMEOUT_NS 5000000000LL

/* ------------------------------------------------------------------------ */
/* create */

/* A segment that failed for want of memory or descriptors (not a bad configuration): fall back to uds. */
static int segment_unavailable(int rc) { return rc != -SHMX_ECONFIG && rc != -SHMX_EINVAL; }

static int remember_socket(shmx_host_t *h) {
    struct stat st;
    if (lstat(h->path, &st) != 0) return -errno;
    h->sock_dev = st.st_dev;
    h->sock_ino = st.st_ino;
    return 0;
}

int shmx_host_create(const char *name, const shmx_config_t *cfg, shmx_host_t **out) {
    if (!out) return -SHMX_EINVAL;
    *out = NULL;
    int rc = shmx_name_check(name);
    if (rc < 0) return rc;
    shmx_config_t c;
    if (cfg) c = *cfg;
    else shmx_config_default(&c);
    if (shmx_config_validate(&c) != 0) return -SHMX_ECONFIG;

    shmx_host_t *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    h->listen_fd = -1;
    h->epoll_fd = -1;
    h->stop_fd = -1;
    h->kick_fd = -1;
    h->config = c;
    shmx_readmit_init(&h->readmit, getpid());
    h->shm = calloc(c.max_channels, sizeof *h->shm);
    h->draining = calloc(c.max_channels, sizeof *h->draining);
    h->epochs = calloc(c.max_channels, sizeof *h->epochs);
    h->uds = calloc(c.max_channels, sizeof *h->uds);
    h->uds_epochs = calloc(c.max_channels, sizeof *h->uds_epochs);
    h->watch = calloc(c.max_channels, sizeof *h->watch);
    h->events = calloc(2u * c.max_channels, sizeof *h->events);
    h->reporting = calloc(2u * c.max_channels, sizeof *h->reporting);
    if (!h->shm || !h->draining || !h->epochs || !h->uds || !h->uds_epochs || !h->watch || !h->events ||
        !h->reporting) {
        rc = -ENOMEM;
        goto fail_alloc;
    }
    char dir[sizeof h->path];
    rc = shmx_socket_dir(dir, sizeof dir, 1); /* created and checked before anything is made */
    if (rc < 0) goto fail_alloc;
    rc = shmx_socket_path(name, h->path, sizeof h->path);
    if (rc < 0) goto fail_alloc;

    for (uint32_t i = 0; i < c.max_channels; i++) h->watch[i].pidfd = -1;
    /* Take the name before anything is made under it: a live host keeps it, a dead one's leftovers go. */
    rc = shmx_names_claim(name, &h->names);
    if (rc < 0) goto fail_alloc;
    h->transports = c.transports;
    rc = (c.transports & SHMX_TRANSPORT_SHM) ? shmx_segment_create(&c, name, &h->seg) : 0;
    if (rc < 0 && (c.transports & SHMX_TRANSPORT_UDS) && segment_unavailable(rc)) {
        /* Hybrid fallback: without shared memory, guests are served over the socket alone. */
        shmx_log(SHMX_LOG_WARN, "host '%s': no shared-memory segment (%s); serving guests over the Unix socket only",
                 name, shmx_strerror(rc));
        h->transports = SHMX_TRANSPORT_UDS;
        rc = 0;
    } else if (rc < 0) {
        goto fail_names;
    } else if (c.transports & SHMX_TRANSPORT_SHM) {
        h->has_seg = 1;
        shmx_pool_init(&h->pool, h->seg.base, &h->seg.layout, &h->seg.config, 0); /* create formatted it */
        h->pool_slot_bytes = shmx_pool_slot_bytes(&c);
    }
    if (h->has_seg) {
        rc = shmx_pool_ledger_enable(&h->pool); /* the host's own truth about slots (DESIGN 3.5) */
        if (rc < 0) goto fail_seg;
    }
    /* At once: in named mode this also guards the segment file against clean and other claims. */
    shmx_names_info_t info = {.segment_mode = h->has_seg ? h->seg.mode : SHMX_SEGMENT_MEMFD, /* no file to guard */
                              .segment_path = h->has_seg ? h->seg.path : "",
                              .socket_path = h->path};
    rc = shmx_names_record(&h->names, &info);
    if (rc < 0) goto fail_seg;
    rc = pthread_mutex_init(&h->mu, NULL);
    if (rc != 0) {
        rc = -rc;
        goto fail_seg;
    }
    rc = shmx_host_service_start(h);
    if (rc < 0) goto fail_mutex;
    /* Listen last: a guest that connects finds everything ready. */
    rc = shmx_bootstrap_listen(h->path);
    if (rc < 0) goto fail_service;
    h->listen_fd = rc;
    rc = remember_socket(h);
    if (rc < 0) {
        unlink(h->path);
        close(h->listen_fd);
        goto fail_service;
    }
    *out = h;
    return 0;

fail_service:
    shmx_host_service_stop(h);
fail_mutex:
    pthread_mutex_destroy(&h->mu);
fail_seg:
    shmx_pool_fini(&h->pool); /* a zeroed pool without a segment too */
    if (h->has_seg) shmx_segment_close(&h->seg);
fail_names:
    shmx_names_release(&h->names);
fail_alloc:
    free(h->events);
    free(h->reporting);
    free(h->shm);
    free(h->draining);
    free(h->epochs);
    free(h->uds);
    free(h->uds_epochs);
    free(h->watch);
    free(h);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* accept */

/* Poll the listening socket once, then until @deadline_ns. 0, -ETIMEDOUT or -errno. */
static int wait_listen(int fd, int64_t deadline_ns) {
    for (;;) {
        int ms;
        int64_t left = deadline_ns - shmx_now_ns();
        if (deadline_ns == INT64_MAX) ms = -1;
        else if (left <= 0) ms = 0;
        else ms = left / 1000000 >= 0x7fffffff ? 0x7fffffff : (int)((left + 999999) / 1000000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, ms);
        if (n > 0) return 0;
        if (n == 0 || (errno == EINTR && ms == 0)) return -ETIMEDOUT;
        if (errno != EINTR) return -errno;
    }
}

/* Tell the guest why (best effort: it may be gone already) and hang up. */
static int refuse(int sock, uint16_t transport, int status) {
    shmx_welcome_t w = {.transport = transport, .status = status};
    (void)shmx_bootstrap_send_welcome(sock, &w, -1);
    close(sock);
    return status;
}

static int uid_allowed(const shmx_host_t *h, uid_t uid) {
    return uid == geteuid() || (h->config.allowed_uid != UINT32_MAX && uid == (uid_t)h->config.allowed_uid);
}

static void forget_locked(shmx_host_t *h, shmx_channel_t *ch);

/* The epoch after *@last, stored there: 0 never names a live guest. */
static uint32_t next_epoch(uint32_t *last) {
    uint32_t epoch = *last + 1u;
    if (epoch == 0) epoch = 1;
    *last = epoch;
    return epoch;
}

/* A free entry (reaping those whose old guest has hung up meanwhile), or max_channels. */
static uint32_t free_entry_locked(shmx_host_t *h) {
    uint32_t idx = 0;
    while (idx < h->config.max_channels && (h->shm[idx] != NULL || (h->draining[idx] && !shmx_host_reap_locked(h, idx))))
        idx++;
    return idx;
}

static int admit_shm(shmx_host_t *h, int sock, pid_t pid, shmx_channel_t **out) {
    pthread_mutex_lock(&h->mu);
    uint32_t idx = free_entry_locked(h);
    if (idx == h->config.max_channels) {
        pthread_mutex_unlock(&h->mu);
        return refuse(sock, SHMX_TRANSPORT_SHM, -SHMX_EFULL);
    }
    shmx_channel_ctl_t *ctl = shmx_segment_channel(&h->seg, idx);
    /* A guest before may have scribbled on the shared header: the newcomer validates it. */
    shmx_segment_restore_header(&h->seg);
    shmx_segment_reset_rings(&h->seg, idx);
    atomic_store_explicit(&ctl->bye, 0, memory_order_relaxed); /* published with the state below */
    uint32_t epoch = next_epoch(&h->epochs[idx]);
    /* Relaxed: published by the release store of the state just below. */
    atomic_store_explicit(&ctl->epoch, epoch, memory_order_relaxed);
    /* Release: the formatted rings and the epoch are visible to a guest whose
     * acquire load (guest.c) sees ACTIVE. */
    atomic_store_explicit(&ctl->state, SHMX_CHANNEL_ACTIVE, memory_order_release);

    shmx_channel_t *ch = NULL;
    int rc = shmx_channel_open_shm(&h->seg, &h->pool, idx, 1, epoch, sock, &ch);
    if (rc < 0) {
        /* Release: pairs with the guest's acquire load of the state. */
        atomic_store_explicit(&ctl->state, SHMX_CHANNEL_FREE, memory_order_release);
        pthread_mutex_unlock(&h->mu);
        return refuse(sock, SHMX_TRANSPORT_SHM, rc); /* a failed open leaves the socket with us */
    }
    ch->host = h;
    ch->peer_pid = pid;
    h->shm[idx] = ch;

    /* Still under the lock: no extent can be announced between the welcome and the
     * announcements of the extents that exist (a guest reads the welcome first). */
    shmx_welcome_t w = {.transport = SHMX_TRANSPORT_SHM,
                        .status = 0,
                        .channel_index = idx,
                        .epoch = epoch,
                        .max_payload = h->config.max_payload,
                        .segment_bytes = h->seg.size,
                        .max_message = h->config.max_message};
    rc = shmx_bootstrap_send_welcome(ch->sock, &w, h->seg.fd);
    if (rc == 0) rc = shmx_channel_bells_send(ch); /* the doorbells: after the welcome, before the extents */
    if (rc == 0) rc = shmx_host_service_admit_locked(h, idx, ch->sock);
    if (rc < 0) forget_locked(h, ch); /* the guest left before it was welcomed */
    pthread_mutex_unlock(&h->mu);
    if (rc < 0) return rc;
    *out = ch;
    return 0;
}

static int admit_uds(shmx_host_t *h, int sock, pid_t pid, shmx_channel_t **out) {
    pthread_mutex_lock(&h->mu);
    /* uds channels are capped like entries: each costs two payload-sized buffers. */
    if (h->uds_count == h->config.max_channels) {
        pthread_mutex_unlock(&h->mu);
        return refuse(sock, SHMX_TRANSPORT_UDS, -SHMX_EFULL);
    }
    shmx_channel_t *ch = NULL;
    int rc = shmx_channel_open_uds(sock, 1, h->config.max_payload, &ch);
    if (rc < 0) {
        pthread_mutex_unlock(&h->mu);
        return refuse(sock, SHMX_TRANSPORT_UDS, rc);
    }
    uint32_t k = 0;
    while (h->uds[k] != NULL) k++; /* one is free: fewer than max_channels are used */
    ch->host = h;
    ch->peer_pid = pid;
    ch->max_message = h->config.max_message;
    ch->index = h->config.max_channels + k;
    ch->epoch = next_epoch(&h->uds_epochs[k]);
    h->uds[k] = ch;
    h->uds_count++;
    /* Best effort: without it the application still meets the hang-up in its own calls. */
    (void)shmx_host_service_watch_uds_locked(h, ch);
    pthread_mutex_unlock(&h->mu);

    shmx_welcome_t w = {.transport = SHMX_TRANSPORT_UDS,
                        .status = 0,
                        .max_payload = h->config.max_payload,
                        .max_message = h->config.max_message};
    rc = shmx_bootstrap_send_welcome(ch->sock, &w, -1);
    if (rc < 0) {
        shmx_host_forget_channel(h, ch);
        return rc;
    }
    *out = ch;
    return 0;
}

/*
 * The transport to give a guest that asked for @t: itself if offered; for
 * AUTO shared memory while the host has it and a free entry, else the socket.
 * 0 if none fits.
 */
static uint32_t choose_transport(shmx_host_t *h, uint32_t t) {
    if (t == SHMX_TRANSPORT_SHM || t == SHMX_TRANSPORT_UDS) return (h->transports & t) ? t : 0;
    if (t != SHMX_TRANSPORT_AUTO) return 0;
    if (h->transports & SHMX_TRANSPORT_SHM) {
        pthread_mutex_lock(&h->mu);
        int full = free_entry_locked(h) == h->config.max_channels;
        pthread_mutex_unlock(&h->mu);
        if (!full || (h->transports & SHMX_TRANSPORT_UDS) == 0) return SHMX_TRANSPORT_SHM; /* full: refused there */
        shmx_log(SHMX_LOG_WARN, "host: every shared-memory channel is taken; a guest gets the Unix socket (hybrid fallback)");
    }
    return (h->transports & SHMX_TRANSPORT_UDS) ? SHMX_TRANSPORT_UDS : 0;
}

/* Give a checked connection of process @pid that asked for @t its channel. Owns @sock. */
static int admit_checked(shmx_host_t *h, int sock, uint32_t t, pid_t pid, shmx_channel_t **out) {
    uint32_t give = choose_transport(h, t);
    if (give == 0) return refuse(sock, (uint16_t)t, -SHMX_ETRANSPORT);
    return give == SHMX_TRANSPORT_SHM ? admit_shm(h, sock, pid, out) : admit_uds(h, sock, pid, out);
}

int shmx_host_admit_socket(shmx_host_t *h, int sock, uint32_t transport, shmx_channel_t **out) {
    if (!h || sock < 0 || !out) return -SHMX_EINVAL;
    *out = NULL;
    return admit_checked(h, sock, transport, 0, out);
}

/* Check one accepted connection of @uid and @pid and give it a channel. Owns @sock. */
static int admit(shmx_host_t *h, int sock, uid_t uid, pid_t pid, shmx_channel_t **out) {
    if (!uid_allowed(h, uid)) return refuse(sock, 0, -SHMX_EPEERCRED);

    /* Bounded on its own, whatever the accept timeout: a silent guest costs at most this. */
    shmx_hello_t hello;
    int rc = shmx_bootstrap_recv_hello(sock, shmx_deadline(HELLO_TIMEOUT_NS), &hello);
    if (rc < 0) return refuse(sock, 0, -SHMX_EPROTO);
    return admit_checked(h, sock, hello.transport, pid, out);
}

/* A connection held back (readmit.h) whose wait is over, or -1; *@next: when the next one is due. */
static int take_held(shmx_host_t *h, int64_t *next) {
    pthread_mutex_lock(&h->mu);
    int sock = shmx_readmit_take_due(&h->readmit, shmx_now_ns(), next);
    pthread_mutex_unlock(&h->mu);
    return sock;
}

/* 1 if the table kept @sock of @pid to admit later (a connection of that process it kept before is refused). */
static int hold(shmx_host_t *h, pid_t pid, int sock) {
    int replaced;
    pthread_mutex_lock(&h->mu);
    int held = shmx_readmit_hold(&h->readmit, pid, sock, shmx_now_ns(), &replaced);
    pthread_mutex_unlock(&h->mu);
    if (replaced >= 0) (void)refuse(replaced, 0, -SHMX_EBACKOFF);
    return held;
}

/* The peer hung up or broke the connection already (a held guest that gave up waiting). */
static int hung_up(int sock) {
    struct pollfd p = {.fd = sock, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int shmx_host_accept(shmx_host_t *h, int64_t timeout_ns, shmx_channel_t **out) {
    if (!h || !out) return -SHMX_EINVAL;
    *out = NULL;
    int64_t deadline = shmx_deadline(timeout_ns);
    for (;;) {
        uid_t uid;
        pid_t pid;
        int64_t next_held;
        int sock = take_held(h, &next_held);
        if (sock >= 0) {
            if (hung_up(sock) || shmx_bootstrap_peer_cred(sock, &uid, &pid) < 0) {
                close(sock);
                if (shmx_now_ns() >= deadline) return -ETIMEDOUT;
                continue;
            }
            return admit(h, sock, uid, pid, out);
        }
        int64_t until = next_held < deadline ? next_held : deadline;
        int rc = wait_listen(h->listen_fd, until);
        if (rc == -ETIMEDOUT && until < deadline) continue; /* a held connection is due */
        if (rc < 0) return rc;
        sock = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (sock < 0) {
            /* Gone again before we took it (aborted, or taken by another accept): wait on. */
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) return -errno;
            continue;
        }
        rc = shmx_bootstrap_peer_cred(sock, &uid, &pid);
        if (rc < 0) {
            close(sock);
            return rc;
        }
        /* A process quarantined lately waits its turn, unanswered; the others' connections go on.
         * The deadline holds however many connections such a process makes meanwhile. */
        if (hold(h, pid, sock)) {
            if (shmx_now_ns() >= deadline) return -ETIMEDOUT;
            continue;
        }
        return admit(h, sock, uid, pid, out);
    }
}

/* ------------------------------------------------------------------------ */
/* forget and destroy */

/*
 * Free the slots of the records the host never received from the
 * guest-to-host ring (those it received and still held, shmx_channel_free
 * has already given back). Bounded by the ring size: every record takes at
 * least 8 bytes.
 */
static void drain_guest_ring(shmx_host_t *h, shmx_channel_t *ch) {
    shmx_ring_t *r = &ch->rx;
    uint32_t bound = r->capacity / 8u + 1u;
    for (uint32_t i = 0; i < bound; i++) {
        shmx_ring_record_t rec;
        if (shmx_ring_peek(r, &rec) != 0) break; /* empty, closed and empty, or corrupt: stop */
        if (rec.kind == SHMX_RECORD_SLOT && rec.body_len >= SHMX_FRAME_HEADER_SIZE + sizeof(shmx_slot_ref_t)) {
            shmx_slot_ref_t ref;
            memcpy(&ref, rec.body + SHMX_FRAME_HEADER_SIZE, sizeof ref); /* read once: the guest may scribble */
            void *data;
            uint32_t size;
            /* Only a slot really sent to the host (the ledger refuses one it holds elsewhere). */
            if (shmx_pool_take(&h->pool, &ref, SHMX_OWNER_HOST, &data, &size) == 0)
                (void)shmx_pool_free(&h->pool, &ref, SHMX_OWNER_HOST);
        }
        if (shmx_ring_release(r, rec.end) != 0) break;
    }
}

/*
 * Once no shm guest is left (every entry free, nobody draining), nothing but
 * this host touches the pool: rebuild its lists, which brings back any slot a
 * guest killed in the middle of a list operation left off every list.
 */
static void rebuild_if_alone_locked(shmx_host_t *h) {
    for (uint32_t i = 0; i < h->config.max_channels; i++)
        if (h->shm[i] != NULL || h->draining[i] != NULL) return;
    /* With no channel left the host holds nothing: a slot still "sent to the host" is one a
     * guest died with between handing it over and publishing its record. */
    uint32_t back = shmx_pool_reclaim_owner(&h->pool, SHMX_OWNER_HOST);
    back += shmx_pool_rebuild(&h->pool);
    if (back != 0) shmx_host_service_slots_back_locked(h, back);
}

/*
 * Give entry @idx back if its old guest has hung up: drain what it left,
 * reclaim every slot it held, mark the entry FREE. Until then the entry is
 * not reused, so a guest that is still running can never write into the rings
 * or slots of the next one. Returns 1 once the entry is free.
 */
int shmx_host_reap_locked(shmx_host_t *h, uint32_t idx) {
    shmx_channel_t *ch = h->draining[idx];
    struct pollfd p = {.fd = ch->sock, .events = POLLRDHUP, .revents = 0};
    /* Only a hang-up counts: bytes a guest writes to its socket (POLLIN) do not free the entry. */
    if (ch->sock >= 0 && (poll(&p, 1, 0) <= 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0))
        return 0;
    drain_guest_ring(h, ch);
    shmx_channel_destroy(ch);
    (void)shmx_pool_reclaim_owner(&h->pool, idx);
    /* Release: pairs with the acquire load of the state by a connecting guest. */
    atomic_store_explicit(&shmx_segment_channel(&h->seg, idx)->state, SHMX_CHANNEL_FREE, memory_order_release);
    h->draining[idx] = NULL;
    rebuild_if_alone_locked(h);
    return 1;
}

static void forget_locked(shmx_host_t *h, shmx_channel_t *ch) {
    if (ch->transport == SHMX_TRANSPORT_SHM) {
        uint32_t idx = ch->index;
        if (idx < h->config.max_channels && h->shm[idx] == ch) {
            shmx_ring_close(shmx_segment_ring_ctl(&h->seg, idx, SHMX_RING_HOST_TO_GUEST));
            shmx_ring_close(shmx_segment_ring_ctl(&h->seg, idx, SHMX_RING_GUEST_TO_HOST));
            shmx_host_service_forget_locked(h, idx, ch->sock); /* before the socket can close */
            /* Hang up our half: a guest still running reads end-of-stream and learns it now;
             * the entry is reaped once it hangs up too (at once if it already has). */
            if (ch->sock >= 0) shutdown(ch->sock, SHUT_WR);
            h->shm[idx] = NULL;
            h->draining[idx] = ch;
            /* Not hung up yet: the service thread reaps the entry when it does. */
            if (!shmx_host_reap_locked(h, idx)) shmx_host_service_watch_draining_locked(h, idx, ch->sock);
            return;
        }
    } else {
        shmx_host_service_forget_uds_locked(h, ch);
        uint32_t k = ch->index - h->config.max_channels;
        if (k < h->config.max_channels && h->uds[k] == ch) {
            h->uds[k] = NULL;
            h->uds_count--;
        }
    }
    shmx_channel_destroy(ch);
}

void shmx_host_forget_channel(struct shmx_host *h, shmx_channel_t *ch) {
    if (!ch) return;
    if (!h) {
        shmx_channel_destroy(ch);
        return;
    }
    pthread_mutex_lock(&h->mu);
    forget_locked(h, ch);
    pthread_mutex_unlock(&h->mu);
}

/*
 * Guests of a destroyed host are hung up, not closed: they see the same
 * -SHMX_EHOSTGONE as when a host dies (a closed ring would read as a channel
 * the host merely closed). Their channel waits look at the socket between
 * slices, so every one of them notices. Nothing needs reclaiming: the
 * segment goes with the host.
 */
void shmx_host_destroy(shmx_host_t *h) {
    if (!h) return;
    /* Stop admitting and serving first, then let every guest go. */
    close(h->listen_fd);
    shmx_host_service_stop(h);
    struct stat st;
    /* Unlink only our own socket: a later host may have replaced it. */
    if (lstat(h->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == h->sock_dev && st.st_ino == h->sock_ino)
        unlink(h->path);
    pthread_mutex_lock(&h->mu);
    for (uint32_t i = 0; i < h->config.max_channels; i++) {
        shmx_channel_destroy(h->shm[i]);
        shmx_channel_destroy(h->draining[i]);
        shmx_channel_destroy(h->uds[i]);
        h->shm[i] = NULL;
        h->draining[i] = NULL;
        h->uds[i] = NULL;
    }
    h->uds_count = 0;
    shmx_readmit_fini(&h->readmit);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_destroy(&h->mu);
    shmx_host_extents_close(h);
    shmx_pool_fini(&h->pool);
    if (h->has_seg) shmx_segment_close(&h->seg);
    shmx_names_release(&h->names); /* last: the name stays ours until every file under it is gone */
    for (uint32_t i = 0; i < h->config.max_channels; i++)
        if (h->watch[i].pidfd >= 0) close(h->watch[i].pidfd);
    free(h->events);
    free(h->reporting);
    free(h->shm);
    free(h->draining);
    free(h->epochs);
    free(h->uds);
    free(h->uds_epochs);
    free(h->watch);
    free(h);
}

/* ------------------------------------------------------------------------ */
/* accessors */

int shmx_host_fd(const shmx_host_t *h) { return h ? h->listen_fd : -SHMX_EINVAL; }

const char *shmx_host_socket_path(const shmx_host_t *h) { return h ? h->path : NULL; }

uint64_t shmx_host_mapped_bytes(const shmx_host_t *h) {
    /* Relaxed: a figure for diagnostics; growth raises it under the host's lock. */
    return h ? h->seg.size + atomic_load_explicit(&h->extent_bytes, memory_order_relaxed) : 0;
}

const shmx_config_t *shmx_host_config(const shmx_host_t *h) {
    if (!h) return NULL;
    return h->has_seg ? &h->seg.config : &h->config;
}

uint32_t shmx_host_transports(const shmx_host_t *h) { return h ? h->transports : 0; }

uint64_t shmx_host_violations(const shmx_host_t *h) {
    if (!h) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&h->mu); /* the count changes under the lock; reading it is still const */
    uint64_t n = h->violations;
    pthread_mutex_unlock((pthread_mutex_t *)&h->mu);
    return n;
}

int shmx_host_set_peer_listener(shmx_host_t *h, shmx_peer_listener_fn fn, void *arg) {
    if (!h) return -SHMX_EINVAL;
    pthread_mutex_lock(&h->mu);
    h->listener = fn;
    h->listener_arg = fn ? arg : NULL;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

shmx_pool_t *shmx_host_pool(shmx_host_t *h) { return &h->pool; }

shmx_segment_t *shmx_host_segment(shmx_host_t *h) { return &h->seg; }

uint32_t shmx_host_extent_count(shmx_host_t *h) {
    pthread_mutex_lock(&h->mu);
    uint32_t n = h->extent_count;
    pthread_mutex_unlock(&h->mu);
    return n;
}

uint32_t shmx_host_channel_count(shmx_host_t *h) {
    pthread_mutex_lock(&h->mu);
    uint32_t n = h->uds_count;
    for (uint32_t i = 0; i < h->config.max_channels; i++) n += h->shm[i] != NULL;
    pthread_mutex_unlock(&h->mu);
    return n;
}
