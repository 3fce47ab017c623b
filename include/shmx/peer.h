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
 * -SHMX_EPROTO (malformed hello; that guest is dropped), or -errno.
 * Only one thread may accept at a time.
 */
int shmx_host_accept(shmx_host_t *host, int64_t timeout_ns, shmx_channel_t **out);

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
 * socket. NULL is ignored.
 */
void shmx_host_destroy(shmx_host_t *host);

/*
 * shmx_guest_connect - connect to the host called @name, asking for
 * @transport (SHMX_TRANSPORT_SHM or SHMX_TRANSPORT_UDS). Waits up to
 * @timeout_ns for the host to appear (watching its directory, no polling).
 * Returns 0 and sets *@out, or -SHMX_ENOHOST (no host within the timeout),
 * -SHMX_EFULL, -SHMX_EPEERCRED, -SHMX_ETRANSPORT, -SHMX_EPROTO,
 * -SHMX_EHEADER/-SHMX_ESEALS/-SHMX_ENOTREADY (segment failed validation), -errno.
 */
int shmx_guest_connect(const char *name, uint32_t transport, int64_t timeout_ns, shmx_guest_t **out);

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
