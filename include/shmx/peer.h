/*
 * shmx hosts and guests.
 *
 * A host creates a segment and listens on a Unix socket under a name; a guest
 * connects by name, the host checks its credentials (SO_PEERCRED, same uid by
 * default), gives it a channel and passes the segment fd with SCM_RIGHTS. The
 * socket stays open for the life of the channel: its hang-up tells either
 * side that the other is gone. With the uds transport the same socket carries
 * the frames.
 *
 * Names are 1 to 64 characters of [A-Za-z0-9._-]. The socket lives at
 * $XDG_RUNTIME_DIR/shmx/NAME.sock, or /tmp/shmx-UID/NAME.sock without
 * XDG_RUNTIME_DIR, in a 0700 directory the user owns; the socket is 0600.
 */
#ifndef SHMX_PEER_H
#define SHMX_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

typedef struct shmx_host shmx_host_t;
typedef struct shmx_guest shmx_guest_t;

/* Why a guest's channel entry ended (shmx_peer_event_t.reason). */
enum shmx_peer_reason {
    SHMX_PEER_CLOSED = 1,  /* the guest closed its channel and hung up */
    SHMX_PEER_DIED = 2,    /* its bootstrap socket hung up without a close: it exited or was killed */
    SHMX_PEER_EXITED = 3,  /* a spawned guest's process ended (pidfd); exit_status says how */
    SHMX_PEER_EXPELLED = 4, /* it left the host's messages unconsumed for longer than liveness_ms */
    SHMX_PEER_VIOLATION = 5 /* quarantined: it broke the protocol in shared memory; violation says how */
};

/* What the host reports when a guest leaves (see shmx_host_set_peer_listener). */
typedef struct shmx_peer_event {
    uint32_t peer;       /* the guest's peer id (shmx_channel_index of the host's channel): shm entries 0 .. max_channels - 1,
                            uds guests max_channels + k (k < max_channels), so the two never collide */
    uint32_t epoch;      /* the incarnation that ended (shmx_channel_epoch); a later guest on the same peer id gets a new one */
    uint32_t reason;     /* enum shmx_peer_reason */
    int32_t pid;         /* the guest's process as the kernel named it (SO_PEERCRED or spawn); 0 if unknown */
    int32_t exit_status; /* SHMX_PEER_EXITED: the wait status (WIFEXITED, WTERMSIG, ...); else 0 */
    uint32_t reclaimed;  /* pool slots the host took back from it */
    int64_t noticed_ns;  /* CLOCK_MONOTONIC time the host noticed */
    int32_t violation;   /* SHMX_PEER_VIOLATION: the code the host's call met (-SHMX_ECORRUPT: its ring,
                          * -SHMX_EBADSLOT: a slot reference); else 0 */
    uint32_t reserved;   /* 0 */
} shmx_peer_event_t;

/* A listener: called once per ended guest, on the host's service thread ("shmx-host"). */
typedef void (*shmx_peer_listener_fn)(void *arg, const shmx_peer_event_t *event);

/*
 * shmx_host_create - create a segment with @cfg (NULL: defaults) and listen
 * under @name. A stale socket of a dead host with the same name is replaced;
 * a live one is not.
 * Returns 0 and sets *@out, or -SHMX_ECONFIG, -SHMX_EINVAL (bad name),
 * -EADDRINUSE (a live host has that name), -SHMX_EPERMS (the socket directory
 * is not a 0700 directory of this user), -ENOMEM/-ENOSPC (segment memory), or
 * another -errno.
 */
int shmx_host_create(const char *name, const shmx_config_t *cfg, shmx_host_t **out);

/*
 * shmx_host_accept - wait up to @timeout_ns for one guest, check it, give it a
 * channel and return the host side of that channel in *@out.
 * Returns 0, -ETIMEDOUT, -SHMX_EPEERCRED (refused; the host goes on),
 * -SHMX_EFULL (no free channel; the guest is told), -SHMX_ETRANSPORT,
 * -SHMX_EPROTO (malformed hello, or none within 5 s; that guest is dropped), or -errno.
 * Only one thread may accept at a time.
 * A process one of whose guests was quarantined (SHMX_PEER_VIOLATION) waits
 * before its next connection is admitted: 10 ms after a first violation,
 * twice as long after each further one (at most 1 s), and again after each
 * admission until it is forgotten, 10 s after its last violation. Its
 * connection is held unanswered meanwhile, one per process (a newer one
 * replaces it; the older is refused with -SHMX_EBACKOFF), while other
 * connections are admitted; the accept call running when its wait ends, or
 * the next one, admits it. However many connections such a process makes,
 * the call returns by its timeout. Guests in the host's own process never
 * wait.
 */
int shmx_host_accept(shmx_host_t *host, int64_t timeout_ns, shmx_channel_t **out);

/*
 * shmx_host_set_peer_listener - call @fn(@arg, event) whenever a shm or uds
 * guest of @host ends: it closed, died (bootstrap socket hang-up, noticed at
 * once by the service thread), a spawned child exited (pidfd), it was
 * expelled (liveness_ms), or it was quarantined: a call of the host's on its
 * channel found it breaking the protocol in shared memory (ring positions or
 * records that fail validation, a slot reference that is not its to send).
 * That call returns the violation's code; the guest is then expelled like a
 * dead one, later calls on the host's channel return -SHMX_ECLOSED and the
 * guest's own calls -SHMX_EEXPELLED. By then the host has taken back every pool slot
 * the guest held or was writing, closed both rings (so the host's waits on
 * that channel wake: messages the guest committed before it ended can still
 * be received, then -SHMX_ECLOSED), and a guest that comes back is given a
 * fresh epoch. The host's channel handle stays valid until the application
 * frees it; free it to give the entry to another guest.
 * The listener runs on the service thread without the host's lock: it may
 * call channel functions, but must not free or destroy (do that on the
 * thread that owns the channel) and should return quickly: ends that come
 * while it is busy wait in a queue of 2 x max_channels, and those beyond are
 * not reported (the host logs how many). NULL @fn removes it. Returns 0 or
 * -SHMX_EINVAL.
 */
int shmx_host_set_peer_listener(shmx_host_t *host, shmx_peer_listener_fn fn, void *arg);

/* shmx_host_violations - how many guests @host quarantined for protocol violations so far. */
uint64_t shmx_host_violations(const shmx_host_t *host);

/*
 * shmx_host_transports - the transports @host can give now (bitwise or of
 * SHMX_TRANSPORT_SHM and SHMX_TRANSPORT_UDS): its configuration's, without
 * shm if the segment could not be created (hybrid fallback).
 */
uint32_t shmx_host_transports(const shmx_host_t *host);

/* shmx_host_fd - the listening socket, readable when a guest is waiting (for poll/epoll). */
int shmx_host_fd(const shmx_host_t *host);

/* shmx_host_socket_path - the path the host listens on. */
const char *shmx_host_socket_path(const shmx_host_t *host);

/* shmx_host_mapped_bytes - bytes of shared memory the host has mapped. */
uint64_t shmx_host_mapped_bytes(const shmx_host_t *host);

/* shmx_host_config - the host's configuration (as recorded in the segment). */
const shmx_config_t *shmx_host_config(const shmx_host_t *host);

/*
 * shmx_host_destroy - stop listening, close and free every channel the host
 * accepted (their handles become invalid), unmap the segment and remove the
 * socket. Guest ends not yet reported (a spawned guest's end waiting for its
 * exit status) reach the peer listener first, on the service thread. NULL is
 * ignored.
 */
void shmx_host_destroy(shmx_host_t *host);

/*
 * shmx_guest_connect - connect to the host called @name, asking for
 * @transport: SHMX_TRANSPORT_SHM, SHMX_TRANSPORT_UDS, or SHMX_TRANSPORT_AUTO
 * (shared memory when the host can give it, else the Unix socket with the
 * same API and frames: see shmx_channel_transport). Waits up to
 * @timeout_ns for the host to appear (watching its directory, no polling).
 * Returns 0 and sets *@out, or -SHMX_ENOHOST (no host within the timeout),
 * -SHMX_EFULL, -SHMX_EPEERCRED, -SHMX_ETRANSPORT, -SHMX_EPROTO,
 * -SHMX_EHEADER/-SHMX_ESEALS/-SHMX_ENOTREADY (segment failed validation), -errno.
 */
int shmx_guest_connect(const char *name, uint32_t transport, int64_t timeout_ns, shmx_guest_t **out);

/*
 * shmx_guest_attach_ticket - attach as a guest the host spawned
 * (shmx_host_spawn): @ticket is the spawn ticket the host put in the
 * child's environment as SHMX_TICKET (NULL: read it from there). The ticket
 * names the peer id, the epoch and the inherited descriptor; nothing is
 * looked up by name. The descriptor is made close-on-exec, so the guest's own
 * children do not inherit it.
 * Returns 0 and sets *@out, -SHMX_EINVAL (no or malformed ticket, or its
 * descriptor is not a socket), -SHMX_EPROTO (the host's welcome does not match
 * the ticket), or the codes of shmx_guest_connect.
 */
int shmx_guest_attach_ticket(const char *ticket, int64_t timeout_ns, shmx_guest_t **out);

/* shmx_guest_channel - the guest's channel to its host (owned by the guest). */
shmx_channel_t *shmx_guest_channel(shmx_guest_t *guest);

/* shmx_guest_mapped_bytes - bytes of shared memory the guest has mapped (0 for uds). */
uint64_t shmx_guest_mapped_bytes(const shmx_guest_t *guest);

/* shmx_guest_close - close the channel, unmap, hang up. NULL is ignored. */
void shmx_guest_close(shmx_guest_t *guest);

/*
 * shmx_socket_path - write the socket path of host @name into @buf (@len
 * bytes). Returns the path length, -SHMX_EINVAL (bad name) or -ENAMETOOLONG.
 */
int shmx_socket_path(const char *name, char *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
