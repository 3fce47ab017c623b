/*
 * Named resources: the lock file that makes a host's name its own, the
 * record in it, and listing and cleaning this user's hosts (see
 * include/shmx/names.h for the contract).
 *
 * Choices worth knowing:
 * - Open file description locks (F_OFD_*), not flock or POSIX locks: a POSIX
 *   lock belongs to the process, so a second claim from the same process (a
 *   JVM hosting two names, a test) would silently succeed, and any close() of
 *   another descriptor of the file would drop it. An OFD lock belongs to the
 *   one description we opened, conflicts with every other, even in this
 *   process, and dies with its last descriptor, whatever kills the host.
 * - Lock files are removed by their holder only, while it holds the lock.
 *   A claimer that locked a file another holder unlinked meanwhile would hold
 *   a lock on nothing; so every claim checks after locking that the path
 *   still names the file it locked, and starts over if not.
 * - Directory entries are reached with *at() calls on a descriptor of the
 *   socket directory, opened O_NOFOLLOW and checked once, and every file is
 *   opened O_NOFOLLOW and checked with fstat before anything else.
 * - A named segment file is guarded with a read lock by its host (taken by
 *   shmx_names_record), and removed by a claimer or clean only while it holds
 *   a write lock on it: a segment in use by a host of another socket
 *   directory is never removed, whatever that directory is.
 */
#include "shmx/names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"
#include "shmx/config.h"
#include "shmx/errors.h"

#define DEFAULT_SHM_DIR "/dev/shm"
#define BOOT_ID_CHARS 36u
#define BOOT_TAG_CHARS 8u      /* segment file names carry this much of the boot id (segment.c) */
#define RECORD_MAX 1024u
#define CLAIM_ATTEMPTS 64      /* each retry means a holder released in between: a few at most */
#define RECORD_MAGIC "shmx-names"

/* Where one call looks: the socket directory (an open, checked descriptor) and the segment directory. */
typedef struct where {
    char sock_dir[SHMX_NAMES_PATH_MAX];
    char shm_dir[SHMX_NAMES_PATH_MAX];
    int dirfd;                   /* -1: the socket directory does not exist (list only) */
    uid_t uid;
    char boot[BOOT_ID_CHARS + 1]; /* this boot's id, "" when unreadable */
} where_t;

typedef struct vec {
    shmx_names_entry_t *v;
    size_t n, cap;
} vec_t;

/* ------------------------------------------------------------------------ */
/* small helpers */

static int read_boot_id(char out[BOOT_ID_CHARS + 1]) {
    out[0] = '\0';
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, out, BOOT_ID_CHARS);
    int err = errno;
    close(fd);
    if (n < 0) return -err;
    if ((size_t)n != BOOT_ID_CHARS) {
        out[0] = '\0';
        return -EIO;
    }
    out[BOOT_ID_CHARS] = '\0';
    return 0;
}

/* @dir/@file@suffix into @buf, or -ENAMETOOLONG (and @buf untouched). */
static int join(char *buf, size_t len, const char *dir, const char *file, const char *suffix) {
    size_t d = strlen(dir), f = strlen(file), s = strlen(suffix);
    if (d + 1 + f + s >= len) return -ENAMETOOLONG;
    memcpy(buf, dir, d);
    buf[d] = '/';
    memcpy(buf + d + 1, file, f);
    memcpy(buf + d + 1 + f, suffix, s + 1);
    return 0;
}

static int copy_str(char *dst, size_t len, const char *src) {
    size_t n = strlen(src);
    if (n >= len) return -ENAMETOOLONG;
    memcpy(dst, src, n + 1);
    return 0;
}

/* Whole-file OFD lock operation @cmd with @type. 0 or -errno (-EAGAIN: someone else holds a conflicting one). */
static int ofd(int fd, int cmd, short type, short *found) {
    struct flock fl;
    memset(&fl, 0, sizeof fl); /* l_pid must be 0 for OFD locks */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, cmd, &fl) != 0) return errno == EACCES ? -EAGAIN : -errno;
    if (found) *found = fl.l_type;
    return 0;
}

/* 1 if another open file description (or a process's POSIX lock) holds a lock on @fd's file, 0 if none, -errno. */
static int held_by_other(int fd) {
    short t = F_UNLCK;
    int rc = ofd(fd, F_OFD_GETLK, F_WRLCK, &t);
    if (rc < 0) return rc;
    return t != F_UNLCK;
}

/* A file a host of ours could have made: a regular file of this user. */
static int own_regular(const struct stat *st, uid_t uid) { return S_ISREG(st->st_mode) && st->st_uid == uid; }

static int lock_file_ok(const struct stat *st, uid_t uid) {
    return own_regular(st, uid) && (st->st_mode & 07777) == 0600;
}

/* "NAME" + @suffix in @d_name: copies NAME into @name and returns 1 if it is a valid host name. */
static int split_name(const char *d_name, const char *suffix, char name[SHMX_NAMES_NAME_MAX]) {
    size_t n = strlen(d_name), s = strlen(suffix);
    if (n <= s || strcmp(d_name + n - s, suffix) != 0 || n - s >= SHMX_NAMES_NAME_MAX) return 0;
    memcpy(name, d_name, n - s);
    name[n - s] = '\0';
    return shmx_name_check(name) == 0;
}

/* "shmx-UID-BOOTTAG-NAME": copies the boot tag and NAME and returns 1 if @d_name is one of this user's segments. */
static int split_segment(const char *d_name, uid_t uid, char tag[BOOT_TAG_CHARS + 1], char name[SHMX_NAMES_NAME_MAX]) {
    char prefix[32];
    int p = snprintf(prefix, sizeof prefix, "shmx-%u-", (unsigned)uid);
    if (strncmp(d_name, prefix, (size_t)p) != 0) return 0;
    const char *t = d_name + p;
    if (strlen(t) < BOOT_TAG_CHARS + 2 || t[BOOT_TAG_CHARS] != '-') return 0;
    memcpy(tag, t, BOOT_TAG_CHARS);
    tag[BOOT_TAG_CHARS] = '\0';
    const char *nm = t + BOOT_TAG_CHARS + 1;
    if (strlen(nm) >= SHMX_NAMES_NAME_MAX) return 0;
    strcpy(name, nm);
    return shmx_name_check(name) == 0;
}

static int same_boot(const where_t *w, const char *tag) {
    return w->boot[0] != '\0' && strncmp(w->boot, tag, BOOT_TAG_CHARS) == 0;
}

/* 1: a host accepts on the socket at @path; 0: nobody listens; < 0: -errno. */
static int socket_live(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (copy_str(a.sun_path, sizeof a.sun_path, path) < 0) return 0; /* never bindable, so nobody listens */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int rc = connect(fd, (const struct sockaddr *)&a, sizeof a);
    int err = rc == 0 ? 0 : errno;
    close(fd);
    if (rc == 0 || err == EAGAIN) return 1; /* EAGAIN: alive, its backlog is full */
    if (err == ECONNREFUSED || err == ENOENT) return 0;
    return -err;
}

static int vec_push(vec_t *v, const shmx_names_entry_t *e) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        shmx_names_entry_t *p = realloc(v->v, cap * sizeof *p);
        if (!p) return -ENOMEM;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = *e;
    return 0;
}

/* Copies what fits into @out; returns the whole count (clamped to INT_MAX). */
static int hand_out(const vec_t *v, shmx_names_entry_t *out, int max) {
    size_t k = max > 0 && out ? ((size_t)max < v->n ? (size_t)max : v->n) : 0;
    if (k) memcpy(out, v->v, k * sizeof *out);
    return v->n > INT_MAX ? INT_MAX : (int)v->n;
}

/* ------------------------------------------------------------------------ */
/* the directories */

/*
 * Open and check the socket directory (@socket_dir, or the default one,
 * created 0700 when @create), and note the segment directory and this boot.
 * A missing socket directory is fine when not @create: dirfd is then -1.
 */
static int where_open(where_t *w, const char *socket_dir, const char *shm_dir, int create) {
    memset(w, 0, sizeof *w);
    w->dirfd = -1;
    w->uid = geteuid();
    (void)read_boot_id(w->boot); /* unknown boot: nothing is judged by it */
    int rc = copy_str(w->shm_dir, sizeof w->shm_dir, shm_dir ? shm_dir : DEFAULT_SHM_DIR);
    if (rc < 0) return rc;
    if (socket_dir) {
        rc = copy_str(w->sock_dir, sizeof w->sock_dir, socket_dir);
    } else {
        rc = shmx_socket_dir(w->sock_dir, sizeof w->sock_dir, create);
        if (rc >= 0) rc = 0;
    }
    if (rc < 0) return rc;
    w->dirfd = open(w->sock_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (w->dirfd < 0) {
        rc = errno;
        if (rc == ENOENT && !create) return 0;
        return (rc == ELOOP || rc == ENOTDIR) ? -SHMX_EPERMS : -rc;
    }
    struct stat st;
    if (fstat(w->dirfd, &st) != 0) rc = -errno;
    else if (st.st_uid != w->uid || (st.st_mode & 077) != 0) rc = -SHMX_EPERMS; /* ours and closed to others */
    if (rc < 0) {
        close(w->dirfd);
        w->dirfd = -1;
    }
    return rc;
}

static void where_close(where_t *w) {
    if (w->dirfd >= 0) close(w->dirfd);
    w->dirfd = -1;
}

/* ------------------------------------------------------------------------ */
/* segments */

/*
 * Remove this user's segment @file (in the segment directory) unless some
 * host guards it: with @check_guard, only while we hold a write lock on it,
 * so that a host cannot guard it meanwhile. Returns 1 removed, 0 kept, -errno.
 */
static int remove_segment(const where_t *w, int shm_fd, const char *file, int check_guard) {
    int fd = openat(shm_fd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    struct stat st, now;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && !own_regular(&st, w->uid)) rc = 1; /* not a segment of ours: never touched */
    if (rc == 0 && check_guard) rc = ofd(fd, F_OFD_SETLK, F_WRLCK, NULL); /* -EAGAIN: a host guards it */
    if (rc == 0) {
        /* Remove only the file we checked: the name may have been replaced since we opened it. */
        rc = fstatat(shm_fd, file, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_dev == st.st_dev &&
             now.st_ino == st.st_ino && unlinkat(shm_fd, file, 0) == 0;
    } else {
        rc = rc == 1 || rc == -EAGAIN ? 0 : rc;
    }
    close(fd); /* drops our write lock */
    return rc;
}

/* Remove @name's stale segments: of other boots, and this boot's unguarded one. The first removed goes to @removed. */
static int remove_name_segments(const where_t *w, const char *name, char removed[SHMX_NAMES_PATH_MAX]) {
    int shm_fd = open(w->shm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shm_fd < 0) return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(dup(shm_fd));
    if (!d) {
        int rc = -errno;
        close(shm_fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    char tag[BOOT_TAG_CHARS + 1], nm[SHMX_NAMES_NAME_MAX];
    while ((de = readdir(d)) != NULL) {
        if (!split_segment(de->d_name, w->uid, tag, nm) || strcmp(nm, name) != 0) continue;
        int r = remove_segment(w, shm_fd, de->d_name, same_boot(w, tag));
        if (r == 1 && removed && removed[0] == '\0') (void)join(removed, SHMX_NAMES_PATH_MAX, w->shm_dir, de->d_name, "");
        if (r < 0 && rc == 0) rc = r;
    }
    closedir(d);
    close(shm_fd);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* claim and release */

static void release_lock(shmx_names_lock_t *l) {
    struct stat st;
    /* Unlink only while we hold the lock, and only the file we locked. */
    if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino) unlink(l->path);
    if (l->segment_fd >= 0) close(l->segment_fd);
    close(l->fd);
    l->held = 0;
    l->fd = -1;
    l->segment_fd = -1;
}

void shmx_names_release(shmx_names_lock_t *l) {
    if (!l || !l->held) return;
    release_lock(l);
}

/* Open NAME.lock (creating it 0600 if missing), check it and write-lock it; 0 or a negative code. */
static int lock_name(const where_t *w, const char *name, shmx_names_lock_t *l, int *existed) {
    char file[SHMX_NAMES_NAME_MAX + 8];
    snprintf(file, sizeof file, "%s.lock", name);
    memset(l, 0, sizeof *l);
    l->fd = l->segment_fd = -1;
    int rc = join(l->path, sizeof l->path, w->sock_dir, file, "");
    if (rc < 0) return rc;
    for (int attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
        int created = 1;
        int fd = openat(w->dirfd, file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            created = 0;
            fd = openat(w->dirfd, file, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0 && errno == ENOENT) continue; /* its holder just released it */
        }
        if (fd < 0) return errno == ELOOP ? -SHMX_EPERMS : -errno;
        struct stat st, now;
        if (created && fchmod(fd, 0600) != 0) rc = -errno; /* the umask may have narrowed it */
        else if (fstat(fd, &st) != 0) rc = -errno;
        else if (!lock_file_ok(&st, w->uid)) rc = -SHMX_EPERMS;
        else if ((rc = ofd(fd, F_OFD_SETLK, F_WRLCK, NULL)) == -EAGAIN) rc = -EADDRINUSE;
        if (rc < 0) {
            close(fd);
            return rc;
        }
        /* Locked: is it still the file under the name, or did its last holder unlink it meanwhile? */
        if (fstatat(w->dirfd, file, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != st.st_dev ||
            now.st_ino != st.st_ino) {
            close(fd);
            continue;
        }
        l->held = 1;
        l->fd = fd;
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        if (existed) *existed = !created;
        return 0;
    }
    return -EAGAIN;
}

/*
 * Take @name and remove its stale leftovers (see shmx_names_claim). With
 * @keep the lock stays held in @l for a host; without, it is released (and
 * its file removed) at once, as clean does. @removed, if set, gets the paths
 * removed. Returns 0 or a negative code.
 */
static int take_name(const where_t *w, const char *name, shmx_names_lock_t *l, int keep, shmx_names_entry_t *removed) {
    int existed = 0;
    int rc = lock_name(w, name, l, &existed);
    if (rc < 0) return rc;
    char sock[SHMX_NAMES_NAME_MAX + 8], path[SHMX_NAMES_PATH_MAX];
    snprintf(sock, sizeof sock, "%s.sock", name);
    struct stat st;
    if (fstatat(w->dirfd, sock, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == w->uid &&
        join(path, sizeof path, w->sock_dir, sock, "") == 0) {
        /* Nobody of this version can listen without our lock; a host of an older one can. */
        int live = socket_live(path);
        if (live != 0) {
            release_lock(l);
            return live > 0 ? -EADDRINUSE : live;
        }
        if (unlinkat(w->dirfd, sock, 0) == 0 && removed) (void)copy_str(removed->socket_path, sizeof path, path);
    }
    /* Best effort: a stale segment left behind makes a named host fail at creation with -EEXIST, clearly. */
    (void)remove_name_segments(w, name, removed ? removed->segment_path : NULL);
    if (removed && existed) (void)copy_str(removed->lock_path, sizeof removed->lock_path, l->path);
    if (!keep) {
        release_lock(l);
        return 0;
    }
    /* The dead host's record must not be shown as ours until we write our own. */
    if (ftruncate(l->fd, 0) != 0) {
        rc = -errno;
        release_lock(l);
        return rc;
    }
    return 0;
}

int shmx_names_claim_in(const char *socket_dir, const char *shm_dir, const char *name, shmx_names_lock_t *out) {
    if (!out) return -SHMX_EINVAL;
    out->held = 0;
    int rc = shmx_name_check(name);
    if (rc < 0) return rc;
    where_t w;
    rc = where_open(&w, socket_dir, shm_dir, socket_dir == NULL);
    if (rc == 0) rc = take_name(&w, name, out, 1, NULL);
    where_close(&w);
    return rc;
}

int shmx_names_claim(const char *name, shmx_names_lock_t *out) { return shmx_names_claim_in(NULL, NULL, name, out); }

/* ------------------------------------------------------------------------ */
/* the record */

static int path_ok(const char *p) { return p && p[0] != '\0' && strlen(p) < SHMX_NAMES_PATH_MAX && !strchr(p, '\n'); }

/* Read-lock the named segment at @path for the host's life; returns the descriptor or a negative code. */
static int guard_segment(const char *path) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno == ELOOP ? -SHMX_EPERMS : -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) rc = -errno;
    else if (!own_regular(&st, geteuid())) rc = -SHMX_EPERMS;
    else if ((rc = ofd(fd, F_OFD_SETLK, F_RDLCK, NULL)) == -EAGAIN) rc = -EADDRINUSE; /* a clean is removing it */
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int shmx_names_record(shmx_names_lock_t *l, const shmx_names_info_t *info) {
    if (!l || !l->held || !info || !path_ok(info->socket_path)) return -SHMX_EINVAL;
    int named = info->segment_mode == SHMX_SEGMENT_NAMED;
    if (info->segment_mode != SHMX_SEGMENT_MEMFD && !named) return -SHMX_EINVAL;
    if (named && !path_ok(info->segment_path)) return -SHMX_EINVAL;
    char boot[BOOT_ID_CHARS + 1];
    if (read_boot_id(boot) < 0) strcpy(boot, "-");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char buf[RECORD_MAX];
    int n = snprintf(buf, sizeof buf, "%s %d\npid %ld\nboot %s\nstart %lld\nsegment %s %s\nsocket %s\n", RECORD_MAGIC,
                     SHMX_NAMES_RECORD_VERSION, (long)getpid(), boot, (long long)now.tv_sec,
                     named ? "named" : "memfd", named ? info->segment_path : "-", info->socket_path);
    if (n < 0 || (size_t)n >= sizeof buf) return -SHMX_EINVAL;
    if (named) {
        int fd = guard_segment(info->segment_path);
        if (fd < 0) return fd;
        if (l->segment_fd >= 0) close(l->segment_fd); /* the new guard is up before the old one goes */
        l->segment_fd = fd;
    }
    /* One write into a file emptied at claim: a reader sees nothing or the whole record. */
    if (ftruncate(l->fd, 0) != 0) return -errno;
    ssize_t w = pwrite(l->fd, buf, (size_t)n, 0);
    if (w < 0) return -errno;
    return w == n ? 0 : -EIO;
}

/* Parse a record into @e (pid, start, segment mode) and tell whether it is of this boot. */
static void parse_record(const where_t *w, const char *buf, shmx_names_entry_t *e) {
    int version = 0;
    char boot[BOOT_ID_CHARS + 2] = "", mode[16] = "";
    long long pid = 0, start = 0;
    for (const char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        /* Each line sets at most one field; lines a later version may add are skipped. */
        (void)(sscanf(line, RECORD_MAGIC " %d", &version) == 1 || sscanf(line, "pid %lld", &pid) == 1 ||
               sscanf(line, "boot %37s", boot) == 1 || sscanf(line, "start %lld", &start) == 1 ||
               sscanf(line, "segment %15s", mode) == 1);
    }
    if (version != SHMX_NAMES_RECORD_VERSION) return; /* empty (a host starting) or unknown: nothing to tell */
    e->pid = pid;
    e->start_time = start;
    e->segment_mode = strcmp(mode, "named") == 0 ? SHMX_SEGMENT_NAMED : SHMX_SEGMENT_MEMFD;
    if (strlen(boot) == BOOT_ID_CHARS && w->boot[0] != '\0') e->this_boot = strcmp(boot, w->boot) == 0;
}

/* ------------------------------------------------------------------------ */
/* list */

static shmx_names_entry_t *find(vec_t *v, const char *name, int (*fits)(const shmx_names_entry_t *, int), int arg) {
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i].name, name) == 0 && fits(&v->v[i], arg)) return &v->v[i];
    return NULL;
}

static int has_lock(const shmx_names_entry_t *e, int unused) {
    (void)unused;
    return e->lock_path[0] != '\0';
}

/* An entry of the socket directory with the same liveness and no segment yet. */
static int takes_segment(const shmx_names_entry_t *e, int live) {
    return e->segment_path[0] == '\0' && e->live == live && (e->lock_path[0] || e->socket_path[0]);
}

static int add_lock_entry(const where_t *w, const char *file, const char *name, vec_t *v) {
    int fd = openat(w->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno == ENOENT || errno == ELOOP ? 0 : -errno; /* gone, or a symlink: not a host's */
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -errno : 0;
    if (rc == 0 && lock_file_ok(&st, w->uid)) {
        shmx_names_entry_t e;
        memset(&e, 0, sizeof e);
        e.this_boot = -1;
        strcpy(e.name, name);
        rc = held_by_other(fd);
        if (rc >= 0) {
            e.live = rc;
            char buf[RECORD_MAX];
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            buf[n > 0 ? n : 0] = '\0';
            parse_record(w, buf, &e);
            if (e.live) e.this_boot = 1; /* a lock never outlives its boot */
            rc = join(e.lock_path, sizeof e.lock_path, w->sock_dir, file, "");
            if (rc == 0) rc = vec_push(v, &e);
        }
    }
    close(fd);
    return rc;
}

/* Every NAME.lock, then every NAME.sock (joined to its lock entry, or alone and probed). */
static int scan_socket_dir(const where_t *w, vec_t *v) {
    if (w->dirfd < 0) return 0;
    int fd = dup(w->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int rc = -errno;
        if (fd >= 0) close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    char name[SHMX_NAMES_NAME_MAX];
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (split_name(de->d_name, ".lock", name)) rc = add_lock_entry(w, de->d_name, name, v);
    rewinddir(d);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (!split_name(de->d_name, ".sock", name)) continue;
        if (fstatat(w->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
            st.st_uid != w->uid)
            continue;
        shmx_names_entry_t *e = find(v, name, has_lock, 0), alone;
        if (!e) {
            memset(&alone, 0, sizeof alone);
            e = &alone;
            strcpy(e->name, name);
            e->this_boot = -1;
        }
        rc = join(e->socket_path, sizeof e->socket_path, w->sock_dir, de->d_name, "");
        if (rc == 0 && e == &alone) {
            int live = socket_live(e->socket_path);
            e->live = live > 0;
            rc = vec_push(v, e);
        }
    }
    closedir(d);
    return rc;
}

/* This user's segments: joined to the entry of their name when they agree on liveness, else entries of their own. */
static int scan_segments(const where_t *w, vec_t *v) {
    DIR *d = opendir(w->shm_dir);
    if (!d) return errno == ENOENT || errno == EACCES ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    char tag[BOOT_TAG_CHARS + 1], name[SHMX_NAMES_NAME_MAX];
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!split_segment(de->d_name, w->uid, tag, name)) continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue; /* gone, or a symlink: not a segment of ours */
        struct stat st;
        int guarded = 0;
        if (fstat(fd, &st) == 0 && own_regular(&st, w->uid)) guarded = held_by_other(fd) > 0;
        else guarded = -1;
        close(fd);
        if (guarded < 0) continue;
        int this_boot = same_boot(w, tag);
        shmx_names_entry_t *e = this_boot ? find(v, name, takes_segment, guarded) : NULL, alone;
        if (!e) {
            memset(&alone, 0, sizeof alone);
            e = &alone;
            strcpy(e->name, name);
            e->live = guarded;
            e->this_boot = w->boot[0] ? this_boot : -1;
            e->segment_mode = SHMX_SEGMENT_NAMED;
        }
        rc = join(e->segment_path, sizeof e->segment_path, w->shm_dir, de->d_name, "");
        if (rc == 0 && e == &alone) rc = vec_push(v, e);
    }
    closedir(d);
    return rc;
}

static int list_all(const where_t *w, vec_t *v) {
    int rc = scan_socket_dir(w, v);
    return rc < 0 ? rc : scan_segments(w, v);
}

int shmx_names_list_in(const char *socket_dir, const char *shm_dir, shmx_names_entry_t *out, int max) {
    if (max < 0 || (max > 0 && !out)) return -SHMX_EINVAL;
    where_t w;
    int rc = where_open(&w, socket_dir, shm_dir, 0);
    vec_t v = {0};
    if (rc == 0) rc = list_all(&w, &v);
    if (rc == 0) rc = hand_out(&v, out, max);
    free(v.v);
    where_close(&w);
    return rc;
}

int shmx_names_list(shmx_names_entry_t *out, int max) { return shmx_names_list_in(NULL, NULL, out, max); }

/* ------------------------------------------------------------------------ */
/* clean */

static int done_before(const vec_t *v, size_t i) {
    for (size_t k = 0; k < i; k++)
        if (!v->v[k].live && strcmp(v->v[k].name, v->v[i].name) == 0 &&
            (v->v[k].lock_path[0] || v->v[k].socket_path[0] || v->v[k].this_boot != 0))
            return 1;
    return 0;
}

int shmx_names_clean_in(const char *socket_dir, const char *shm_dir, shmx_names_entry_t *out, int max) {
    if (max < 0 || (max > 0 && !out)) return -SHMX_EINVAL;
    where_t w;
    /* The default socket directory is made if missing: clean takes names' locks there. */
    int rc = where_open(&w, socket_dir, shm_dir, socket_dir == NULL);
    vec_t found = {0}, removed = {0};
    if (rc == 0) rc = list_all(&w, &found);
    int shm_fd = rc == 0 ? open(w.shm_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    /* First the segments of other boots: nobody of this boot can own one, so no lock is needed. */
    for (size_t i = 0; rc == 0 && shm_fd >= 0 && i < found.n; i++) {
        shmx_names_entry_t *e = &found.v[i];
        if (e->live || e->this_boot != 0 || e->lock_path[0] || e->socket_path[0] || !e->segment_path[0]) continue;
        const char *file = strrchr(e->segment_path, '/') + 1;
        if (remove_segment(&w, shm_fd, file, 0) == 1) rc = vec_push(&removed, e);
    }
    /* Then every other stale name, under its lock, exactly as a starting host would take it. */
    for (size_t i = 0; rc == 0 && i < found.n; i++) {
        shmx_names_entry_t *e = &found.v[i];
        if (e->live || (e->this_boot == 0 && !e->lock_path[0] && !e->socket_path[0]) || done_before(&found, i))
            continue;
        shmx_names_entry_t r;
        memset(&r, 0, sizeof r);
        strcpy(r.name, e->name);
        r.this_boot = e->this_boot;
        r.pid = e->pid;
        r.start_time = e->start_time;
        r.segment_mode = e->segment_mode;
        shmx_names_lock_t l;
        int t = take_name(&w, e->name, &l, 0, &r);
        if (t == -EADDRINUSE || t == -SHMX_EPERMS) continue; /* taken meanwhile, or not a file we may touch */
        if (t < 0) rc = t;
        else if (r.lock_path[0] || r.socket_path[0] || r.segment_path[0]) rc = vec_push(&removed, &r);
    }
    if (shm_fd >= 0) close(shm_fd);
    if (rc == 0) rc = hand_out(&removed, out, max);
    free(found.v);
    free(removed.v);
    where_close(&w);
    return rc;
}

int shmx_names_clean(shmx_names_entry_t *out, int max) { return shmx_names_clean_in(NULL, NULL, out, max); }
