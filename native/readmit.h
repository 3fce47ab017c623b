/*
 * Readmission after a quarantine: a process whose guest the host quarantined
 * waits before its next connection is admitted: 10 ms after its first
 * violation, twice as long after each further one (up to 1 s), and it is
 * forgotten once it stays clean for 10 s. Until then each admission of one
 * of its connections starts the wait again: one connection per wait. While
 * it waits, its connection is held by the host, unanswered, so a guest that
 * waits for its welcome (every guest must, to get the segment) waits asleep,
 * however it was written, and the connections of other processes are
 * admitted meanwhile. One connection per process is held: a newer one
 * replaces it (the host refuses the older with -SHMX_EBACKOFF). A process
 * thus makes the host pay for at most about one quarantine a second once it
 * has struck a few times, instead of as many as it can reconnect.
 * The longest wait is shorter than the 2 s a guest of this library gives a
 * host that has accepted it to answer (guest.c): a held guest whose
 * application keeps accepting is admitted late, not failed.
 *
 * Keyed by pid, as SO_PEERCRED reports it at connect time. A process that
 * forks a new one for every attempt is not slowed (forking is its own CPU
 * time, which the kernel's scheduler governs); a pid reused by an unrelated
 * process within the 10 s is held like the process it replaced. A process in
 * a pid namespace the host cannot see has pid 0 there and is never held.
 * SHMX_READMIT_PIDS
 * processes are remembered; one more that strikes while every entry holds a
 * connection is not. The host's own pid is never held: a guest in the host's
 * process can write the host's private memory anyway.
 *
 * A plain table, not thread-safe: the host calls it under its lock. Times are
 * CLOCK_MONOTONIC nanoseconds, passed in so that tests can drive them.
 */
#ifndef SHMX_READMIT_H
#define SHMX_READMIT_H

#include <stdint.h>
#include <sys/types.h>

#define SHMX_READMIT_PIDS 32u
#define SHMX_READMIT_FIRST_NS 10000000LL    /* the wait after a first violation */
#define SHMX_READMIT_MAX_NS 1000000000LL    /* the longest wait */
#define SHMX_READMIT_FORGET_NS 10000000000LL /* clean this long after its last violation: forgotten */

typedef struct shmx_readmit_entry {
    pid_t pid;        /* 0: a free entry */
    uint32_t strikes; /* violations in a row (none more than SHMX_READMIT_FORGET_NS apart) */
    int64_t until_ns; /* its connections wait until then */
    int64_t forget_ns;
    int held_sock;    /* the connection waiting for until_ns; -1 for none */
} shmx_readmit_entry_t;

typedef struct shmx_readmit {
    shmx_readmit_entry_t entry[SHMX_READMIT_PIDS];
    pid_t own_pid;
    uint64_t held_total; /* connections held so far */
} shmx_readmit_t;

/* shmx_readmit_init - an empty table; @own_pid (the host's) is never held. */
void shmx_readmit_init(shmx_readmit_t *r, pid_t own_pid);

/* shmx_readmit_fini - close every connection still held; the table is empty after. */
void shmx_readmit_fini(shmx_readmit_t *r);

/*
 * shmx_readmit_strike - a guest of process @pid was quarantined at @now: its
 * next connections wait (see above). Ignores pids <= 0 and the host's own.
 */
void shmx_readmit_strike(shmx_readmit_t *r, pid_t pid, int64_t now);

/*
 * shmx_readmit_hold - a new connection @sock of process @pid at @now. If the
 * process must wait, the table keeps @sock and returns 1; a connection of the
 * same process it kept before is then handed back in *@replaced (refuse it:
 * a process waits with one connection at a time), else *@replaced is -1.
 * Returns 0 (and keeps nothing) if the connection may be admitted now; a
 * process still remembered then waits again for its next one.
 */
int shmx_readmit_hold(shmx_readmit_t *r, pid_t pid, int sock, int64_t now, int *replaced);

/*
 * shmx_readmit_take_due - a held connection whose wait is over at @now,
 * handed back to be admitted (its process waits again for its next one), or
 * -1 if none; *@next is when the next one still held is due (INT64_MAX if
 * none is held).
 */
int shmx_readmit_take_due(shmx_readmit_t *r, int64_t now, int64_t *next);

#endif
