/*
 * Waiting without burning a core: spin, yield, then sleep on a shared futex.
 *
 * Protocol (a Dekker pair, see shmx_waitpoint_t in layout.h):
 *   waiter:   waiters++; fence(seq_cst); s = seq (acquire);
 *             if (!ready) futex_wait(&seq, s); waiters--
 *   notifier: make the state change (release); fence(seq_cst);
 *             if (waiters) { seq++; futex_wake(&seq, all) }
 * The two fences pair: they order each side's store before its load of the
 * other side's word.
 * Either the notifier sees the waiter's announcement, or the waiter sees the
 * state change; a seq bump between the waiter's read and its sleep makes the
 * futex return at once. A busy pair never sees waiters and makes no system
 * call. Waiters re-check their condition after every wake, so garbage written
 * into seq or waiters by a peer costs wake-ups, never correctness.
 */
#ifndef SHMX_WAIT_H
#define SHMX_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* How a waiter spends its time before sleeping. */
typedef struct shmx_idle {
    uint32_t spin_iterations;  /* busy polls; UINT32_MAX: never sleep (busy-spin strategy) */
    uint32_t yield_iterations; /* sched_yield() polls after spinning */
} shmx_idle_t;

/* Condition a waiter waits for; returns nonzero when the wait is over. */
typedef int (*shmx_ready_fn)(void *arg);

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t shmx_now_ns(void);

/*
 * shmx_deadline - turn a relative timeout (0: none, < 0: forever) into an
 * absolute CLOCK_MONOTONIC deadline (INT64_MAX for forever).
 */
int64_t shmx_deadline(int64_t timeout_ns);

/* One pause of a spin loop (the CPU's spin-wait hint). */
static inline void shmx_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * shmx_futex_wait - sleep while *@word == @expected, at most until the
 * absolute CLOCK_MONOTONIC @deadline_ns (INT64_MAX: forever). Shared futex
 * (never FUTEX_PRIVATE_FLAG: the word lives in memory other processes map).
 * Returns 0 (woken or value changed), -ETIMEDOUT, or -EINTR.
 */
int shmx_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns);

/* shmx_futex_wake - wake up to @count sleepers on @word. Returns the number woken or -errno. */
int shmx_futex_wake(_Atomic uint32_t *word, int count);

/*
 * shmx_wait_until - wait for @ready(@arg) using @idle, sleeping on @wp.
 * @deadline_ns: absolute (shmx_deadline()).
 * Returns 0 once ready, -ETIMEDOUT if the deadline passed first.
 */
int shmx_wait_until(shmx_waitpoint_t *wp, shmx_ready_fn ready, void *arg, int64_t deadline_ns,
                    const shmx_idle_t *idle);

/*
 * shmx_wait_until_ex - shmx_wait_until that also says how it went: *@idled
 * (if @idled is not NULL) is 1 if the wait outlasted its spin phase (it
 * yielded or slept), 0 if it ended while spinning. Adaptive spinning
 * (channel.c) uses it to learn whether spinning pays on this channel.
 */
int shmx_wait_until_ex(shmx_waitpoint_t *wp, shmx_ready_fn ready, void *arg, int64_t deadline_ns,
                       const shmx_idle_t *idle, int *idled);

/*
 * shmx_waitpoint_notify - call after making a state change visible (release
 * store): wakes sleepers only if some announced themselves. Cheap when none did.
 */
void shmx_waitpoint_notify(shmx_waitpoint_t *wp);

/* shmx_waitpoint_notify_all - bump and wake unconditionally (close, shutdown). */
void shmx_waitpoint_notify_all(shmx_waitpoint_t *wp);

#endif
