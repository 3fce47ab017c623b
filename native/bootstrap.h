/*
 * Bootstrap: how a guest finds its host. The host listens on a Unix stream
 * socket at a per-user path (see shmx_socket_path), the guest connects and
 * sends a hello, the host checks SO_PEERCRED and answers with a welcome that
 * carries the segment fd (SCM_RIGHTS) for the shm transport.
 *
 * Wire messages (little-endian, fixed size):
 *   hello   (guest -> host, 16 bytes): u32 magic SHMX_HELLO_MAGIC, u16 version 1,
 *           u16 transport wanted, u64 reserved 0
 *   welcome (host -> guest, 36 bytes): u32 magic SHMX_WELCOME_MAGIC, u16 version 1,
 *           u16 transport, i32 status (0 or a negative shmx code), u32 channel index,
 *           u32 epoch, u32 max_payload, u64 segment bytes, u32 max_message; with one
 *           fd attached when transport is shm and status is 0.
 *
 * A successful shm welcome is followed at once by the channel's doorbells:
 *   bells   (host -> guest, 16 bytes): u32 magic SHMX_BELLS_MAGIC, u16 version 1,
 *           u16 count 2, u64 reserved 0; with the guest's ends of the two bell
 *           socketpairs attached, in ring order: the host-to-guest ring's (the
 *           guest waits on it), then the guest-to-host ring's (the guest rings
 *           it). Fresh for every guest; never sent over uds.
 *
 * After that the socket stays open for the life of the channel and
 * carries the pool's growth (nothing else; a uds channel's socket carries its
 * frames instead):
 *   grow    (guest -> host, 16 bytes): u32 magic SHMX_GROW_MAGIC, u16 version 1,
 *           u16 reserved 0, u32 size class that the guest found empty (with every
 *           larger one), u32 reserved 0. A request, not a command: the host grows
 *           the pool if that class is still empty and the cap allows, else does
 *           nothing. No answer; the guest waits for a free as usual.
 *   extent  (host -> guest, 40 bytes): u32 magic SHMX_EXTENT_MAGIC, u16 version 1,
 *           u16 reserved 0, u32 extent id (0, 1, ... in creation order), u32 size
 *           class, u32 first slot index, u32 slot count, u64 bytes of the memfd,
 *           u64 reserved 0; with the extent's memfd attached. Sent to every shm
 *           guest before any slot of the extent is on a free list, and to a guest
 *           that joins later, for every extent, right after its welcome and bells.
 */
#ifndef SHMX_BOOTSTRAP_H
#define SHMX_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHMX_HELLO_MAGIC 0x4F4C4548u   /* "HELO" */
#define SHMX_WELCOME_MAGIC 0x434C4557u /* "WELC" */
#define SHMX_GROW_MAGIC 0x574F5247u    /* "GROW" */
#define SHMX_EXTENT_MAGIC 0x4E545845u  /* "EXTN" */
#define SHMX_BELLS_MAGIC 0x4C4C4542u   /* "BELL" */
#define SHMX_GROW_BYTES 16u
#define SHMX_EXTENT_BYTES 40u
#define SHMX_BELLS_BYTES 16u
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
    uint32_t max_message; /* the host's largest message (a uds guest has no segment header to read it from) */
} shmx_welcome_t;

typedef struct shmx_extent_msg {
    uint32_t id;
    uint32_t cls;
    uint32_t first_index;
    uint32_t slot_count;
    uint64_t bytes;
} shmx_extent_msg_t;

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

/*
 * Connect to @path, waiting until @deadline_ns for a host to appear (inotify on the directory, set up
 * only after a first miss, no polling). Returns the fd, -SHMX_ENOHOST, or -errno.
 */
int shmx_bootstrap_connect(const char *path, int64_t deadline_ns);

int shmx_bootstrap_send_hello(int fd, const shmx_hello_t *hello);
int shmx_bootstrap_recv_hello(int fd, int64_t deadline_ns, shmx_hello_t *out);
/* @pass_fd: -1 for none. */
int shmx_bootstrap_send_welcome(int fd, const shmx_welcome_t *w, int pass_fd);
/* *@fd_out is -1 when none was attached; extra fds are closed. */
int shmx_bootstrap_recv_welcome(int fd, int64_t deadline_ns, shmx_welcome_t *out, int *fd_out);

/* Send a grow request for class @cls, never blocking. Returns 0 or -errno (-EAGAIN: the socket is full). */
int shmx_bootstrap_send_grow(int fd, uint32_t cls);

/* Parse the SHMX_GROW_BYTES bytes at @b. Returns 0 and sets *@cls, or -SHMX_EPROTO. */
int shmx_bootstrap_parse_grow(const uint8_t *b, uint32_t *cls);

/*
 * Nonzero if the first @n bytes at @b (a grow request still arriving) can
 * begin a well-formed one: its first 8 bytes are always the same.
 */
int shmx_bootstrap_grow_prefix_ok(const uint8_t *b, size_t n);

/* Send an extent announcement with its memfd @pass_fd, never blocking. Returns 0 or -errno. */
int shmx_bootstrap_send_extent(int fd, const shmx_extent_msg_t *m, int pass_fd);

/*
 * Receive one extent announcement by @deadline_ns. *@fd_out is its memfd
 * (close-on-exec; -1 on error, when every fd that came is closed).
 * Returns 0, -SHMX_EPROTO (malformed, or no fd attached), -SHMX_EHOSTGONE
 * (the host hung up), -ETIMEDOUT or -errno.
 */
int shmx_bootstrap_recv_extent(int fd, int64_t deadline_ns, shmx_extent_msg_t *out, int *fd_out);

/*
 * Send the channel's two doorbells (@bells[0]: host-to-guest ring's, @bells[1]:
 * guest-to-host ring's), never blocking. Returns 0 or -errno (-SHMX_EINVAL for
 * a negative fd).
 */
int shmx_bootstrap_send_bells(int fd, const int bells[2]);

/*
 * Receive the bells message by @deadline_ns. @bells_out gets the two
 * descriptors in the order sent (close-on-exec; both -1 on error, when every
 * fd that came is closed; extras are closed). Returns 0, -SHMX_EPROTO
 * (malformed, or fewer than two fds), -SHMX_EHOSTGONE (the host hung up),
 * -ETIMEDOUT or -errno. The caller checks that they are stream sockets.
 */
int shmx_bootstrap_recv_bells(int fd, int64_t deadline_ns, int bells_out[2]);

/*
 * Read what is there, up to @len bytes, without waiting; any descriptors
 * that came with the bytes are closed. Returns the count, 0 at end of
 * stream, -EAGAIN if nothing is there, or -errno.
 */
ssize_t shmx_bootstrap_read_some(int fd, uint8_t *buf, size_t len);

/* The connected peer's uid and pid as the kernel recorded them at connect (SO_PEERCRED). Returns 0 or -errno. */
int shmx_bootstrap_peer_cred(int fd, uid_t *uid, pid_t *pid);

#endif
