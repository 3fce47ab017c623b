/* Spin, yield, then sleep on a shared futex; see wait.h for the protocol. */
#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t shmx_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t shmx_deadline(int64_t timeout_ns) {
    if (timeout_ns < 0) return INT64_MAX;
    int64_t now = shmx_now_ns();
    return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

int shmx_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline_ns) {
    struct timespec abs, *tsp = NULL;
    if (deadline_ns < 0) return -ETIMEDOUT; /* in the past; the kernel would say EINVAL */
    if (deadline_ns != INT64_MAX) {
        abs.tv_sec = deadline_ns / 1000000000LL;
        abs.tv_nsec = deadline_ns % 1000000000LL;
        tsp = &abs;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time; no FUTEX_PRIVATE_FLAG:
     * the word is shared with other processes. */
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) return 0;
    if (errno == EAGAIN) return 0; /* the word changed before we slept */
    return -errno;
}

int shmx_futex_wake(_Atomic uint32_t *word, int count) {
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
    return rc < 0 ? -errno : (int)rc;
}

int shmx_wait_until(shmx_waitpoint_t *wp, shmx_ready_fn ready, void *arg, int64_t deadline_ns,
                    const shmx_idle_t *idle) {
    return shmx_wait_until_ex(wp, ready, arg, deadline_ns, idle, NULL);
}

int shmx_wait_until_ex(shmx_waitpoint_t *wp, shmx_ready_fn ready, void *arg, int64_t deadline_ns,
                       const shmx_idle_t *idle, int *idled) {
    uint32_t spins = idle ? idle->spin_iterations : 0;
    uint32_t yields = idle ? idle->yield_iterations : 0;

    if (idled != NULL) *idled = 0;
    if (ready(arg)) return 0;
    if (shmx_now_ns() >= deadline_ns) return -ETIMEDOUT; /* a zero timeout tries exactly once */
    for (uint32_t i = 0; spins == UINT32_MAX || i < spins; i++) {
        if (ready(arg)) return 0;
        shmx_cpu_relax();
        /* Reading the clock costs ~20 ns: look at it only now and then. */
        if ((i & 1023u) == 1023u && shmx_now_ns() >= deadline_ns) return -ETIMEDOUT;
    }
    if (idled != NULL) *idled = 1;
    for (uint32_t i = 0; i < yields; i++) {
        if (ready(arg)) return 0;
        if (shmx_now_ns() >= deadline_ns) return -ETIMEDOUT;
        sched_yield();
    }
    for (;;) {
        /* Announce, fence, then read seq and re-check. The two seq_cst fences (this one and
         * the one in shmx_waitpoint_notify) make the Dekker pair hold in the C11 model:
         * either the notifier's load sees our announcement or our ready() sees its state
         * change. A seq_cst RMW alone does not order the plain or acquire loads inside
         * ready() after it (it happens to on x86, where the RMW is a full barrier). */
        atomic_fetch_add_explicit(&wp->waiters, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        /* Acquire: pairs with the release bump in shmx_waitpoint_notify; a bump we see
         * carries the notifier's state change, which ready() below then sees. */
        uint32_t seq = atomic_load_explicit(&wp->seq, memory_order_acquire);
        if (ready(arg)) {
            /* Relaxed: withdrawing only spares notifiers a wake; nothing is published. */
            atomic_fetch_sub_explicit(&wp->waiters, 1, memory_order_relaxed);
            return 0;
        }
        if (shmx_now_ns() >= deadline_ns) {
            atomic_fetch_sub_explicit(&wp->waiters, 1, memory_order_relaxed);
            return -ETIMEDOUT;
        }
        int rc = shmx_futex_wait(&wp->seq, seq, deadline_ns);
        atomic_fetch_sub_explicit(&wp->waiters, 1, memory_order_relaxed); /* relaxed: as above */
        /* Whatever woke us (a notify, a timeout, a signal, a peer scribbling on seq), the
         * condition is checked again before anything is believed. */
        if (ready(arg)) return 0;
        if (rc == -ETIMEDOUT || shmx_now_ns() >= deadline_ns) return -ETIMEDOUT;
    }
}

/*
 * A full barrier. On x86-64 a locked add to the stack orders stores before
 * later loads like MFENCE does, at a fraction of its cost on current AMD and
 * Intel cores (the Linux kernel's smp_mb() makes the same choice). It is the
 * only StoreLoad barrier on the hot path: one per commit and per release.
 */
static inline void full_fence(void) {
#if defined(__x86_64__)
    __asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc");
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

void shmx_waitpoint_notify(shmx_waitpoint_t *wp) {
    /* Orders the caller's state change before the waiters load: pairs with the
     * fence after the announce in shmx_wait_until. */
    full_fence();
    if (atomic_load_explicit(&wp->waiters, memory_order_relaxed) != 0) { /* relaxed: ordered by the fence */
        /* Release: pairs with the waiter's acquire load of seq. */
        atomic_fetch_add_explicit(&wp->seq, 1, memory_order_release);
        shmx_futex_wake(&wp->seq, INT_MAX);
    }
}

void shmx_waitpoint_notify_all(shmx_waitpoint_t *wp) {
    /* Seq_cst (so also release): pairs with the waiter's acquire load of seq; a waiter
     * that read seq before this bump finds the futex word changed and does not sleep. */
    atomic_fetch_add_explicit(&wp->seq, 1, memory_order_seq_cst);
    shmx_futex_wake(&wp->seq, INT_MAX);
}
