/*
 * Wait tests: the spin/yield/futex phases of shmx_wait_until, deadlines,
 * wake-ups across threads and processes (RELIABILITY W4: the futex must not
 * be private), the no-syscall fast path of shmx_waitpoint_notify, and a peer
 * scribbling on the wait point (W1).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

/* The private headers are C11; see the same shim in ring_test.cpp. */
#include "private_headers.h"

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kLong = 20000 * kMs; /* a wake-up must come long before this */

/* A wait point and a condition in memory another process can map. */
struct Shared {
    shmx_waitpoint_t wp;
    uint32_t flag;     /* the condition: nonzero when ready */
    uint32_t announce; /* the child is about to call the futex directly */
};

uint32_t load32(const volatile void *p) { return __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE); }
void store32(volatile void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE); }

struct Cond {
    Shared *s;
    std::atomic<int> calls{0};
};

int cond_ready(void *arg) {
    auto *c = static_cast<Cond *>(arg);
    c->calls.fetch_add(1, std::memory_order_relaxed);
    return load32(&c->s->flag) != 0;
}

/* Scheduler state of a task ('R', 'S', ...) from /proc, 0 if unreadable. */
char task_state(const std::string &stat_path) {
    FILE *f = std::fopen(stat_path.c_str(), "r");
    if (!f) return 0;
    char buf[512];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    const char *p = std::strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait (bounded) until the task has announced itself on @wp and sleeps in the kernel. */
bool wait_until_asleep(const shmx_waitpoint_t *wp, const volatile uint32_t *announce, const std::string &stat_path) {
    for (int64_t end = shmx_now_ns() + 10000 * kMs; shmx_now_ns() < end; usleep(500)) {
        bool announced = wp ? load32(&wp->waiters) != 0 : load32(announce) != 0;
        if (announced && task_state(stat_path) == 'S') return true;
    }
    return false;
}

/* Wait for a child with a bound; kill it if it overstays. Returns its wait status or -1. */
int reap(pid_t pid, int64_t bound_ns) {
    int status = 0;
    for (int64_t end = shmx_now_ns() + bound_ns; shmx_now_ns() < end; usleep(1000)) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0) return -1;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Scribbles random values into a wait point and wakes its futex, as a hostile peer would. */
class Scribbler {
public:
    explicit Scribbler(shmx_waitpoint_t *wp) : wp_(wp), t_([this] { run(); }) {}
    ~Scribbler() {
        stop_.store(true, std::memory_order_relaxed);
        t_.join();
    }

private:
    void run() {
        uint64_t x = 0x2545F4914F6CDD1Dull;
        for (int64_t end = shmx_now_ns() + 3000 * kMs; !stop_.load(std::memory_order_relaxed) && shmx_now_ns() < end;) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            store32(&wp_->seq, (uint32_t)x);
            store32(&wp_->waiters, (uint32_t)(x >> 32));
            shmx_futex_wake(&wp_->seq, INT_MAX);
            usleep(200);
        }
    }
    shmx_waitpoint_t *wp_;
    std::atomic<bool> stop_{false};
    std::thread t_;
};

}  // namespace

class WaitTest : public ::testing::Test {
protected:
    Shared *s = nullptr;
    int fd = -1;

    void SetUp() override {
        fd = memfd_create("shmx-wait-test", MFD_CLOEXEC);
        if (fd < 0) GTEST_SKIP() << "memfd_create unavailable: " << std::strerror(errno);
        ASSERT_EQ(0, ftruncate(fd, 4096));
        void *p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ASSERT_NE(MAP_FAILED, p);
        s = static_cast<Shared *>(p); /* zero-filled: seq 0, waiters 0, flag 0 */
        if (shmx_futex_wake(&s->wp.seq, 1) == -ENOSYS) /* nobody waits yet: a harmless probe */
            GTEST_SKIP() << "no futex system call";
    }
    void TearDown() override {
        if (s) munmap(s, 4096);
        if (fd >= 0) close(fd);
    }
};

TEST_F(WaitTest, ShouldReturnAtOnceWhenReady) {
    store32(&s->flag, 1);
    Cond c{s};
    shmx_idle_t idle{1000, 10};
    EXPECT_EQ(0, shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(kLong), &idle));
    EXPECT_EQ(1, c.calls.load());
    EXPECT_EQ(0u, load32(&s->wp.waiters));
    EXPECT_EQ(0u, load32(&s->wp.seq));
}

TEST_F(WaitTest, ShouldTimeOutWhenNeverReady) {
    const shmx_idle_t spin_yield{1000, 5};
    const shmx_idle_t sleep_now{0, 0};
    const shmx_idle_t busy{UINT32_MAX, 0};
    for (const shmx_idle_t *idle : {&spin_yield, &sleep_now, &busy, (const shmx_idle_t *)nullptr}) {
        Cond c{s};
        int64_t deadline = shmx_deadline(30 * kMs);
        EXPECT_EQ(-ETIMEDOUT, shmx_wait_until(&s->wp, cond_ready, &c, deadline, idle));
        EXPECT_GE(shmx_now_ns(), deadline) << "reported a timeout before the deadline";
        EXPECT_GT(c.calls.load(), 1);
        EXPECT_EQ(0u, load32(&s->wp.waiters)) << "announcement withdrawn";
    }
}

TEST_F(WaitTest, ShouldTryExactlyOnceWithZeroTimeout) {
    const shmx_idle_t spin_yield{1000, 5};
    const shmx_idle_t busy{UINT32_MAX, 0};
    for (const shmx_idle_t *idle : {&spin_yield, &busy, (const shmx_idle_t *)nullptr}) {
        Cond c{s};
        EXPECT_EQ(-ETIMEDOUT, shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(0), idle));
        EXPECT_EQ(1, c.calls.load());
        EXPECT_EQ(0u, load32(&s->wp.waiters)) << "never announced";
    }
    store32(&s->flag, 1);
    Cond c{s};
    EXPECT_EQ(0, shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(0), nullptr));
    EXPECT_EQ(1, c.calls.load());
}

TEST_F(WaitTest, ShouldTurnTimeoutsIntoDeadlines) {
    EXPECT_EQ(INT64_MAX, shmx_deadline(-1)) << "negative: forever";
    EXPECT_EQ(INT64_MAX, shmx_deadline(INT64_MIN));
    EXPECT_EQ(INT64_MAX, shmx_deadline(INT64_MAX)) << "saturates instead of overflowing";
    int64_t before = shmx_now_ns();
    int64_t zero = shmx_deadline(0);
    int64_t second = shmx_deadline(1000 * kMs);
    int64_t after = shmx_now_ns();
    EXPECT_GE(zero, before);
    EXPECT_LE(zero, after);
    EXPECT_GE(second, before + 1000 * kMs);
    EXPECT_LE(second, after + 1000 * kMs);
}

TEST_F(WaitTest, ShouldNotSleepInFutexWhenValueDiffersOrDeadlinePassed) {
    store32(&s->wp.seq, 5);
    EXPECT_EQ(0, shmx_futex_wait(&s->wp.seq, 4, shmx_deadline(kLong))) << "value changed: returns at once";
    EXPECT_EQ(-ETIMEDOUT, shmx_futex_wait(&s->wp.seq, 5, shmx_now_ns() - 1));
    EXPECT_EQ(-ETIMEDOUT, shmx_futex_wait(&s->wp.seq, 5, 0));
    EXPECT_EQ(-ETIMEDOUT, shmx_futex_wait(&s->wp.seq, 5, -1)) << "a deadline in the past, not EINVAL";
    EXPECT_EQ(-ETIMEDOUT, shmx_futex_wait(&s->wp.seq, 5, shmx_deadline(5 * kMs)));
}

TEST_F(WaitTest, ShouldNotBumpSeqWhenNobodyWaits) {
    /* waiters == 0: no seq bump and no wake, so a busy pair makes no system call. */
    for (int i = 0; i < 3; i++) shmx_waitpoint_notify(&s->wp);
    EXPECT_EQ(0u, load32(&s->wp.seq));
    store32(&s->wp.waiters, 1);
    shmx_waitpoint_notify(&s->wp);
    EXPECT_EQ(1u, load32(&s->wp.seq)) << "an announced waiter gets a bump";
    store32(&s->wp.waiters, 0);
    shmx_waitpoint_notify_all(&s->wp);
    EXPECT_EQ(2u, load32(&s->wp.seq)) << "notify_all bumps regardless";
}

TEST_F(WaitTest, ShouldWakeForeverSleeperFromAnotherThread) {
    Cond c{s};
    std::atomic<pid_t> tid{0};
    std::atomic<bool> done{false};
    int rc = 1;
    shmx_idle_t sleep_now{0, 0};
    std::thread waiter([&] {
        tid.store(gettid());
        rc = shmx_wait_until(&s->wp, cond_ready, &c, INT64_MAX, &sleep_now);
        done.store(true);
    });
    while (tid.load() == 0) std::this_thread::yield();
    bool asleep = wait_until_asleep(&s->wp, nullptr, "/proc/self/task/" + std::to_string(tid.load()) + "/stat");
    store32(&s->flag, 1);
    shmx_waitpoint_notify(&s->wp);
    for (int64_t end = shmx_now_ns() + kLong; !done.load() && shmx_now_ns() < end;) usleep(1000);
    bool woken = done.load();
    if (!woken) shmx_waitpoint_notify_all(&s->wp); /* rescue the thread so the test can end */
    waiter.join();
    EXPECT_TRUE(asleep) << "the waiter never slept on the futex";
    EXPECT_TRUE(woken) << "the notify did not wake the sleeper";
    EXPECT_EQ(0, rc);
    EXPECT_EQ(0u, load32(&s->wp.waiters));
}

TEST_F(WaitTest, ShouldKeepWaitingAfterASignal) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    struct sigaction old {};
    ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old)); /* no SA_RESTART: the futex returns EINTR */
    Cond c{s};
    std::atomic<pid_t> tid{0};
    int rc = 1;
    shmx_idle_t sleep_now{0, 0};
    std::thread waiter([&] {
        tid.store(gettid());
        rc = shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(kLong), &sleep_now);
    });
    while (tid.load() == 0) std::this_thread::yield();
    std::string stat = "/proc/self/task/" + std::to_string(tid.load()) + "/stat";
    EXPECT_TRUE(wait_until_asleep(&s->wp, nullptr, stat));
    int calls = c.calls.load();
    pthread_kill(waiter.native_handle(), SIGUSR1);
    for (int64_t end = shmx_now_ns() + 10000 * kMs; c.calls.load() == calls && shmx_now_ns() < end;) usleep(500);
    EXPECT_GT(c.calls.load(), calls) << "the signal should wake the futex and make the waiter re-check";
    EXPECT_TRUE(wait_until_asleep(&s->wp, nullptr, stat)) << "and then sleep again";
    store32(&s->flag, 1);
    shmx_waitpoint_notify(&s->wp);
    waiter.join();
    EXPECT_EQ(0, rc);
    sigaction(SIGUSR1, &old, nullptr);
}

TEST_F(WaitTest, ShouldWakeSleeperInAnotherProcessThroughWaitUntil) {
    /* RELIABILITY W4 through the real wait path. A private futex would leave the child
     * asleep until its long deadline; it then sees the flag, so the check is "returned
     * before the deadline", not the return code alone. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        Cond c{s};
        shmx_idle_t sleep_now{0, 0};
        int64_t deadline = shmx_deadline(kLong);
        int rc = shmx_wait_until(&s->wp, cond_ready, &c, deadline, &sleep_now);
        /* 0 woken; 1 ready only once the deadline passed (the private-futex symptom) */
        _exit(rc == 0 ? (shmx_now_ns() < deadline ? 0 : 1) : rc == -ETIMEDOUT ? 2 : 3);
    }
    bool asleep = wait_until_asleep(&s->wp, nullptr, "/proc/" + std::to_string(pid) + "/stat");
    store32(&s->flag, 1);
    shmx_waitpoint_notify(&s->wp);
    int status = reap(pid, kLong + 10000 * kMs);
    EXPECT_TRUE(asleep) << "the child never slept on the futex";
    ASSERT_NE(-1, status) << "child did not finish";
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status)) << "1: slept until its deadline (was the futex private?)";
}

TEST_F(WaitTest, ShouldWakeRawFutexSleeperInAnotherProcess) {
    /* RELIABILITY W4 on the futex calls themselves: the child is asleep (seen in /proc)
     * before the parent bumps the word, so only a shared wake can reach it. */
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        store32(&s->announce, 1);
        int rc = shmx_futex_wait(&s->wp.seq, 0, shmx_deadline(kLong));
        _exit(rc == 0 ? 0 : rc == -ETIMEDOUT ? 2 : 3);
    }
    bool asleep = wait_until_asleep(nullptr, &s->announce, "/proc/" + std::to_string(pid) + "/stat");
    store32(&s->wp.seq, 1);
    int woken = shmx_futex_wake(&s->wp.seq, INT_MAX);
    int status = reap(pid, kLong + 10000 * kMs);
    ASSERT_TRUE(asleep) << "the child never slept on the futex";
    EXPECT_EQ(1, woken) << "the wake did not find the other process's sleeper";
    ASSERT_NE(-1, status) << "child did not finish";
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status)) << "2: -ETIMEDOUT instead of woken";
}

TEST_F(WaitTest, ShouldStillTimeOutWhilePeerScribblesOnWaitPoint) {
    /* Spurious wakes and garbage seq/waiters (RELIABILITY W1): the waiter re-checks every
     * time, never reports ready falsely, never gives up before its deadline, and spends
     * CPU only per wake (it goes back to sleep; it never spins on the garbage). */
    Cond c{s};
    shmx_idle_t sleep_now{0, 0};
    int rc;
    int64_t deadline;
    struct timespec cpu0, cpu1;
    {
        Scribbler peer(&s->wp);
        deadline = shmx_deadline(300 * kMs);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
        rc = shmx_wait_until(&s->wp, cond_ready, &c, deadline, &sleep_now);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    }
    EXPECT_EQ(-ETIMEDOUT, rc);
    EXPECT_GE(shmx_now_ns(), deadline);
    EXPECT_GT(c.calls.load(), 2) << "woken spuriously and re-checked";
    int64_t cpu_ns = (cpu1.tv_sec - cpu0.tv_sec) * 1000000000LL + (cpu1.tv_nsec - cpu0.tv_nsec);
    EXPECT_LT(cpu_ns, 150 * kMs) << "a wake storm must not turn the wait into a spin";
}

TEST_F(WaitTest, ShouldStillSeeReadyWhilePeerScribblesOnWaitPoint) {
    Cond c{s};
    shmx_idle_t sleep_now{0, 0};
    int rc = 1;
    {
        Scribbler peer(&s->wp);
        std::thread waiter([&] { rc = shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(kLong), &sleep_now); });
        usleep(50000);
        store32(&s->flag, 1);
        shmx_waitpoint_notify(&s->wp);
        waiter.join(); /* returns at the latest at the scribbler's next wake */
    }
    EXPECT_EQ(0, rc);
}

TEST_F(WaitTest, ShouldReturnReadyAtDeadlineWhenPeerHidesWaiters) {
    /* A peer sets waiters to UINT32_MAX: our announce wraps it to 0, the notifier skips
     * the wake, and the sleeper misses it. The deadline path still reports the truth. */
    store32(&s->wp.waiters, UINT32_MAX);
    Cond c{s};
    std::atomic<pid_t> tid{0};
    int rc = 1;
    shmx_idle_t sleep_now{0, 0};
    std::thread waiter([&] {
        tid.store(gettid());
        rc = shmx_wait_until(&s->wp, cond_ready, &c, shmx_deadline(300 * kMs), &sleep_now);
    });
    while (tid.load() == 0) std::this_thread::yield();
    std::string stat = "/proc/self/task/" + std::to_string(tid.load()) + "/stat";
    for (int64_t end = shmx_now_ns() + 10000 * kMs; task_state(stat) != 'S' && shmx_now_ns() < end;) usleep(500);
    store32(&s->flag, 1);
    shmx_waitpoint_notify(&s->wp);
    waiter.join();
    EXPECT_EQ(0, rc);
}
