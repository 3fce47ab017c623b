/*
 * The host's private state, shared by host.c (create, accept, forget,
 * destroy) and host_service.c (the service thread and the pool's growth),
 * and private views into a host for tests and diagnostics (not exported: the
 * library is built with hidden visibility and these carry no visibility
 * attribute).
 */
#ifndef SHMX_HOST_INTERNAL_H
#define SHMX_HOST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "bootstrap.h"
#include "extent.h"
#include "pool.h"
#include "readmit.h"
#include "segment.h"
#include "shmx/names.h"
#include "shmx/peer.h"

struct shmx_channel;

/*
 * What the service thread keeps per channel entry: a grow request arriving
 * in pieces, and the guest's liveness. Reset when the entry is given out.
 */
typedef struct shmx_host_watch {
    int watched;                      /* the entry's socket is in the epoll set */
    uint32_t partial_len;             /* bytes of an incomplete request so far */
    uint8_t partial[SHMX_GROW_BYTES];
    int pidfd;                        /* a spawned guest's process (owned, in the epoll set); -1 otherwise */
    int ended;                        /* the guest ended and was reported; nothing more is done for it */
    uint64_t last_head;               /* the host-to-guest ring's head at the last look */
    int64_t stuck_since;              /* when records were first seen waiting behind that head; 0: none */
    /* A spawned guest that hung up before its process exited: its end is done, its report waits
     * (still watching the pidfd) until held_until for the exit status. */
    int64_t held_until;               /* 0: nothing held */
    shmx_peer_event_t held;           /* the report, all but its reason and exit status */
} shmx_host_watch_t;

struct shmx_host {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd;
    dev_t sock_dev; /* the socket file we bound: destroy unlinks only that one */
    ino_t sock_ino;
    shmx_names_lock_t names; /* NAME.lock, held for the host's whole life (names.c) */
    shmx_config_t config; /* validated copy */
    uint32_t transports;  /* what it can give: the configuration's, less shm without a segment (fallback) */
    int has_seg;          /* the segment exists (else only uds guests are served) */
    shmx_segment_t seg;
    shmx_pool_t pool;
    /*
     * Guards the tables below, every entry's rings while it changes hands, and
     * the extents: accept, channel free, growth and the service thread take it.
     */
    pthread_mutex_t mu;
    struct shmx_channel **shm;      /* [max_channels]: the channel on each entry, NULL when free */
    struct shmx_channel **draining; /* [max_channels]: a freed channel whose guest has not hung up yet */
    uint32_t *epochs;               /* [max_channels]: the last epoch each entry was given with */
    /* uds guests are peers max_channels + k (shmx_channel_index of the host's channel): never an entry's index. */
    struct shmx_channel **uds;      /* [max_channels]: the uds channel of each k, NULL when free */
    uint32_t *uds_epochs;           /* [max_channels]: the last epoch each k was given with */
    uint32_t uds_count;             /* uds channels served */

    /* The pool's growth (host_service.c), under mu. */
    shmx_extent_t extents[SHMX_MAX_EXTENTS];
    uint32_t extent_count;
    uint64_t pool_slot_bytes;          /* slot bytes of the segment's pool and every extent */
    _Atomic uint64_t extent_bytes;     /* bytes of every extent mapped, for shmx_host_mapped_bytes (relaxed) */

    /* The service thread (host_service.c). */
    shmx_host_watch_t *watch; /* [max_channels] */
    shmx_peer_listener_fn listener; /* under mu */
    void *listener_arg;
    shmx_peer_event_t *events;    /* [2 x max_channels]: found under mu, reported by the service thread */
    uint32_t event_count;         /* under mu */
    uint64_t events_lost;         /* under mu: events the full queue had no room for, not yet logged */
    shmx_peer_event_t *reporting; /* [2 x max_channels]: service thread only, the copy it reports from */
    uint64_t violations;          /* under mu: guests quarantined so far */
    shmx_readmit_t readmit;       /* under mu: processes quarantined lately and their held connections */
    uint32_t slots_back;          /* under mu: pool slots a rebuild brought back, not yet logged */
    shmx_pool_faults_t faults_logged; /* service thread only: the pool's fault counts it last logged */
    int64_t next_faults_check;        /* service thread only: when it looks at them again */
    int kick_fd;                  /* eventfd: an application thread queued an event (quarantine) or a log */
    int64_t next_tick;         /* service thread only: the next liveness check */
    int64_t next_settle;       /* service thread only: the earliest held_until, INT64_MAX for none */
    int epoll_fd;
    int stop_fd;   /* eventfd: written once to stop the thread */
    int has_thread;
    pthread_t thread;
};

/* ---- host_service.c ------------------------------------------------------------ */

/*
 * shmx_host_service_start - create the epoll set and start the service thread
 * ("shmx-host"), which serves the grow requests of shm guests. Also installs
 * the pool's grow hook. Returns 0 or -errno.
 */
int shmx_host_service_start(struct shmx_host *h);

/* shmx_host_service_stop - stop and join the service thread; close the epoll set. Idempotent. */
void shmx_host_service_stop(struct shmx_host *h);

/*
 * shmx_host_service_admit_locked - with mu held, right after entry @idx's
 * welcome went out on @sock: announce every extent to it, then watch it for
 * grow requests. Returns 0 or -errno (the guest could not be told: drop it).
 */
int shmx_host_service_admit_locked(struct shmx_host *h, uint32_t idx, int sock);

/*
 * shmx_host_quarantine - a call of the host's on @ch met @code (a protocol
 * violation by its guest): expel the guest like a dead one and report it
 * (SHMX_PEER_VIOLATION). Takes the lock; any thread. Idempotent.
 */
void shmx_host_quarantine(struct shmx_host *h, struct shmx_channel *ch, int code);

/*
 * shmx_host_service_forget_locked - with mu held: stop watching entry @idx's
 * socket (before it closes) and its child, reporting an end held for the
 * child's exit status now.
 */
void shmx_host_service_forget_locked(struct shmx_host *h, uint32_t idx, int sock);

/*
 * shmx_host_service_slots_back_locked - with mu held: a rebuild of the pool
 * brought back @count slots that dead guests lost. The service thread logs it
 * (no log handler runs under mu: it may call the host).
 */
void shmx_host_service_slots_back_locked(struct shmx_host *h, uint32_t count);

/*
 * shmx_host_service_watch_draining_locked - with mu held: entry @idx was freed
 * by the application but its guest has not hung up; reap it (host.c) as soon
 * as it does.
 */
void shmx_host_service_watch_draining_locked(struct shmx_host *h, uint32_t idx, int sock);

/*
 * shmx_host_reap_locked - with mu held: give draining entry @idx back if its
 * guest has hung up (host.c). Returns 1 once the entry is free.
 */
int shmx_host_reap_locked(struct shmx_host *h, uint32_t idx);

/* shmx_host_service_watch_uds_locked - with mu held: report uds channel @ch's hang-up to the listener. Returns 0 or -errno. */
int shmx_host_service_watch_uds_locked(struct shmx_host *h, struct shmx_channel *ch);

/* shmx_host_service_forget_uds_locked - with mu held: stop watching uds channel @ch (before its socket closes). */
void shmx_host_service_forget_uds_locked(struct shmx_host *h, struct shmx_channel *ch);

/*
 * shmx_host_admit_socket - give a channel over the connected socket @sock
 * (owned from here) as if a guest had connected and asked for @transport:
 * the welcome and everything after it are written to @sock. For spawned
 * guests (spawn.c), whose end of a socketpair is inherited.
 * Returns 0 and sets *@out, or the codes of shmx_host_accept.
 */
int shmx_host_admit_socket(struct shmx_host *h, int sock, uint32_t transport, shmx_channel_t **out);

/*
 * shmx_host_watch_child - the shm guest on host channel @ch is the process
 * @pid with pidfd @pidfd (owned from here, also on failure): its exit ends
 * the guest even if its socket lives on in another process, and its wait
 * status goes into the peer event. Returns 0, -SHMX_EINVAL or -errno.
 */
int shmx_host_watch_child(struct shmx_host *h, shmx_channel_t *ch, pid_t pid, int pidfd);

/*
 * shmx_host_grow_locked - with mu held: add an extent of class @cls if the
 * class is still empty and the cap (pool_max_bytes, SHMX_MAX_EXTENTS) allows,
 * announce it to every shm guest, publish it and push its slots.
 * Returns 1 if it grew, 0 if nothing was needed or allowed, or -errno.
 */
int shmx_host_grow_locked(struct shmx_host *h, uint32_t cls);

/* shmx_host_extents_close - unmap and close every extent (destroy, after every channel is gone). */
void shmx_host_extents_close(struct shmx_host *h);

/* ---- views for tests and diagnostics ------------------------------------------- */

/* The host's private view of its pool (for shmx_pool_stats). */
shmx_pool_t *shmx_host_pool(shmx_host_t *host);

/* The host's segment. */
shmx_segment_t *shmx_host_segment(shmx_host_t *host);

/* Channels the host currently serves (shm entries in use plus uds channels). */
uint32_t shmx_host_channel_count(shmx_host_t *host);

/* Extents the host has created so far. */
uint32_t shmx_host_extent_count(shmx_host_t *host);

#endif
