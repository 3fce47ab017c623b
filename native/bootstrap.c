/*
 * Bootstrap: the per-user socket directory, listening and connecting by path,
 * the fixed-size hello/welcome handshake, and the bells, grow and extent
 * messages that follow it (see bootstrap.h for the wire layout).
 *
 * Choices worth knowing:
 * - The socket is made 0600 with chmod() right after listen(), not with
 *   umask(): umask is process-wide, so changing it would race with every other
 *   thread of the process (a JVM has many) creating files. The socket sits in
 *   a 0700 directory of this user, so nobody else can reach it in between.
 * - chmod() comes after listen() on purpose: its IN_ATTRIB event is then the
 *   last thing a waiting guest sees, and it happens when the socket already
 *   accepts. A guest woken by the earlier IN_CREATE (bind) may find the
 *   socket not yet listening (ECONNREFUSED); it then waits again and the
 *   IN_ATTRIB wakes it. No wake-up can be lost this way.
 * - Sockets returned by listen, connect and accept are non-blocking and
 *   close-on-exec; every read here waits with poll() against a deadline.
 */
#include "bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "shmx/config.h"
#include "shmx/errors.h"
#include "shmx/peer.h"
#include "wait.h"

#define NAME_MAX_CHARS 64u
#define HELLO_BYTES 16u
#define WELCOME_BYTES 36u
#define LISTEN_BACKLOG 64
/* Room for a few descriptors, so that a peer sending extras has them closed
 * here rather than dropped by the kernel (MSG_CTRUNC is still handled). */
#define MAX_RECV_FDS 8

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

/* ------------------------------------------------------------------------ */
/* little-endian helpers: the wire format does not depend on the host's order */

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ------------------------------------------------------------------------ */
/* names and the socket directory */

int shmx_name_check(const char *name) {
    if (!name) return -SHMX_EINVAL;
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        if (n >= NAME_MAX_CHARS) return -SHMX_EINVAL;
        char c = name[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
        if (!ok) return -SHMX_EINVAL;
    }
    return n == 0 ? -SHMX_EINVAL : 0;
}

/* XDG_RUNTIME_DIR counts only if it is an absolute path to a directory we can use. */
static const char *usable_runtime_dir(void) {
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (!x || x[0] != '/') return NULL;
    struct stat st;
    if (stat(x, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    if (access(x, W_OK | X_OK) != 0) return NULL;
    return x;
}

/* A directory we may put a socket in: ours, a real directory, closed to others. */
static int check_dir(const char *dir) {
    struct stat st;
    if (lstat(dir, &st) != 0) return -errno;
    if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) return -SHMX_EPERMS;
    if (st.st_uid != geteuid()) return -SHMX_EPERMS;
    if ((st.st_mode & 077) != 0) return -SHMX_EPERMS;
    return 0;
}

/* mkdir never follows a symlink (EEXIST), and the lstat check after it refuses
 * anything we did not make ourselves: never chmod or follow a foreign one. */
static int prepare_dir(const char *dir) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -errno;
    return check_dir(dir);
}

/* @create nonzero: create the directory if missing and check it; zero: only
 * compute its path (shmx_socket_path must not touch the file system). */
int shmx_socket_dir(char *buf, size_t len, int create) {
    if (!buf || len == 0) return -SHMX_EINVAL;
    const char *xdg = usable_runtime_dir();
    int n = xdg ? snprintf(buf, len, "%s/shmx", xdg) : snprintf(buf, len, "/tmp/shmx-%u", (unsigned)geteuid());
    if (n < 0) return -SHMX_EINVAL;
    if ((size_t)n >= len) return -ENAMETOOLONG;
    if (create) {
        int rc = prepare_dir(buf);
        if (rc < 0) return rc;
    }
    return n;
}

int shmx_socket_path(const char *name, char *buf, size_t len) {
    int rc = shmx_name_check(name);
    if (rc < 0) return rc;
    if (!buf) return -SHMX_EINVAL;
    char dir[SUN_PATH_MAX];
    rc = shmx_socket_dir(dir, sizeof dir, 0);
    if (rc < 0) return rc;
    char path[SUN_PATH_MAX + NAME_MAX_CHARS + 8];
    int n = snprintf(path, sizeof path, "%s/%s.sock", dir, name);
    /* A path that does not fit sun_path could never be bound or connected. */
    if (n < 0 || (size_t)n >= SUN_PATH_MAX || (size_t)n >= len) return -ENAMETOOLONG;
    memcpy(buf, path, (size_t)n + 1);
    return n;
}

/* ------------------------------------------------------------------------ */
/* listen and connect */

static int make_addr(const char *path, struct sockaddr_un *addr, socklen_t *alen) {
    if (!path) return -SHMX_EINVAL;
    size_t n = strlen(path);
    if (n == 0) return -SHMX_EINVAL;
    if (n >= SUN_PATH_MAX) return -ENAMETOOLONG;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, n + 1);
    *alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* The directory part of @path (everything before the last '/'). */
static int dir_of(const char *path, char *dir, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return -SHMX_EINVAL;
    size_t n = (size_t)(slash - path);
    if (n >= len) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

/* 1: a host accepts on @addr; 0: nobody listens (stale); < 0: -errno. */
static int probe_live(const struct sockaddr_un *addr, socklen_t alen) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = connect(fd, (const struct sockaddr *)addr, alen);
    int err = rc == 0 ? 0 : errno;
    close(fd);
    if (rc == 0 || err == EAGAIN) return 1; /* EAGAIN: alive, its backlog is full */
    if (err == ECONNREFUSED) return 0;
    return -err;
}

int shmx_bootstrap_listen(const char *path) {
    struct sockaddr_un addr;
    socklen_t alen;
    int rc = make_addr(path, &addr, &alen);
    if (rc < 0) return rc;

    struct stat st;
    if (lstat(path, &st) == 0) {
        /* Never bind over (or follow) something that is not our own socket. */
        if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) return -SHMX_EPERMS;
        rc = probe_live(&addr, alen);
        if (rc < 0) return rc;
        if (rc == 1) return -EADDRINUSE;
        if (unlink(path) != 0 && errno != ENOENT) return -errno;
    } else if (errno != ENOENT) {
        return -errno;
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    /* A host starting at the same moment may win the bind: EADDRINUSE, as for a live one. */
    if (bind(fd, (const struct sockaddr *)&addr, alen) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (listen(fd, LISTEN_BACKLOG) != 0 || chmod(path, 0600) != 0) {
        rc = -errno;
        unlink(path);
        close(fd);
        return rc;
    }
    return fd;
}

/* Poll @fd for @events once, then until @deadline_ns. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ns) {
    for (;;) {
        int64_t left = deadline_ns - shmx_now_ns();
        int ms;
        if (deadline_ns == INT64_MAX) ms = -1;
        else if (left <= 0) ms = 0;
        else ms = left / 1000000 >= INT_MAX ? INT_MAX : (int)((left + 999999) / 1000000);
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0) return 0; /* readable, or hung up / error: the next call reports it */
        if (n == 0) return -ETIMEDOUT;
        if (errno != EINTR) return -errno;
        if (ms == 0) return -ETIMEDOUT;
    }
}

/* One connect attempt. A host whose backlog is full makes connect() block;
 * SO_SNDTIMEO bounds that wait by the deadline. Returns the fd or -errno. */
static int try_connect(const struct sockaddr_un *addr, socklen_t alen, int64_t deadline_ns) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (deadline_ns != INT64_MAX) {
        int64_t left = deadline_ns - shmx_now_ns();
        if (left < 1000) left = 1000; /* a zero timeval would mean "forever" */
        struct timeval tv = {.tv_sec = left / 1000000000, .tv_usec = (left % 1000000000) / 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) goto fail;
    }
    if (connect(fd, (const struct sockaddr *)addr, alen) != 0) goto fail;
    struct timeval zero = {0, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero) != 0) goto fail;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) goto fail;
    return fd;
fail:;
    int rc = -errno;
    close(fd);
    return rc;
}

static void drain_inotify(int in) {
    /* Events only say "look again"; their content does not matter. */
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(in, buf, sizeof buf) > 0) {
    }
}

/* An inotify descriptor that wakes on any change of @dir's entries, or -errno. */
static int watch_dir(const char *dir) {
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (in < 0) return -errno;
    if (inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
        int rc = -errno;
        close(in);
        return rc;
    }
    return in;
}

int shmx_bootstrap_connect(const char *path, int64_t deadline_ns) {
    struct sockaddr_un addr;
    socklen_t alen;
    int rc = make_addr(path, &addr, &alen);
    if (rc < 0) return rc;
    char dir[SUN_PATH_MAX];
    rc = dir_of(path, dir, sizeof dir);
    if (rc < 0) return rc;
    rc = prepare_dir(dir);
    if (rc < 0) return rc;

    /* The directory is watched only after a first miss: a connect that finds its host never pays for a
     * watch (closing one waits for an SRCU grace period, 1 to 5 ms, and it costs a descriptor). After
     * the watch is set, the next attempt comes at once, so a host appearing between the miss and the
     * watch still counts. */
    int in = -1;
    for (;;) {
        rc = try_connect(&addr, alen, deadline_ns);
        if (rc >= 0) break;
        /* EAGAIN/ETIMEDOUT: a live host whose backlog stayed full; EINTR: a signal. Both
         * retry until the deadline, then count as "no host". */
        int again = rc == -EINTR || rc == -EAGAIN || rc == -ETIMEDOUT;
        if (!again && rc != -ENOENT && rc != -ECONNREFUSED) break;
        if (shmx_now_ns() >= deadline_ns) {
            rc = -SHMX_ENOHOST;
            break;
        }
        if (again) continue;
        if (in < 0) {
            in = watch_dir(dir);
            if (in < 0) {
                rc = in;
                break;
            }
            continue;
        }
        rc = wait_fd(in, POLLIN, deadline_ns);
        if (rc == -ETIMEDOUT) {
            rc = -SHMX_ENOHOST;
            break;
        }
        if (rc < 0) break;
        drain_inotify(in);
    }
    if (in >= 0) close(in);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* hello and welcome */

/* Send @len bytes with the @nfds (0..2) descriptors @fds attached. */
static int send_msg_fds(int fd, const uint8_t *buf, size_t len, const int *fds, int nfds) {
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do {
        /* Never block the host on a guest that does not read; never die of SIGPIPE. */
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    /* A stream socket takes a message this small whole or not at all; a short
     * count would mean a broken connection. */
    return (size_t)n == len ? 0 : -EIO;
}

static int send_msg(int fd, const uint8_t *buf, size_t len, int pass_fd) {
    return send_msg_fds(fd, buf, len, &pass_fd, pass_fd >= 0 ? 1 : 0);
}

/*
 * One non-blocking recvmsg of up to @len bytes, collecting the descriptors
 * that arrive with them (close-on-exec) into @fds (up to @max; the rest are
 * closed, so @max 0 closes them all). *@truncated is set if the kernel had
 * to drop descriptors (far more than any message carries).
 * Returns the byte count (0 at end of stream), -EAGAIN or -errno.
 */
static ssize_t recv_some(int fd, uint8_t *buf, size_t len, int *fds, int max, int *nfds, int *truncated) {
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * MAX_RECV_FDS)];
    } ctl;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    ssize_t n;
    do {
        n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int rfd;
            memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof rfd);
            if (*nfds < max) fds[(*nfds)++] = rfd;
            else close(rfd);
        }
    }
    *truncated = (m.msg_flags & MSG_CTRUNC) != 0; /* the kernel closed what did not fit */
    return n;
}

/*
 * Read exactly @len bytes by @deadline_ns, collecting the descriptors that
 * arrive with them into @fds (see recv_some).
 * Returns 0, -ECONNRESET at end of stream, -SHMX_EPROTO if descriptors were
 * truncated, -ETIMEDOUT or -errno. Collected descriptors are the caller's to close, even on error.
 */
static int recv_exact(int fd, uint8_t *buf, size_t len, int64_t deadline_ns, int *fds, int max, int *nfds) {
    size_t got = 0;
    *nfds = 0;
    while (got < len) {
        int rc = wait_fd(fd, POLLIN, deadline_ns);
        if (rc < 0) return rc;
        int truncated = 0;
        ssize_t n = recv_some(fd, buf + got, len - got, fds, max, nfds, &truncated);
        if (n == -EAGAIN) continue;
        if (n < 0) return (int)n;
        if (truncated) return -SHMX_EPROTO; /* a peer sending that many descriptors is broken */
        if (n == 0) return -ECONNRESET;
        got += (size_t)n;
    }
    return 0;
}

static void close_fds(const int *fds, int n) {
    for (int i = 0; i < n; i++) close(fds[i]);
}

int shmx_bootstrap_send_hello(int fd, const shmx_hello_t *hello) {
    if (!hello) return -SHMX_EINVAL;
    uint8_t b[HELLO_BYTES];
    put32(b, SHMX_HELLO_MAGIC);
    put16(b + 4, SHMX_BOOTSTRAP_VERSION);
    put16(b + 6, hello->transport);
    put64(b + 8, 0);
    return send_msg(fd, b, sizeof b, -1);
}

/* Returns 0, -SHMX_EPROTO (malformed, cut short or carrying fds), -ETIMEDOUT, -errno. */
int shmx_bootstrap_recv_hello(int fd, int64_t deadline_ns, shmx_hello_t *out) {
    if (!out) return -SHMX_EINVAL;
    uint8_t b[HELLO_BYTES];
    int fds[MAX_RECV_FDS];
    int nfds;
    int rc = recv_exact(fd, b, sizeof b, deadline_ns, fds, MAX_RECV_FDS, &nfds);
    close_fds(fds, nfds); /* a hello never carries descriptors */
    if (rc == -ECONNRESET) return -SHMX_EPROTO;
    if (rc < 0) return rc;
    if (get32(b) != SHMX_HELLO_MAGIC || get16(b + 4) != SHMX_BOOTSTRAP_VERSION || get64(b + 8) != 0)
        return -SHMX_EPROTO;
    if (nfds > 0) return -SHMX_EPROTO;
    out->transport = get16(b + 6);
    return 0;
}

int shmx_bootstrap_send_welcome(int fd, const shmx_welcome_t *w, int pass_fd) {
    if (!w) return -SHMX_EINVAL;
    uint8_t b[WELCOME_BYTES];
    put32(b, SHMX_WELCOME_MAGIC);
    put16(b + 4, SHMX_BOOTSTRAP_VERSION);
    put16(b + 6, w->transport);
    put32(b + 8, (uint32_t)w->status);
    put32(b + 12, w->channel_index);
    put32(b + 16, w->epoch);
    put32(b + 20, w->max_payload);
    put64(b + 24, w->segment_bytes);
    put32(b + 32, w->max_message);
    return send_msg(fd, b, sizeof b, pass_fd);
}

static int valid_status(int32_t s) { return s == 0 || (s < 0 && s > -(int32_t)SHMX_ELAST); }

/*
 * Returns 0, -SHMX_EPROTO (malformed, or a shm welcome without its fd),
 * -SHMX_EHOSTGONE (the host hung up first), -ETIMEDOUT or -errno. Only a
 * successful shm welcome yields a descriptor; every other one is closed.
 */
int shmx_bootstrap_recv_welcome(int fd, int64_t deadline_ns, shmx_welcome_t *out, int *fd_out) {
    if (!out || !fd_out) return -SHMX_EINVAL;
    *fd_out = -1;
    uint8_t b[WELCOME_BYTES];
    int fds[MAX_RECV_FDS];
    int nfds;
    int rc = recv_exact(fd, b, sizeof b, deadline_ns, fds, MAX_RECV_FDS, &nfds);
    if (rc < 0) {
        close_fds(fds, nfds);
        return rc == -ECONNRESET ? -SHMX_EHOSTGONE : rc;
    }
    shmx_welcome_t w;
    w.transport = get16(b + 6);
    w.status = (int32_t)get32(b + 8);
    w.channel_index = get32(b + 12);
    w.epoch = get32(b + 16);
    w.max_payload = get32(b + 20);
    w.segment_bytes = get64(b + 24);
    w.max_message = get32(b + 32);
    int wants_fd = w.status == 0 && w.transport == SHMX_TRANSPORT_SHM;
    int ok = get32(b) == SHMX_WELCOME_MAGIC && get16(b + 4) == SHMX_BOOTSTRAP_VERSION && valid_status(w.status) &&
             (w.status != 0 || w.transport == SHMX_TRANSPORT_SHM || w.transport == SHMX_TRANSPORT_UDS) &&
             (!wants_fd || nfds >= 1);
    if (!ok) {
        close_fds(fds, nfds);
        return -SHMX_EPROTO;
    }
    if (wants_fd) {
        *fd_out = fds[0];
        close_fds(fds + 1, nfds - 1); /* extras were never asked for */
    } else {
        close_fds(fds, nfds);
    }
    *out = w;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* grow and extent */

int shmx_bootstrap_send_grow(int fd, uint32_t cls) {
    uint8_t b[SHMX_GROW_BYTES];
    put32(b, SHMX_GROW_MAGIC);
    put16(b + 4, SHMX_BOOTSTRAP_VERSION);
    put16(b + 6, 0);
    put32(b + 8, cls);
    put32(b + 12, 0);
    return send_msg(fd, b, sizeof b, -1);
}

int shmx_bootstrap_parse_grow(const uint8_t *b, uint32_t *cls) {
    if (get32(b) != SHMX_GROW_MAGIC || get16(b + 4) != SHMX_BOOTSTRAP_VERSION || get16(b + 6) != 0 ||
        get32(b + 12) != 0)
        return -SHMX_EPROTO;
    *cls = get32(b + 8);
    return 0;
}

int shmx_bootstrap_grow_prefix_ok(const uint8_t *b, size_t n) {
    uint8_t prefix[8];
    put32(prefix, SHMX_GROW_MAGIC);
    put16(prefix + 4, SHMX_BOOTSTRAP_VERSION);
    put16(prefix + 6, 0);
    return memcmp(b, prefix, n < sizeof prefix ? n : sizeof prefix) == 0;
}

int shmx_bootstrap_send_extent(int fd, const shmx_extent_msg_t *m, int pass_fd) {
    if (!m || pass_fd < 0) return -SHMX_EINVAL;
    uint8_t b[SHMX_EXTENT_BYTES];
    put32(b, SHMX_EXTENT_MAGIC);
    put16(b + 4, SHMX_BOOTSTRAP_VERSION);
    put16(b + 6, 0);
    put32(b + 8, m->id);
    put32(b + 12, m->cls);
    put32(b + 16, m->first_index);
    put32(b + 20, m->slot_count);
    put64(b + 24, m->bytes);
    put64(b + 32, 0);
    return send_msg(fd, b, sizeof b, pass_fd);
}

int shmx_bootstrap_recv_extent(int fd, int64_t deadline_ns, shmx_extent_msg_t *out, int *fd_out) {
    if (!out || !fd_out) return -SHMX_EINVAL;
    *fd_out = -1;
    uint8_t b[SHMX_EXTENT_BYTES];
    int fds[MAX_RECV_FDS];
    int nfds;
    int rc = recv_exact(fd, b, sizeof b, deadline_ns, fds, MAX_RECV_FDS, &nfds);
    if (rc == 0 && (get32(b) != SHMX_EXTENT_MAGIC || get16(b + 4) != SHMX_BOOTSTRAP_VERSION ||
                    get16(b + 6) != 0 || get64(b + 32) != 0 || nfds < 1))
        rc = -SHMX_EPROTO;
    if (rc < 0) {
        close_fds(fds, nfds);
        return rc == -ECONNRESET ? -SHMX_EHOSTGONE : rc;
    }
    out->id = get32(b + 8);
    out->cls = get32(b + 12);
    out->first_index = get32(b + 16);
    out->slot_count = get32(b + 20);
    out->bytes = get64(b + 24);
    *fd_out = fds[0];
    close_fds(fds + 1, nfds - 1); /* one extent, one fd */
    return 0;
}

/* ------------------------------------------------------------------------ */
/* bells */

int shmx_bootstrap_send_bells(int fd, const int bells[2]) {
    if (!bells || bells[0] < 0 || bells[1] < 0) return -SHMX_EINVAL;
    uint8_t b[SHMX_BELLS_BYTES];
    put32(b, SHMX_BELLS_MAGIC);
    put16(b + 4, SHMX_BOOTSTRAP_VERSION);
    put16(b + 6, 2);
    put64(b + 8, 0);
    return send_msg_fds(fd, b, sizeof b, bells, 2);
}

int shmx_bootstrap_recv_bells(int fd, int64_t deadline_ns, int bells_out[2]) {
    if (!bells_out) return -SHMX_EINVAL;
    bells_out[0] = bells_out[1] = -1;
    uint8_t b[SHMX_BELLS_BYTES];
    int fds[MAX_RECV_FDS];
    int nfds;
    int rc = recv_exact(fd, b, sizeof b, deadline_ns, fds, MAX_RECV_FDS, &nfds);
    if (rc == 0 && (get32(b) != SHMX_BELLS_MAGIC || get16(b + 4) != SHMX_BOOTSTRAP_VERSION ||
                    get16(b + 6) != 2 || get64(b + 8) != 0 || nfds < 2))
        rc = -SHMX_EPROTO;
    if (rc < 0) {
        close_fds(fds, nfds);
        return rc == -ECONNRESET ? -SHMX_EHOSTGONE : rc;
    }
    bells_out[0] = fds[0];
    bells_out[1] = fds[1];
    close_fds(fds + 2, nfds - 2); /* two bells, no more */
    return 0;
}

ssize_t shmx_bootstrap_read_some(int fd, uint8_t *buf, size_t len) {
    int none = 0, truncated = 0;
    /* Nothing a guest sends carries descriptors: recv_some closes whatever came. */
    return recv_some(fd, buf, len, NULL, 0, &none, &truncated);
}

int shmx_bootstrap_peer_cred(int fd, uid_t *uid, pid_t *pid) {
    if (!uid || !pid) return -SHMX_EINVAL;
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return -errno;
    if (len != sizeof cr) return -SHMX_EPROTO;
    *uid = cr.uid;
    *pid = cr.pid;
    return 0;
}
