/*
 * Bootstrap: how a guest finds its host. The host listens on a Unix stream
 * socket at a per-user path (see shmx_socket_path), the guest connects and
 * sends a hello, the host checks SO_PEERCRED and answers with a welcome that
 * carries the segment fd (SCM_RIGHTS) for the shm transport.
 *
 * Wire messages (little-endian, fixed size):
 *   hello   (guest -> host, 16 bytes): u32 magic SHMX_HELLO_MAGIC, u16 version 1,
 *           u16 transport wanted, u64 reserved 0
 *   welcome (host -> guest, 32 bytes): u32 magic SHMX_WELCOME_MAGIC, u16 version 1,
 *           u16 transport, i32 status (0 or a negative shmx code), u32 channel index,
 *           u32 epoch, u32 max_payload, u64 segment bytes; with one fd attached
 *           when transport is shm and status is 0.
 */
#ifndef SHMX_BOOTSTRAP_H
#define SHMX_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHMX_HELLO_MAGIC 0x4F4C4548u   /* "HELO" */
#define SHMX_WELCOME_MAGIC 0x434C4557u /* "WELC" */
#define SHMX_BOOTSTRAP_VERSION 1u

typedef struct shmx_hello {
    uint16_t transport;
} shmx_hello_t;

typedef struct shmx_welcome {
    uint16_t transport;
    int32_t status;
    uint32_t channel_index;
    uint32_t epoch;
    uint32_t max_payload;
    uint64_t segment_bytes;
} shmx_welcome_t;

/* Validate a host name: 1..64 of [A-Za-z0-9._-]. Returns 0 or -SHMX_EINVAL. */
int shmx_name_check(const char *name);

/*
 * The per-user socket directory ($XDG_RUNTIME_DIR/shmx or /tmp/shmx-UID),
 * created 0700 if missing; refused (-SHMX_EPERMS) if it is a symlink, not a
 * directory, not owned by this user, or accessible to others.
 */
int shmx_socket_dir(char *buf, size_t len, int create);

/* Listen on @path (0600). A stale socket is replaced, a live one is -EADDRINUSE. Returns the fd or -errno. */
int shmx_bootstrap_listen(const char *path);

/* Connect to @path, waiting (inotify on the directory, no polling) until @deadline_ns. Returns fd or -SHMX_ENOHOST. */
int shmx_bootstrap_connect(const char *path, int64_t deadline_ns);

int shmx_bootstrap_send_hello(int fd, const shmx_hello_t *hello);
int shmx_bootstrap_recv_hello(int fd, int64_t deadline_ns, shmx_hello_t *out);
/* @pass_fd: -1 for none. */
int shmx_bootstrap_send_welcome(int fd, const shmx_welcome_t *w, int pass_fd);
/* *@fd_out is -1 when none was attached; extra fds are closed. */
int shmx_bootstrap_recv_welcome(int fd, int64_t deadline_ns, shmx_welcome_t *out, int *fd_out);

/* The connected peer's uid (SO_PEERCRED). Returns 0 or -errno. */
int shmx_bootstrap_peer_uid(int fd, uid_t *uid);

#endif
