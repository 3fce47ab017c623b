/*
 * Spawned guests (see shmx/spawn.h).
 *
 * Order matters: the host's welcome and extent announcements are written
 * into the socketpair before the child exists, so the child finds its whole
 * start-up already queued; the parent keeps its copy of the child's end open
 * until the child's pidfd is being watched, so the host cannot see the
 * socket hang up (a "death") before it can tell that the process exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_internal.h"
#include "shmx/errors.h"
#include "shmx/spawn.h"
#include "ticket.h"
#include "wait.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* waitid on a pidfd (Linux 5.4); older libc headers lack the name */
#endif

extern char **environ;

struct shmx_child {
    pid_t pid;
    int pidfd;  /* -1 once reaped */
    int reaped;
    int status; /* the wait status, once reaped */
};

/* A siginfo from waitid as waitpid's status word. */
static int wait_status(const siginfo_t *si) {
    if (si->si_code == CLD_EXITED) return (si->si_status & 0xff) << 8;
    return (si->si_status & 0x7f) | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

/* ---- the environment ------------------------------------------------------------- */

/*
 * @base without any SHMX_TICKET, plus @ticket_var; NULL-terminated. One
 * allocation: the caller frees the array only (the strings are borrowed).
 */
static char **child_env(const char *const *base, char *ticket_var) {
    size_t n = 0;
    while (base[n] != NULL) n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (env == NULL) return NULL;
    size_t k = 0;
    size_t name_len = strlen(SHMX_TICKET_ENV);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(base[i], SHMX_TICKET_ENV, name_len) == 0 && base[i][name_len] == '=') continue;
        env[k++] = (char *)base[i]; /* posix_spawn's prototype lacks the const; it does not write */
    }
    env[k++] = ticket_var;
    env[k] = NULL;
    return env;
}

/* ---- spawn ------------------------------------------------------------------------- */

/* Start the program with the ticket end as SHMX_SPAWN_TICKET_FD. Returns 0 or -errno (posix_spawn's). */
static int start(const char *path, const char *const argv[], const shmx_spawn_options_t *opts, int child_end,
                 char **env, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return -rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -rc;
    }
    /* dup2 clears close-on-exec on the copy in the child only (also when child_end is already 3). */
    rc = posix_spawn_file_actions_adddup2(&fa, child_end, SHMX_SPAWN_TICKET_FD);
    /* Whatever the application left inheritable stays with it: the child gets 0, 1, 2 and its ticket. */
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, SHMX_SPAWN_TICKET_FD + 1);
    if (rc == 0 && opts != NULL && opts->cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
    /* A JVM or a server may block or ignore signals; a fresh program should start clean. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawnp(pid, path, &fa, &attr, (char *const *)argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* A child we cannot hand out: end it and reap it (its pid is still ours: nobody else can reap it). */
static void discard(pid_t pid) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

int shmx_host_spawn(shmx_host_t *host, const char *path, const char *const argv[], const shmx_spawn_options_t *opts,
                    shmx_channel_t **channel_out, shmx_child_t **child_out) {
    if (channel_out) *channel_out = NULL;
    if (child_out) *child_out = NULL;
    if (!host || !path || !path[0] || !argv || !argv[0] || !channel_out || !child_out ||
        (opts != NULL && opts->flags != 0))
        return -SHMX_EINVAL;

    shmx_child_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->pidfd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        int err = errno;
        free(c);
        return -err;
    }
    /* The host's end behaves like an accepted connection (nonblocking); the child's end keeps its own flags. */
    int fl = fcntl(sv[0], F_GETFL);
    if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) != 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        free(c);
        return -err;
    }
    shmx_channel_t *ch = NULL;
    int rc = shmx_host_admit_socket(host, sv[0], SHMX_TRANSPORT_SHM, &ch); /* owns sv[0] from here */
    if (rc < 0) {
        close(sv[1]);
        free(c);
        return rc;
    }

    char ticket[80];
    int len = snprintf(ticket, sizeof ticket, "%s=", SHMX_TICKET_ENV);
    rc = shmx_ticket_format(ticket + len, sizeof ticket - (size_t)len, shmx_channel_index(ch),
                            shmx_channel_epoch(ch), SHMX_SPAWN_TICKET_FD);
    char **env = NULL;
    if (rc >= 0) {
        env = child_env(opts != NULL && opts->envp != NULL ? opts->envp : (const char *const *)environ, ticket);
        rc = env != NULL ? 0 : -ENOMEM;
    }
    pid_t pid = -1;
    if (rc == 0) rc = start(path, argv, opts, sv[1], env, &pid);
    free(env);
    if (rc < 0) goto fail; /* nothing ran */

    /* The child is unreaped, so its pid cannot name anything else yet. */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int watch_fd = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 0) : -1;
    rc = watch_fd >= 0 ? 0 : -errno;
    if (rc == 0) rc = shmx_host_watch_child(host, ch, pid, watch_fd); /* owns watch_fd */
    if (rc < 0) {
        if (pidfd >= 0) close(pidfd);
        discard(pid);
        goto fail;
    }
    close(sv[1]); /* now the child holds the only copy: its exit hangs the socket up */
    c->pid = pid;
    c->pidfd = pidfd;
    *channel_out = ch;
    *child_out = c;
    return 0;

fail:
    /* The channel first: our copy of the child's end keeps the service thread from taking
     * the hang-up for a guest's death and reporting it. The entry is given out again once
     * that copy is closed (host.c reaps it when it looks for a free entry). */
    shmx_channel_free(ch);
    close(sv[1]);
    free(c);
    return rc;
}

/* ---- the child's handle --------------------------------------------------------------- */

pid_t shmx_child_pid(const shmx_child_t *c) { return c ? c->pid : -1; }

int shmx_child_pidfd(const shmx_child_t *c) { return c ? c->pidfd : -1; }

/* Reap with @flags (WNOHANG or 0). 1 if reaped, 0 if still running (WNOHANG), or -errno. */
static int reap(shmx_child_t *c, int flags) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)c->pidfd, &si, WEXITED | flags);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return -errno;
    if (si.si_pid == 0) return 0;
    c->status = wait_status(&si);
    c->reaped = 1;
    close(c->pidfd);
    c->pidfd = -1;
    return 1;
}

int shmx_child_wait(shmx_child_t *c, int64_t timeout_ns, int *status) {
    if (!c) return -SHMX_EINVAL;
    if (!c->reaped) {
        /* Poll first, so that the wait is bounded and an interrupted one resumes with what is left. */
        int64_t deadline = shmx_deadline(timeout_ns);
        for (;;) {
            int ms;
            if (deadline == INT64_MAX) {
                ms = -1;
            } else {
                int64_t left = deadline - shmx_now_ns();
                ms = left <= 0 ? 0 : left / 1000000 >= 0x7fffffff ? 0x7fffffff : (int)((left + 999999) / 1000000);
            }
            struct pollfd p = {.fd = c->pidfd, .events = POLLIN, .revents = 0};
            int n = poll(&p, 1, ms);
            if (n > 0) break;
            if (n == 0) return -ETIMEDOUT;
            if (errno != EINTR) return -errno;
        }
        int rc = reap(c, WNOHANG); /* readable: it has exited */
        if (rc == 0) return -ETIMEDOUT; /* cannot happen after POLLIN; no need to block on it */
        if (rc < 0) return rc;
    }
    if (status) *status = c->status;
    return 0;
}

int shmx_child_kill(shmx_child_t *c, int sig) {
    if (!c || c->reaped) return -SHMX_EINVAL;
    return syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) == 0 ? 0 : -errno;
}

void shmx_child_free(shmx_child_t *c) {
    if (!c) return;
    if (!c->reaped) {
        (void)reap(c, WNOHANG); /* an exited child leaves no zombie; a running one is left alone */
        if (c->pidfd >= 0) close(c->pidfd);
    }
    free(c);
}
