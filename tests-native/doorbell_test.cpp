/*
 * Doorbells and event-loop integration (native/doorbell.c, channel_events.c):
 * the ring rings only an armed consumer; a channel's fd becomes readable
 * when the peer sends, closes or hangs up, and not before; it works inside a
 * user's own epoll set; the bells travel over the bootstrap socket. Some
 * tests pair two channels on one segment directly (bells attached by hand),
 * the others go through a real host and guest (admission sends the bells),
 * in one process and across fork.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "private_headers.h"
#include "test_pattern.h"
#include "test_process.h"

extern "C" {
#include "doorbell.h"
}

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;

/* Rings queued on a bell's waiting end (one byte each) without taking them. */
uint64_t BellCount(int fd) {
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? (uint64_t)n : UINT64_MAX;
}

/* 1 if @fd is readable within @ms, 0 if not, -1 on error. */
int Readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : n > 0;
}

int64_t SendByte(shmx_channel_t *ch, uint8_t b) { return shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, &b, 1, kSecond); }

/* Receive one message without waiting; returns its first byte, or the code. */
int ReceiveNow(shmx_channel_t *ch) {
    shmx_message_t m;
    int rc = shmx_channel_receive(ch, &m, 0);
    if (rc != 0) return rc;
    int b = m.length > 0 ? static_cast<const uint8_t *>(m.data)[0] : 0;
    shmx_channel_release(ch, &m);
    return b;
}

/*
 * The documented loop: receive until empty, arm, sleep on the fd, for at
 * most @timeout_ms in all. Returns the first byte of the first message, or
 * the first code other than -SHMX_EEMPTY, or -ETIMEDOUT.
 */
int ReceiveInLoop(shmx_channel_t *ch, int timeout_ms) {
    int fd = shmx_channel_fd(ch);
    if (fd < 0) return fd;
    int64_t deadline = shmx_now_ns() + timeout_ms * kMs;
    for (;;) {
        int rc = ReceiveNow(ch);
        if (rc != -SHMX_EEMPTY) return rc;
        int64_t left = deadline - shmx_now_ns();
        if (left <= 0) return -ETIMEDOUT;
        int armed = shmx_channel_arm(ch);
        if (armed < 0) return armed;
        if (armed == 0 && Readable(fd, static_cast<int>(left / kMs) + 1) < 0) return -errno;
    }
}

class DoorbellTest : public ::testing::Test {
  protected:
    void SetUp() override {
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
        static std::atomic<int> counter{0};
        name_ = "bell-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    }

    void TearDown() override {
        shmx_channel_free(host_ch_);
        shmx_channel_free(guest_ch_);
        if (seg_open_) shmx_segment_close(&seg_);
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        for (shmx_channel_t *c : accepted_) shmx_channel_free(c);
        shmx_host_destroy(host_);
    }

    /* Two channels on entry 0 of one segment, joined by a socketpair, bells attached by hand. */
    void OpenPair(bool bells = true) {
        ASSERT_EQ(0, shmx_segment_create(&cfg_, unique_label("bell").c_str(), &seg_));
        seg_open_ = true;
        shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
        __atomic_store_n(word<uint32_t>(&shmx_segment_channel(&seg_, 0)->state), (uint32_t)SHMX_CHANNEL_ACTIVE,
                         __ATOMIC_RELEASE);
        int sv[2];
        ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 1, 0, sv[0], &host_ch_));
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 0, 0, sv[1], &guest_ch_));
        if (!bells) return;
        int guest[2];
        ASSERT_EQ(0, shmx_channel_bells_create(host_ch_, guest));
        ASSERT_EQ(0, shmx_channel_bells_adopt(guest_ch_, guest[0], guest[1]));
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    }

    /* A guest connecting from a thread of this process, accepted here. */
    void ConnectPair(uint32_t transport, shmx_channel_t **guest_side, shmx_channel_t **host_side) {
        shmx_guest_t *g = nullptr;
        std::atomic<int> rc{1};
        std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), transport, 10 * kSecond, &g); });
        shmx_channel_t *ch = nullptr;
        int arc = shmx_host_accept(host_, 10 * kSecond, &ch);
        t.join();
        ASSERT_EQ(arc, 0) << shmx_strerror(arc);
        ASSERT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
        guests_.push_back(g);
        accepted_.push_back(ch);
        *guest_side = shmx_guest_channel(g);
        *host_side = ch;
    }

    shmx_config_t cfg_;
    std::string name_;
    shmx_segment_t seg_;
    bool seg_open_ = false;
    shmx_pool_t pool_;
    shmx_channel_t *host_ch_ = nullptr, *guest_ch_ = nullptr;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::vector<shmx_channel_t *> accepted_;
    PrivateRuntimeDir runtime_;
};

/* ---- the ring -------------------------------------------------------------------------- */

TEST_F(DoorbellTest, RingShouldRingOnlyAnArmedConsumerAndOncePerArm) {
    constexpr uint32_t kCap = 4096;
    alignas(64) static uint8_t mem[sizeof(shmx_ring_ctl_t) + kCap];
    auto *ctl = reinterpret_cast<shmx_ring_ctl_t *>(mem);
    uint8_t *data = mem + sizeof(shmx_ring_ctl_t);
    shmx_ring_format(ctl, data, kCap);
    shmx_ring_t prod, cons;
    ASSERT_EQ(0, shmx_ring_attach(&prod, ctl, data, kCap));
    ASSERT_EQ(0, shmx_ring_attach(&cons, ctl, data, kCap));
    EXPECT_EQ(-1, prod.bell_fd) << "no bell until one is attached";
    int pair[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair));
    prod.bell_fd = pair[0];
    int bell = pair[1]; /* the consumer's end, where rings queue */

    auto publish = [&] {
        void *body;
        ASSERT_EQ(0, shmx_ring_claim(&prod, 24, SHMX_RECORD_INLINE, &body));
        memset(body, 0xAB, 24);
        ASSERT_EQ(0, shmx_ring_commit(&prod));
    };
    auto consume_all = [&] {
        shmx_ring_record_t rec;
        while (shmx_ring_peek(&cons, &rec) == 0) ASSERT_EQ(0, shmx_ring_release(&cons, rec.end));
    };

    for (int i = 0; i < 50; i++) publish();
    EXPECT_EQ(0u, BellCount(bell)) << "a busy consumer (not armed) costs the producer no write";
    EXPECT_EQ(1, shmx_ring_arm(&cons)) << "records are there: do not sleep";
    publish();
    EXPECT_EQ(0u, BellCount(bell)) << "an arm answered 1 is withdrawn";
    consume_all();

    EXPECT_EQ(0, shmx_ring_arm(&cons));
    publish();
    EXPECT_EQ(1u, BellCount(bell)) << "armed: the commit rings";
    for (int i = 0; i < 10; i++) publish();
    EXPECT_EQ(1u, BellCount(bell)) << "one ring per arm";
    consume_all();

    EXPECT_EQ(0, shmx_ring_arm(&cons));
    shmx_ring_close_bell(&prod);
    EXPECT_EQ(2u, BellCount(bell)) << "closing rings an armed consumer";
    EXPECT_EQ(1, shmx_ring_arm(&cons)) << "closed: do not sleep";
    close(pair[0]);
    close(pair[1]);
}

/* ---- a channel pair on one segment ----------------------------------------------------- */

TEST_F(DoorbellTest, ChannelWithoutBellsShouldSayNoStateAndKeepWorking) {
    ASSERT_NO_FATAL_FAILURE(OpenPair(false));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_fd(guest_ch_));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_arm(guest_ch_));
    shmx_channel_wake_local(guest_ch_); /* a no-op */
    ASSERT_GT(SendByte(host_ch_, 7), 0);
    EXPECT_EQ(7, ReceiveNow(guest_ch_));
}

TEST_F(DoorbellTest, FdShouldBecomeReadableWhenThePeerSendsAndNotBefore) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int fd = shmx_channel_fd(guest_ch_);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fd, shmx_channel_fd(guest_ch_)) << "one set for the channel's life";
    EXPECT_EQ(0, shmx_channel_arm(guest_ch_));
    EXPECT_EQ(0, Readable(fd, 50)) << "nothing sent yet";
    ASSERT_GT(SendByte(host_ch_, 1), 0);
    EXPECT_EQ(1, Readable(fd, 5000));
    EXPECT_EQ(1, ReceiveNow(guest_ch_));
    EXPECT_EQ(0, shmx_channel_arm(guest_ch_)) << "drained and empty again";
    EXPECT_EQ(0, Readable(fd, 0)) << "the arm drained the bell";

    /* the other direction */
    int hfd = shmx_channel_fd(host_ch_);
    ASSERT_GE(hfd, 0);
    EXPECT_EQ(0, shmx_channel_arm(host_ch_));
    EXPECT_EQ(0, Readable(hfd, 20));
    ASSERT_GT(SendByte(guest_ch_, 2), 0);
    EXPECT_EQ(1, Readable(hfd, 5000));
    EXPECT_EQ(2, ReceiveNow(host_ch_));
}

TEST_F(DoorbellTest, ArmShouldReturnOneWhenDataIsAlreadyThere) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    ASSERT_GT(SendByte(host_ch_, 3), 0);
    EXPECT_EQ(1, shmx_channel_arm(guest_ch_));
    EXPECT_EQ(3, ReceiveNow(guest_ch_));
}

TEST_F(DoorbellTest, ShouldNotWriteTheBellWhileTheReceiverIsBusy) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int bell = guest_ch_->bell[SHMX_RING_HOST_TO_GUEST]; /* where the host's rings would queue */
    std::atomic<bool> done{false};
    std::atomic<int> received{0};
    constexpr int kCount = 20000;
    /* A receiver that never sleeps on its fd: it polls the ring (receive with a timeout). */
    std::thread rx([&] {
        while (received.load() < kCount) {
            shmx_message_t m;
            if (shmx_channel_receive(guest_ch_, &m, 100 * kMs) == 0) {
                shmx_channel_release(guest_ch_, &m);
                received++;
            }
        }
        done = true;
    });
    for (int i = 0; i < kCount; i++) ASSERT_GT(SendByte(host_ch_, (uint8_t)i), 0);
    rx.join();
    EXPECT_EQ(0u, BellCount(bell)) << "the producer rang for a receiver that never armed";
}

TEST_F(DoorbellTest, LoopShouldDeliverEveryMessageAcrossThreads) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    constexpr int kCount = 5000;
    std::thread tx([&] {
        for (int i = 0; i < kCount; i++) {
            if (SendByte(host_ch_, (uint8_t)i) <= 0) return;
            if ((i & 63) == 0) usleep(100); /* let the receiver fall asleep now and then */
        }
    });
    for (int i = 0; i < kCount; i++) {
        int b = ReceiveInLoop(guest_ch_, 5000);
        ASSERT_EQ((uint8_t)i, b) << "message " << i;
    }
    tx.join();
}

TEST_F(DoorbellTest, FdShouldWorkInTheUsersOwnEpollSetWithAnotherSocket) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(ep, 0);
    int fd = shmx_channel_fd(guest_ch_);
    ASSERT_GE(fd, 0);
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u32 = 1;
    ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    ev.data.u32 = 2;
    ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev));
    ASSERT_EQ(0, shmx_channel_arm(guest_ch_));

    struct epoll_event out[4];
    EXPECT_EQ(0, epoll_wait(ep, out, 4, 30));
    ASSERT_EQ(1, write(sv[1], "x", 1));
    ASSERT_EQ(1, epoll_wait(ep, out, 4, 5000));
    EXPECT_EQ(2u, out[0].data.u32) << "the socket, not the channel";
    char c;
    ASSERT_EQ(1, read(sv[0], &c, 1));

    ASSERT_GT(SendByte(host_ch_, 9), 0);
    ASSERT_EQ(1, epoll_wait(ep, out, 4, 5000));
    EXPECT_EQ(1u, out[0].data.u32) << "the channel, not the socket";
    EXPECT_EQ(9, ReceiveNow(guest_ch_));
    EXPECT_EQ(0, shmx_channel_arm(guest_ch_));
    EXPECT_EQ(0, epoll_wait(ep, out, 4, 0)) << "quiet again after the arm drained it";
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(DoorbellTest, FdShouldBecomeReadableWhenThePeerCloses) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int fd = shmx_channel_fd(guest_ch_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, shmx_channel_arm(guest_ch_));
    std::thread closer([&] {
        usleep(20000);
        shmx_channel_close(host_ch_);
    });
    EXPECT_EQ(1, Readable(fd, 5000));
    closer.join();
    EXPECT_EQ(1, shmx_channel_arm(guest_ch_)) << "closed: do not sleep";
    EXPECT_EQ(-SHMX_ECLOSED, ReceiveNow(guest_ch_));
}

TEST_F(DoorbellTest, FdShouldBecomeReadableWhenThePeerHangsUp) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int fd = shmx_channel_fd(guest_ch_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, shmx_channel_arm(guest_ch_));
    /* The host side dies without closing its rings: only its socket goes. */
    shutdown(host_ch_->sock, SHUT_RDWR);
    EXPECT_EQ(1, Readable(fd, 5000));
    EXPECT_EQ(1, shmx_channel_arm(guest_ch_)) << "hung up: do not sleep";
}

TEST_F(DoorbellTest, WakeLocalShouldMakeTheFdReadable) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int fd = shmx_channel_fd(host_ch_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, shmx_channel_arm(host_ch_));
    EXPECT_EQ(0, Readable(fd, 0));
    shmx_channel_wake_local(host_ch_);
    EXPECT_EQ(1, Readable(fd, 1000));
    EXPECT_EQ(0, shmx_channel_arm(host_ch_)) << "a wake-up alone changes no state";
}

TEST_F(DoorbellTest, OwnCloseShouldWakeThisSidesSleeper) {
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int fd = shmx_channel_fd(guest_ch_);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, shmx_channel_arm(guest_ch_));
    std::thread closer([&] {
        usleep(20000);
        shmx_channel_close(guest_ch_);
    });
    EXPECT_EQ(1, Readable(fd, 5000));
    closer.join();
}

/* ---- the bells message -------------------------------------------------------------------- */

TEST_F(DoorbellTest, BellsMessageShouldCarryTheGuestsEndsOfBothBells) {
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
    int host[2], guest[2];
    ASSERT_EQ(0, shmx_doorbell_create(host, guest));
    ASSERT_EQ(0, shmx_bootstrap_send_bells(sv[0], guest));
    int got[2];
    ASSERT_EQ(0, shmx_bootstrap_recv_bells(sv[1], shmx_deadline(kSecond), got));
    EXPECT_EQ(0, shmx_doorbell_check(got[0]));
    EXPECT_EQ(0, shmx_doorbell_check(got[1]));
    shmx_doorbell_ring(host[SHMX_RING_HOST_TO_GUEST]);
    EXPECT_EQ(1u, BellCount(got[SHMX_RING_HOST_TO_GUEST])) << "in the order sent: the host rings the first";
    shmx_doorbell_ring(got[SHMX_RING_GUEST_TO_HOST]);
    EXPECT_EQ(1u, BellCount(host[SHMX_RING_GUEST_TO_HOST])) << "and waits on the second";
    for (int fd : {host[0], host[1], guest[0], guest[1], got[0], got[1]}) close(fd);
    close(sv[0]);
    close(sv[1]);
}

TEST_F(DoorbellTest, BellsMessageShouldRefuseMalformedOnes) {
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
    int got[2];
    /* An extent-sized message with the wrong magic and no fds. */
    uint8_t junk[SHMX_BELLS_BYTES] = {1, 2, 3, 4};
    ASSERT_EQ((ssize_t)sizeof junk, write(sv[0], junk, sizeof junk));
    EXPECT_EQ(-SHMX_EPROTO, shmx_bootstrap_recv_bells(sv[1], shmx_deadline(kSecond), got));
    EXPECT_EQ(-1, got[0]);
    /* Nothing comes: timeout. */
    EXPECT_EQ(-ETIMEDOUT, shmx_bootstrap_recv_bells(sv[1], shmx_deadline(10 * kMs), got));
    /* The host hangs up. */
    close(sv[0]);
    EXPECT_EQ(-SHMX_EHOSTGONE, shmx_bootstrap_recv_bells(sv[1], shmx_deadline(kSecond), got));
    close(sv[1]);
}

TEST_F(DoorbellTest, AdoptShouldRefuseDescriptorsThatAreNotStreamSockets) {
    ASSERT_NO_FATAL_FAILURE(OpenPair(false));
    int p[2];
    ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
    EXPECT_EQ(-SHMX_EPROTO, shmx_channel_bells_adopt(guest_ch_, p[0], p[1])); /* closes both */
    EXPECT_EQ(-1, fcntl(p[0], F_GETFD));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_arm(guest_ch_));
    int guest[2];
    ASSERT_EQ(0, shmx_channel_bells_create(host_ch_, guest));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_bells_create(host_ch_, guest)) << "once per channel";
    close(guest[0]);
    close(guest[1]);
}

TEST_F(DoorbellTest, HostShouldNeverBlockOnAGuestThatFloodsOrBlocksItsBells) {
    // A hostile guest makes its ends blocking, fills the host's waiting end and never
    // reads the end the host rings: the host's rings and drains still return at once.
    ASSERT_NO_FATAL_FAILURE(OpenPair());
    int g_rx = guest_ch_->bell[SHMX_RING_HOST_TO_GUEST], g_tx = guest_ch_->bell[SHMX_RING_GUEST_TO_HOST];
    for (int fd : {g_rx, g_tx}) ASSERT_EQ(0, fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK));
    EXPECT_NE(0, fcntl(host_ch_->bell[SHMX_RING_HOST_TO_GUEST], F_GETFL) & O_NONBLOCK)
        << "the host's ends are descriptions of their own";
    char junk[4096] = {0};
    while (send(g_tx, junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
    int64_t t0 = shmx_now_ns();
    for (int i = 0; i < 100000; i++) shmx_doorbell_ring(host_ch_->bell[SHMX_RING_HOST_TO_GUEST]);
    ASSERT_GE(shmx_channel_fd(host_ch_), 0);
    EXPECT_EQ(0, shmx_channel_arm(host_ch_)) << "a drain takes a bounded bite of the flood";
    shmx_channel_wake_local(host_ch_);
    EXPECT_LT(shmx_now_ns() - t0, 5 * kSecond) << "nothing the host did waited for the guest";
}

/* ---- through a host and a guest ------------------------------------------------------------ */

TEST_F(DoorbellTest, AdmittedShmGuestShouldHaveItsOwnBells) {
    CreateHost();
    shmx_channel_t *g1, *h1, *g2, *h2;
    ASSERT_NO_FATAL_FAILURE(ConnectPair(SHMX_TRANSPORT_SHM, &g1, &h1));
    ASSERT_NO_FATAL_FAILURE(ConnectPair(SHMX_TRANSPORT_SHM, &g2, &h2));
    ASSERT_GE(shmx_channel_fd(g1), 0) << "admission sends the bells";
    ASSERT_GE(shmx_channel_fd(h1), 0);
    ASSERT_EQ(0, shmx_channel_arm(g1));
    ASSERT_EQ(0, shmx_channel_arm(g2));
    ASSERT_GT(SendByte(h2, 5), 0);
    EXPECT_EQ(0, Readable(shmx_channel_fd(g1), 30)) << "another guest's traffic never rings this one";
    EXPECT_EQ(1, Readable(shmx_channel_fd(g2), 5000));
    EXPECT_EQ(5, ReceiveInLoop(g2, 5000));
    ASSERT_GT(SendByte(g1, 6), 0);
    EXPECT_EQ(6, ReceiveInLoop(h1, 5000));
}

TEST_F(DoorbellTest, UdsChannelFdShouldBeItsSocket) {
    CreateHost();
    shmx_channel_t *g, *h;
    ASSERT_NO_FATAL_FAILURE(ConnectPair(SHMX_TRANSPORT_UDS, &g, &h));
    int fd = shmx_channel_fd(g);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(0, shmx_channel_arm(g));
    EXPECT_EQ(0, Readable(fd, 20));
    ASSERT_GT(SendByte(h, 4), 0);
    EXPECT_EQ(1, Readable(fd, 5000));
    EXPECT_EQ(1, shmx_channel_arm(g));
    EXPECT_EQ(4, ReceiveInLoop(g, 5000));
    shmx_channel_wake_local(g); /* a no-op for uds */
}

/* Child: connect, echo one message through the fd loop, exit 0 or a step number. */
int EchoGuest(const std::string &name) {
    shmx_guest_t *g = nullptr;
    if (shmx_guest_connect(name.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) return 2;
    shmx_channel_t *ch = shmx_guest_channel(g);
    int b = ReceiveInLoop(ch, 10000);
    if (b < 0) return 3;
    if (SendByte(ch, (uint8_t)(b + 1)) <= 0) return 4;
    shmx_guest_close(g);
    return 0;
}

TEST_F(DoorbellTest, FdLoopShouldWorkAcrossProcesses) {
    CreateHost();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(EchoGuest(name_));
    shmx_channel_t *ch = nullptr;
    ASSERT_EQ(0, shmx_host_accept(host_, 10 * kSecond, &ch));
    accepted_.push_back(ch);
    int fd = shmx_channel_fd(ch);
    ASSERT_GE(fd, 0);
    usleep(20000); /* the guest is likely asleep on its fd by now */
    ASSERT_GT(SendByte(ch, 41), 0);
    EXPECT_EQ(42, ReceiveInLoop(ch, 10000));
    /* Then the guest leaves: the fd stays readable, receive tells why. */
    int gone = ReceiveInLoop(ch, 10000);
    EXPECT_TRUE(gone == -SHMX_ECLOSED || gone == -SHMX_EHOSTGONE) << shmx_strerror(gone);
    int status = WaitChild(pid, 20000);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(0, WEXITSTATUS(status)) << "the guest failed at step " << WEXITSTATUS(status);
}

/*
 * W2: the guest publishes and dies before it rings (here: it has no bell to
 * ring, so its commit takes the host's arm and rings nothing). The host,
 * asleep on its fd, wakes from the socket's hang-up and finds the message.
 */
TEST_F(DoorbellTest, SleeperShouldFindDataOfAPeerThatDiedBeforeRinging) {
    CreateHost();
    int go[2];
    ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(go[1]);
        shmx_guest_t *g = nullptr;
        if (shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) _exit(2);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(3); /* the host has armed */
        shmx_channel_t *ch = shmx_guest_channel(g);
        ch->tx.bell_fd = -1; /* dies between publishing and ringing */
        if (SendByte(ch, 77) <= 0) _exit(4);
        _exit(0); /* no close: the kernel closes the socket */
    }
    close(go[0]);
    shmx_channel_t *ch = nullptr;
    ASSERT_EQ(0, shmx_host_accept(host_, 10 * kSecond, &ch));
    accepted_.push_back(ch);
    int fd = shmx_channel_fd(ch);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, shmx_channel_arm(ch));
    ASSERT_EQ(1, write(go[1], "g", 1));
    close(go[1]);
    // The dead guest never rang: the socket's hang-up (or the host's service thread, which
    // wakes the local side when it notices the death) is what wakes the sleeper.
    EXPECT_EQ(1, Readable(fd, 10000)) << "the hang-up must wake the sleeper";
    EXPECT_EQ(77, ReceiveNow(ch)) << "the message published before death is delivered";
    int status = WaitChild(pid, 20000);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(0, WEXITSTATUS(status));
}

}  // namespace
