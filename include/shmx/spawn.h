/*
 * Spawned guests: a host starts a child process that is its guest from the
 * first instruction, without the bootstrap socket's name.
 *
 * shmx_host_spawn reserves a channel entry with a fresh epoch, writes the
 * welcome (with the segment fd) into one end of a socketpair and starts the
 * child with posix_spawn. The other end becomes the child's descriptor 3 and
 * the child's environment gets SHMX_TICKET=1:PEER:EPOCH:3, which
 * shmx_guest_attach_ticket reads. Only descriptors 0, 1, 2 and 3 reach the
 * child: every other descriptor of the parent is closed in the child, even
 * one the application left without close-on-exec. The child's process is
 * watched through a pidfd, so the host's peer listener learns of its exit
 * (SHMX_PEER_EXITED with the wait status) at once, even if the child handed
 * its descriptor on.
 *
 *   shmx_channel_t *ch;
 *   shmx_child_t *child;
 *   const char *argv[] = {"/usr/local/bin/worker", "--ticket", NULL};
 *   int rc = shmx_host_spawn(host, argv[0], argv, NULL, &ch, &child);
 *   ...                                     // serve ch like an accepted channel
 *   int status;
 *   rc = shmx_child_wait(child, -1, &status);
 *   shmx_channel_free(ch);
 *   shmx_child_free(child);
 */
#ifndef SHMX_SPAWN_H
#define SHMX_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "peer.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

/* The descriptor a spawned child finds its end of the bootstrap socket on (named by its ticket). */
#define SHMX_SPAWN_TICKET_FD 3

/* A child process started by shmx_host_spawn. */
typedef struct shmx_child shmx_child_t;

/* How to start the child (NULL options: all defaults). Zero-initialise it. */
typedef struct shmx_spawn_options {
    const char *const *envp; /* the child's environment, NULL-terminated; NULL: the host's (environ).
                                SHMX_TICKET is replaced either way */
    const char *cwd;         /* the child's working directory; NULL: the host's */
    uint32_t flags;          /* reserved, must be 0 */
} shmx_spawn_options_t;

/*
 * shmx_host_spawn - start @path with @argv as a guest of @host over shared
 * memory.
 * @path:  the program; without a '/' it is searched in the host's PATH (as
 *         execvp does); a relative path with a '/' is resolved in @opts->cwd
 *         if given.
 * @argv:  the argument vector, NULL-terminated; argv[0] is conventionally
 *         the program's name.
 * @opts:  environment and working directory, or NULL.
 * @channel_out: the host's side of the child's channel, exactly like one
 *         from shmx_host_accept (free it with shmx_channel_free).
 * @child_out: the child's handle (free it with shmx_child_free).
 * The child gets a reset signal mask and default signal actions. Until it
 * attaches, what the host sends waits in the ring. The child cannot be
 * reaped by anyone but its parent, so wait for it (shmx_child_wait) or it
 * stays a zombie once it exits; a SIGCHLD set to SIG_IGN by the application
 * breaks the exit status (the kernel reaps at once).
 * Returns 0 and sets both outputs, or -SHMX_EINVAL (NULL or bad arguments,
 * flags not 0), -SHMX_ETRANSPORT (the host serves no shared memory),
 * -SHMX_EFULL (no free channel entry), -ENOENT/-EACCES/-ENOEXEC/... (the
 * program could not be run: posix_spawn's error), -ENOSYS (no pidfd: Linux
 * before 5.3), -ENOMEM, or another -errno. On failure nothing is left: no
 * entry taken, no descriptor open, no child running.
 */
int shmx_host_spawn(shmx_host_t *host, const char *path, const char *const argv[], const shmx_spawn_options_t *opts,
                    shmx_channel_t **channel_out, shmx_child_t **child_out);

/* shmx_child_pid - the child's process id (valid as a name until it is reaped). */
pid_t shmx_child_pid(const shmx_child_t *child);

/*
 * shmx_child_pidfd - the child's pidfd (close-on-exec, owned by the handle):
 * readable once the child has exited, for poll/epoll. -1 after it was reaped
 * by shmx_child_wait.
 */
int shmx_child_pidfd(const shmx_child_t *child);

/*
 * shmx_child_wait - wait up to @timeout_ns (0: only look, < 0: without limit)
 * for the child to exit, reap it and store its wait status (as waitpid
 * reports it: WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG) in *@status
 * (may be NULL). Once reaped, every later call returns the same status at
 * once. One thread at a time per handle.
 * Returns 0, -ETIMEDOUT (still running), -ECHILD (someone else reaped it:
 * waitpid(-1) or SIGCHLD ignored), -SHMX_EINVAL, or another -errno.
 */
int shmx_child_wait(shmx_child_t *child, int64_t timeout_ns, int *status);

/*
 * shmx_child_kill - send signal @sig to the child through its pidfd: never
 * to another process that reused its pid. Returns 0, -ESRCH (it has
 * exited), -SHMX_EINVAL (no handle; or reaped already) or -errno.
 */
int shmx_child_kill(shmx_child_t *child, int sig);

/*
 * shmx_child_free - close the pidfd and free the handle. It neither kills nor
 * waits: a child that has already exited is reaped here; one still running
 * goes on, and once it exits it stays a zombie until the application reaps
 * its pid (waitpid) or exits. NULL is ignored.
 */
void shmx_child_free(shmx_child_t *child);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
