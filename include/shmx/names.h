/*
 * Named resources: which hosts of this user exist, which are alive, and
 * cleaning up after the dead ones.
 *
 * A host holds NAME.lock in its socket directory (see shmx_socket_path) for
 * its whole life, write-locked with an open file description lock
 * (F_OFD_SETLK). Liveness is that lock: the kernel drops it when the last
 * descriptor of the host's open file description closes, however the host
 * died, so no PID is ever trusted. While it holds the lock the host keeps one
 * text record in the file (version, pid, boot id, start time, segment mode
 * and path, socket path); the pid is only shown to people.
 *
 * A named segment (/dev/shm/shmx-UID-BOOT-NAME, BOOT being the first 8
 * characters of /proc/sys/kernel/random/boot_id) is read-locked by its host
 * through a descriptor of its own, so a segment whose host runs with another
 * socket directory (another XDG_RUNTIME_DIR) is still seen to be in use.
 *
 * Nothing here follows a symlink or touches a file that is not a regular
 * file (or socket) owned by this user.
 */
#ifndef SHMX_NAMES_H
#define SHMX_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

/* Room for every path this API reports, with its NUL. */
#define SHMX_NAMES_PATH_MAX 256
/* Room for a host name (1 to 64 characters) with its NUL. */
#define SHMX_NAMES_NAME_MAX 65
/* Version of the record a host writes into its lock file. */
#define SHMX_NAMES_RECORD_VERSION 1

/*
 * A claimed name. Fields are the library's; a zeroed struct (as calloc gives)
 * is "not held", so shmx_names_release on it does nothing.
 */
typedef struct shmx_names_lock {
    int held;        /* nonzero between a successful claim and the release */
    int fd;          /* the lock file, write-locked (OFD) */
    int segment_fd;  /* the named segment, read-locked (OFD) by shmx_names_record; -1 when none */
    dev_t dev;       /* the lock file we hold: release unlinks only that one */
    ino_t ino;
    char path[SHMX_NAMES_PATH_MAX]; /* the lock file */
} shmx_names_lock_t;

/* What a host writes into its record (shmx_names_record). */
typedef struct shmx_names_info {
    uint32_t segment_mode;    /* SHMX_SEGMENT_MEMFD or SHMX_SEGMENT_NAMED (shmx/config.h) */
    const char *segment_path; /* named mode: the segment file; NULL or "" otherwise */
    const char *socket_path;  /* where the host listens */
} shmx_names_info_t;

/*
 * One name found by shmx_names_list (or removed by shmx_names_clean): the
 * files of one host, or leftovers of one that has no lock file. A path is ""
 * when that file does not exist (for clean: was not removed).
 */
typedef struct shmx_names_entry {
    char name[SHMX_NAMES_NAME_MAX];
    int live;           /* 1: a host holds it (its lock; without a lock file: the socket accepts, or the segment is guarded) */
    int this_boot;      /* 1: of this boot, 0: of another boot, -1: unknown (no readable record) */
    int64_t pid;        /* the host's pid from its record, 0 when unknown; informational only */
    int64_t start_time; /* the host's start, CLOCK_REALTIME seconds from its record; 0 when unknown */
    uint32_t segment_mode; /* from the record: SHMX_SEGMENT_MEMFD or SHMX_SEGMENT_NAMED */
    char lock_path[SHMX_NAMES_PATH_MAX];
    char socket_path[SHMX_NAMES_PATH_MAX];
    char segment_path[SHMX_NAMES_PATH_MAX];
} shmx_names_entry_t;

/*
 * shmx_names_claim - take the name @name for a host about to start: create
 * (or open) NAME.lock in the socket directory (created 0700 if missing) and
 * write-lock it. Then remove that name's stale leftovers, and only that
 * name's: a socket nobody listens on, this user's named segments of @name
 * from another boot, and one of this boot that no host guards.
 * @out: set up on success; release it with shmx_names_release.
 * Returns 0, -EADDRINUSE (a live host has the name; also a host of an older
 * version listening on the socket without a lock), -SHMX_EINVAL (bad name or
 * NULL), -SHMX_EPERMS (the lock file or the socket directory is a symlink,
 * not a regular file/directory of this user, or has a mode other than 0600 /
 * 0700), -ENAMETOOLONG, or another -errno.
 */
int shmx_names_claim(const char *name, shmx_names_lock_t *out);

/*
 * shmx_names_claim_in - shmx_names_claim with explicit directories.
 * @socket_dir: the directory of NAME.lock and NAME.sock (must exist, be this
 *              user's and closed to others); NULL: the default (created if missing).
 * @shm_dir:    where named segments live; NULL: /dev/shm.
 * Returns as shmx_names_claim.
 */
int shmx_names_claim_in(const char *socket_dir, const char *shm_dir, const char *name, shmx_names_lock_t *out);

/*
 * shmx_names_record - write the host's record into the lock file held by
 * @l: this process's pid, the boot id, the current time, @info's segment
 * mode and paths. In named mode also opens the segment and read-locks it for
 * as long as @l is held, which tells list/clean/claim of any socket directory
 * that the segment is in use. May be called again; the last record stands.
 * Returns 0, -SHMX_EINVAL (@l not held, NULL, a path with a newline or too
 * long, named mode without a path), -SHMX_EPERMS (the segment is not a regular
 * file of this user), -EADDRINUSE (someone else holds a lock on the segment),
 * or -errno.
 */
int shmx_names_record(shmx_names_lock_t *l, const shmx_names_info_t *info);

/*
 * shmx_names_release - give the name back: unlink the lock file if it is
 * still the one @l locked (same device and inode), then close it, which drops
 * the lock and the segment guard. Idempotent; a zeroed or NULL @l is ignored.
 */
void shmx_names_release(shmx_names_lock_t *l);

/*
 * shmx_names_list - every host of this user in the socket directory, live or
 * stale, and stale leftovers without a lock file: a NAME.sock nobody listens
 * on, and this user's named segments (/dev/shm/shmx-UID-*) of another boot
 * or of no live host. Looks only; removes nothing. A socket without a lock
 * file is probed by connecting to it (a host of an older version accepts and
 * drops that connection).
 * @out: room for @max entries (may be NULL when @max is 0), filled in order:
 *       hosts with a lock file, sockets without one, segments without either.
 * Returns how many entries exist (more than @max: only @max were filed; call
 * again with more room), -SHMX_EPERMS (the socket directory is not a 0700
 * directory of this user), -SHMX_EINVAL, or -errno.
 */
int shmx_names_list(shmx_names_entry_t *out, int max);

/* shmx_names_list_in - shmx_names_list with explicit directories (NULL: the default, see shmx_names_claim_in). */
int shmx_names_list_in(const char *socket_dir, const char *shm_dir, shmx_names_entry_t *out, int max);

/*
 * shmx_names_clean - remove every stale entry shmx_names_list would show.
 * Race-free with hosts starting meanwhile: for each name it first takes the
 * name's lock itself, exactly as a starting host does, and removes files only
 * while it holds it; a name a host holds is skipped. A segment of another
 * boot is removed without a lock (no host of this boot can own it). A
 * segment some host guards, or that belongs to a name a live host holds, is
 * kept. Never follows a symlink; never touches another user's file.
 * @out: room for @max entries describing what was removed, one per name
 *       (only the paths that were removed are set); may be NULL when @max is 0.
 * Returns how many names had files removed (more than @max: only @max were
 * filed), -SHMX_EPERMS (bad socket directory), or -errno.
 */
int shmx_names_clean(shmx_names_entry_t *out, int max);

/* shmx_names_clean_in - shmx_names_clean with explicit directories (NULL: the default, see shmx_names_claim_in). */
int shmx_names_clean_in(const char *socket_dir, const char *shm_dir, shmx_names_entry_t *out, int max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
