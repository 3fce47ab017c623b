// Readmission after a quarantine (readmit.h): the table on its own, with the
// clock passed in, then a host holding a quarantined process's next
// connection while it admits another's.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <thread>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr pid_t kOwn = 1000;
constexpr int64_t kT0 = 5 * kSecond; // any start time

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

class ReadmitTableTest : public ::testing::Test {
  protected:
    void SetUp() override { shmx_readmit_init(&r_, kOwn); }
    void TearDown() override { shmx_readmit_fini(&r_); }

    // A descriptor standing for a connection.
    int Conn() {
        int fd = eventfd(0, EFD_CLOEXEC);
        EXPECT_GE(fd, 0);
        return fd;
    }

    // Whether a connection of @pid at @now would be held (a probe: it is taken back at once).
    bool Held(pid_t pid, int64_t now) {
        int replaced, fd = Conn();
        int held = shmx_readmit_hold(&r_, pid, fd, now, &replaced);
        if (held) {
            shmx_readmit_entry_t *e = nullptr;
            for (auto &x : r_.entry)
                if (x.pid == pid) e = &x;
            e->held_sock = replaced; // the probe is withdrawn, whatever was held before stays
            r_.held_total--;
        }
        close(fd);
        return held != 0;
    }

    shmx_readmit_t r_;
};

TEST_F(ReadmitTableTest, ShouldHoldAProcessForTenMillisecondsAfterItsFirstViolation) {
    EXPECT_FALSE(Held(42, kT0)) << "a clean process is admitted at once";
    shmx_readmit_strike(&r_, 42, kT0);
    EXPECT_TRUE(Held(42, kT0));
    EXPECT_TRUE(Held(42, kT0 + 10 * kMs - 1));
    EXPECT_FALSE(Held(42, kT0 + 10 * kMs));
    EXPECT_FALSE(Held(43, kT0)) << "another process is not held";
}

TEST_F(ReadmitTableTest, ShouldDoubleTheWaitForEachViolationInARowUpToOneSecond) {
    const int64_t waits_ms[] = {10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000};
    int64_t now = kT0;
    for (int64_t w : waits_ms) {
        shmx_readmit_strike(&r_, 42, now);
        EXPECT_TRUE(Held(42, now + w * kMs - 1)) << w << " ms";
        EXPECT_FALSE(Held(42, now + w * kMs)) << w << " ms";
        now += w * kMs + kSecond; // the next violation comes after the wait, well within the 10 s
    }
}

TEST_F(ReadmitTableTest, ShouldLetOneConnectionThroughPerWaitUntilTheProcessIsForgotten) {
    shmx_readmit_strike(&r_, 42, kT0); // 10 ms
    int64_t t = kT0 + 10 * kMs;
    EXPECT_FALSE(Held(42, t)) << "its wait is over: admitted";
    EXPECT_TRUE(Held(42, t)) << "the next one waits again";
    EXPECT_TRUE(Held(42, t + 10 * kMs - 1));
    EXPECT_FALSE(Held(42, t + 10 * kMs));
    int fd = Conn(), replaced;
    ASSERT_EQ(shmx_readmit_hold(&r_, 42, fd, t + 11 * kMs, &replaced), 1);
    int64_t next;
    EXPECT_EQ(shmx_readmit_take_due(&r_, t + 20 * kMs, &next), fd);
    EXPECT_TRUE(Held(42, t + 20 * kMs)) << "admitting the held one started the wait again";
    close(fd);
    EXPECT_FALSE(Held(42, kT0 + SHMX_READMIT_FORGET_NS)) << "10 s after its violation";
    EXPECT_FALSE(Held(42, kT0 + SHMX_READMIT_FORGET_NS)) << "forgotten: no wait any more";
    for (const auto &e : r_.entry) EXPECT_EQ(e.pid, 0) << "its entry is free";
}

TEST_F(ReadmitTableTest, ShouldForgetAProcessThatStaysCleanForTenSeconds) {
    shmx_readmit_strike(&r_, 42, kT0);
    shmx_readmit_strike(&r_, 42, kT0 + kSecond);
    shmx_readmit_strike(&r_, 42, kT0 + 2 * kSecond); // 40 ms now
    int64_t later = kT0 + 2 * kSecond + SHMX_READMIT_FORGET_NS;
    shmx_readmit_strike(&r_, 42, later);
    EXPECT_TRUE(Held(42, later + 10 * kMs - 1));
    EXPECT_FALSE(Held(42, later + 10 * kMs)) << "a first violation again";
}

TEST_F(ReadmitTableTest, ShouldNeverHoldTheHostsOwnProcessOrAnUnknownPid) {
    shmx_readmit_strike(&r_, kOwn, kT0);
    shmx_readmit_strike(&r_, 0, kT0);
    shmx_readmit_strike(&r_, -1, kT0);
    EXPECT_FALSE(Held(kOwn, kT0));
    EXPECT_FALSE(Held(0, kT0));
    for (const auto &e : r_.entry) EXPECT_EQ(e.pid, 0) << "nothing remembered";
}

TEST_F(ReadmitTableTest, ShouldKeepOneConnectionPerProcessAndHandBackTheOneItReplaces) {
    shmx_readmit_strike(&r_, 42, kT0);
    int first = Conn(), second = Conn(), replaced = 0;
    ASSERT_EQ(shmx_readmit_hold(&r_, 42, first, kT0 + kMs, &replaced), 1);
    EXPECT_EQ(replaced, -1);
    ASSERT_EQ(shmx_readmit_hold(&r_, 42, second, kT0 + 2 * kMs, &replaced), 1);
    EXPECT_EQ(replaced, first) << "the older one is the caller's to close";
    close(first);
    EXPECT_EQ(r_.held_total, 2u);
    int64_t next;
    EXPECT_EQ(shmx_readmit_take_due(&r_, kT0 + 10 * kMs, &next), second);
    EXPECT_EQ(next, INT64_MAX);
    close(second);
}

TEST_F(ReadmitTableTest, ShouldHandBackHeldConnectionsOnlyWhenDueAndSayWhenTheNextIs) {
    shmx_readmit_strike(&r_, 42, kT0);               // due at +10 ms
    shmx_readmit_strike(&r_, 43, kT0);
    shmx_readmit_strike(&r_, 43, kT0 + kMs);         // due at +21 ms
    int a = Conn(), b = Conn(), replaced;
    ASSERT_EQ(shmx_readmit_hold(&r_, 43, b, kT0 + 2 * kMs, &replaced), 1);
    ASSERT_EQ(shmx_readmit_hold(&r_, 42, a, kT0 + 2 * kMs, &replaced), 1);
    int64_t next;
    EXPECT_EQ(shmx_readmit_take_due(&r_, kT0 + 5 * kMs, &next), -1);
    EXPECT_EQ(next, kT0 + 10 * kMs);
    EXPECT_EQ(shmx_readmit_take_due(&r_, kT0 + 10 * kMs, &next), a);
    EXPECT_EQ(next, kT0 + 21 * kMs) << "the one still held";
    EXPECT_EQ(shmx_readmit_take_due(&r_, kT0 + 20 * kMs, &next), -1);
    EXPECT_EQ(shmx_readmit_take_due(&r_, kT0 + 21 * kMs, &next), b);
    EXPECT_EQ(next, INT64_MAX);
    close(a);
    close(b);
}

TEST_F(ReadmitTableTest, ShouldMakeRoomByForgettingTheProcessDueToBeForgottenFirst) {
    for (pid_t p = 1; p <= (pid_t)SHMX_READMIT_PIDS; p++) shmx_readmit_strike(&r_, 100 + p, kT0 + p * kMs);
    shmx_readmit_strike(&r_, 999, kT0 + kSecond);
    EXPECT_TRUE(Held(999, kT0 + kSecond));
    EXPECT_FALSE(Held(101, kT0 + kSecond - 1)) << "the oldest made room";
    EXPECT_TRUE(Held(102, kT0 + 2 * kMs)) << "the others stay";
}

TEST_F(ReadmitTableTest, ShouldNotRememberAnotherProcessWhileEveryEntryHoldsAConnection) {
    int fds[SHMX_READMIT_PIDS];
    for (pid_t p = 0; p < (pid_t)SHMX_READMIT_PIDS; p++) {
        shmx_readmit_strike(&r_, 100 + p, kT0);
        int replaced;
        fds[p] = Conn();
        ASSERT_EQ(shmx_readmit_hold(&r_, 100 + p, fds[p], kT0, &replaced), 1);
    }
    shmx_readmit_strike(&r_, 999, kT0);
    EXPECT_FALSE(Held(999, kT0)) << "not remembered: no entry could be given up";
    shmx_readmit_fini(&r_);
    for (int fd : fds) EXPECT_FALSE(IsOpen(fd)) << "fini closes what it held";
    shmx_readmit_init(&r_, kOwn);
}

// ---- a host ----------------------------------------------------------------------------------

// What the child tells the parent: one int per step.
enum ChildStep : int { kConnected = 1, kExpelled = 2, kReconnected = 3, kFailed = -1 };

// What the child does once it was expelled.
enum class Then {
    kReconnect,    // connect again, once
    kReconnectIn1ms, // the same, with a timeout of 1 ms (the library still gives an accepting host 2 s)
    kConnectTwice, // connect again from two threads at once; reports both results (0 or the code)
    kFlood,        // connect and hang up, as fast as it can, for 3 s, without the library
};

class ReadmitHostTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = "rt-" + std::to_string(getpid());
        shmx_log_set_handler(nullptr, nullptr); /* the expected warnings would only clutter the output */
    }
    void TearDown() override {
        if (child_ > 0) WaitChild(child_, 5000);
        for (int fd : {go_[1], report_[0]})
            if (fd >= 0) close(fd);
        shmx_host_destroy(host_);
        shmx_log_set_default();
    }

    // A child process, forked while this one has a single thread: on 'g' it connects, waits to be
    // expelled, closes, and does @then, reporting each step.
    void ForkGuest(Then then = Then::kReconnect) {
        int go[2], report[2];
        ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
        child_ = fork();
        ASSERT_GE(child_, 0);
        if (child_ == 0) {
            close(go[1]);
            close(report[0]);
            char c;
            if (read(go[0], &c, 1) != 1) _exit(1);
            auto say = [&](int step) {
                if (write(report[1], &step, sizeof step) != (ssize_t)sizeof step) _exit(1);
            };
            shmx_guest_t *g = nullptr;
            if (shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) {
                say(kFailed);
                _exit(1);
            }
            say(kConnected);
            int rc;
            int64_t end = shmx_now_ns() + 5 * kSecond;
            do {
                shmx_message_t m;
                rc = shmx_channel_receive(shmx_guest_channel(g), &m, 10 * kMs);
            } while ((rc == -SHMX_EEMPTY || rc == -ETIMEDOUT) && shmx_now_ns() < end);
            shmx_guest_close(g);
            say(rc == -SHMX_EEXPELLED ? kExpelled : kFailed);
            if (then == Then::kReconnect || then == Then::kReconnectIn1ms) {
                int64_t timeout = then == Then::kReconnect ? 10 * kSecond : kMs;
                rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, timeout, &g);
                say(rc == 0 ? kReconnected : kFailed);
                if (rc == 0) shmx_guest_close(g);
            } else if (then == Then::kConnectTwice) {
                auto connect = [&] {
                    shmx_guest_t *mine = nullptr;
                    int r = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &mine);
                    say(r);
                    if (r == 0) shmx_guest_close(mine);
                };
                std::thread a(connect), b(connect);
                a.join();
                b.join();
            } else {
                char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
                struct sockaddr_un addr = {};
                addr.sun_family = AF_UNIX;
                if (shmx_socket_path(name_.c_str(), path, sizeof path) < 0) _exit(1);
                memcpy(addr.sun_path, path, sizeof path);
                for (int64_t stop = shmx_now_ns() + 3 * kSecond; shmx_now_ns() < stop;) {
                    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
                    (void)connect(fd, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr);
                    close(fd);
                }
            }
            _exit(0);
        }
        close(go[0]);
        close(report[1]);
        go_[1] = go[1];
        report_[0] = report[0];
    }

    void CreateHost() {
        shmx_config_t cfg;
        shmx_config_default(&cfg);
        cfg.max_channels = 4;
        int rc = shmx_host_create(name_.c_str(), &cfg, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    }

    int NextStep() {
        struct pollfd p = {report_[0], POLLIN, 0};
        int step = 0;
        if (poll(&p, 1, 10000) != 1 || read(report_[0], &step, sizeof step) != (ssize_t)sizeof step) return 0;
        return step;
    }

    // Let the child connect, accept it, and quarantine it: garbage in its guest-to-host ring.
    // Returns the time just before the quarantine.
    int64_t ConnectAndQuarantineTheChild() {
        EXPECT_EQ(write(go_[1], "g", 1), 1);
        shmx_channel_t *ch = nullptr;
        int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        EXPECT_EQ(NextStep(), kConnected);
        if (ch == nullptr) return 0;
        uint8_t *data = shmx_segment_ring_data(shmx_host_segment(host_), shmx_channel_index(ch), SHMX_RING_GUEST_TO_HOST);
        __atomic_store_n(reinterpret_cast<uint64_t *>(data), 0x0000'6363'0000'0040ull, __ATOMIC_RELEASE);
        int64_t before = shmx_now_ns();
        shmx_message_t m;
        EXPECT_EQ(shmx_channel_receive(ch, &m, kSecond), -SHMX_ECORRUPT);
        shmx_channel_free(ch);
        EXPECT_EQ(NextStep(), kExpelled);
        return before;
    }

    // The table's entry for the child's pid, or null. Under the host's lock.
    shmx_readmit_entry_t *ChildEntry() {
        for (auto &e : host_->readmit.entry)
            if (e.pid == child_) return &e;
        return nullptr;
    }

    // Move the end of the child's wait to @until; false if its pid is not remembered.
    bool SetChildWaitEnd(int64_t until) {
        pthread_mutex_lock(&host_->mu);
        shmx_readmit_entry_t *e = ChildEntry();
        if (e != nullptr) e->until_ns = until;
        pthread_mutex_unlock(&host_->mu);
        return e != nullptr;
    }

    // Accept (admitting nothing) until @n connections were held in all, for at most @within ns.
    bool AwaitHeld(uint64_t n, int64_t within) {
        for (int64_t end = shmx_now_ns() + within; host_->readmit.held_total < n && shmx_now_ns() < end;) {
            shmx_channel_t *ch = nullptr;
            int rc = shmx_host_accept(host_, 10 * kMs, &ch);
            EXPECT_EQ(rc, -ETIMEDOUT) << "nothing is admitted while the child waits";
            if (rc == 0) shmx_channel_free(ch);
        }
        return host_->readmit.held_total >= n;
    }

    PrivateRuntimeDir runtime_;
    std::string name_;
    shmx_host_t *host_ = nullptr;
    pid_t child_ = -1;
    int go_[2] = {-1, -1}, report_[2] = {-1, -1};
};

TEST_F(ReadmitHostTest, ShouldHoldAQuarantinedProcessesNextConnectionWhileItAdmitsOthers) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest());
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    int64_t before = ConnectAndQuarantineTheChild();
    ASSERT_GT(before, 0);
    // The quarantine struck the child's pid once: 10 ms. The test moves the end of that wait out of
    // reach, so that the order below does not depend on the machine's speed, and back later.
    pthread_mutex_lock(&host_->mu);
    shmx_readmit_entry_t *entry = ChildEntry();
    uint32_t strikes = entry ? entry->strikes : 0;
    int64_t until = entry ? entry->until_ns : 0;
    pthread_mutex_unlock(&host_->mu);
    EXPECT_EQ(strikes, 1u) << "the quarantine remembered the child's pid";
    EXPECT_GE(until, before + SHMX_READMIT_FIRST_NS);
    ASSERT_TRUE(SetChildWaitEnd(shmx_now_ns() + 60 * kSecond));

    // The child reconnects at once; its connection is held. This process's guest is admitted meanwhile.
    ASSERT_TRUE(AwaitHeld(1, 500 * kMs)) << "the child's connection was held";
    shmx_channel_t *mine = nullptr;
    shmx_guest_t *g = nullptr;
    int accepted = -1;
    std::thread t([&] { accepted = shmx_host_accept(host_, 10 * kSecond, &mine); });
    int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g);
    t.join();
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    ASSERT_EQ(accepted, 0) << shmx_strerror(accepted);
    const char ask[] = "mine";
    char buf[16];
    ASSERT_GT(shmx_channel_send(shmx_guest_channel(g), SHMX_TYPE_DATA, 0, 0, ask, sizeof ask, kSecond), 0);
    EXPECT_EQ(shmx_channel_receive_copy(mine, buf, sizeof buf, nullptr, kSecond), (int64_t)sizeof ask);

    // Still held; the next accept admits the child once its wait is over.
    shmx_channel_t *theirs = nullptr;
    EXPECT_EQ(shmx_host_accept(host_, 50 * kMs, &theirs), -ETIMEDOUT) << "the accept returns by its timeout";
    until = shmx_now_ns() + 20 * kMs;
    ASSERT_TRUE(SetChildWaitEnd(until));
    rc = shmx_host_accept(host_, 10 * kSecond, &theirs);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_GE(shmx_now_ns(), until);
    EXPECT_EQ(NextStep(), kReconnected);
    shmx_channel_free(theirs);
    shmx_channel_free(mine);
    shmx_guest_close(g);
}

TEST_F(ReadmitHostTest, ShouldAdmitAHeldConnectionFromTheAcceptThatIsWaitingWhenItsWaitEnds) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest());
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    ASSERT_GT(ConnectAndQuarantineTheChild(), 0);
    // The child reconnects at once; a wait of 500 ms is sure to find its connection.
    int64_t until = shmx_now_ns() + 500 * kMs;
    ASSERT_TRUE(SetChildWaitEnd(until)) << "the quarantine remembered the child's pid";
    shmx_channel_t *ch = nullptr;
    int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_GE(shmx_now_ns(), until);
    EXPECT_EQ(host_->readmit.held_total, 1u) << "its connection was held, then admitted by the same call";
    EXPECT_EQ(NextStep(), kReconnected);
    shmx_channel_free(ch);
}

TEST_F(ReadmitHostTest, ShouldAdmitAGuestHeldForTheLongestWaitEvenIfItsOwnTimeoutIsShorter) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest(Then::kReconnectIn1ms));
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    ASSERT_GT(ConnectAndQuarantineTheChild(), 0);
    int64_t until = shmx_now_ns() + SHMX_READMIT_MAX_NS;
    ASSERT_TRUE(SetChildWaitEnd(until));
    shmx_channel_t *ch = nullptr;
    int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_GE(shmx_now_ns(), until);
    EXPECT_EQ(host_->readmit.held_total, 1u);
    EXPECT_EQ(NextStep(), kReconnected) << "held 1 s, admitted late, not failed";
    shmx_channel_free(ch);
}

TEST_F(ReadmitHostTest, ShouldRefuseTheHeldConnectionANewerOneOfTheSameProcessReplaces) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest(Then::kConnectTwice));
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    ASSERT_GT(ConnectAndQuarantineTheChild(), 0);
    ASSERT_TRUE(SetChildWaitEnd(shmx_now_ns() + 60 * kSecond));
    ASSERT_TRUE(AwaitHeld(2, 5 * kSecond)) << "both connections were held, one after the other";
    EXPECT_EQ(NextStep(), -SHMX_EBACKOFF) << "the older one is refused, and says why";
    ASSERT_TRUE(SetChildWaitEnd(shmx_now_ns()));
    shmx_channel_t *ch = nullptr;
    int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_EQ(NextStep(), 0) << "the newer one is admitted";
    shmx_channel_free(ch);
}

TEST_F(ReadmitHostTest, ShouldReturnByItsTimeoutWhileAHeldProcessFloodsItWithConnections) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest(Then::kFlood));
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    ASSERT_GT(ConnectAndQuarantineTheChild(), 0);
    ASSERT_TRUE(SetChildWaitEnd(shmx_now_ns() + 60 * kSecond));
    ASSERT_TRUE(AwaitHeld(1, 2 * kSecond)) << "the flood has begun";
    // Each connection of the flood is held and replaces the one before; the call still ends by its
    // deadline, not when the backlog runs dry: with a timeout of 0 (look once) it takes one at most.
    for (int i = 0; i < 50; i++) {
        shmx_channel_t *ch = nullptr;
        uint64_t before = host_->readmit.held_total;
        EXPECT_EQ(shmx_host_accept(host_, 0, &ch), -ETIMEDOUT);
        EXPECT_LE(host_->readmit.held_total - before, 1u) << "try " << i;
        usleep(1000); // the flood fills the backlog again
    }
}

TEST_F(ReadmitHostTest, ShouldDropAHeldConnectionWhoseGuestDiedWithoutAnError) {
    ASSERT_NO_FATAL_FAILURE(ForkGuest());
    ASSERT_NO_FATAL_FAILURE(CreateHost());
    ASSERT_GT(ConnectAndQuarantineTheChild(), 0);
    ASSERT_TRUE(SetChildWaitEnd(shmx_now_ns() + kSecond));
    ASSERT_TRUE(AwaitHeld(1, 500 * kMs)) << "the child's connection was held";
    shmx_channel_t *ch = nullptr;
    kill(child_, SIGKILL);
    WaitChild(child_, 5000);
    child_ = -1;
    for (int64_t end = shmx_now_ns() + 1500 * kMs; shmx_now_ns() < end;) {
        int rc = shmx_host_accept(host_, 100 * kMs, &ch);
        ASSERT_EQ(rc, -ETIMEDOUT) << "a connection whose guest is gone is dropped quietly: " << shmx_strerror(rc);
    }
    int64_t next;
    pthread_mutex_lock(&host_->mu);
    EXPECT_EQ(shmx_readmit_take_due(&host_->readmit, INT64_MAX, &next), -1) << "nothing is held any more";
    pthread_mutex_unlock(&host_->mu);
}

} // namespace
