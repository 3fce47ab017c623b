// Hosts and guests (native/host.c, native/guest.c): connecting by name,
// messages of every size both ways over both transports, in one process and
// across processes, and a host that survives guests leaving, dying and
// crowding in.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr uint32_t kSizes[] = {0, 1, 1024, 1025, 65536, 1u << 20};
constexpr uint32_t kShm = SHMX_TRANSPORT_SHM;
constexpr uint32_t kUds = SHMX_TRANSPORT_UDS;

int RemoveEntry(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }

// Byte k of a message with seed s; guests and hosts use different seeds so an
// echo of the wrong side's bytes is caught.
uint8_t PatternByte(uint32_t k, uint32_t seed) { return (uint8_t)(k * 31u + seed * 7u + (k >> 8)); }
uint32_t GuestSeed(uint32_t size) { return size * 3u + 1u; }
uint32_t HostSeed(uint32_t size) { return size * 5u + 2u; }

// Send one message of @size bytes with @seed's pattern (zero-copy claim and commit).
int SendPattern(shmx_channel_t *ch, uint32_t size, uint32_t seed) {
    void *buf = nullptr;
    int rc = shmx_channel_claim(ch, size, 10 * kSecond, &buf);
    if (rc < 0) return rc;
    uint8_t *p = static_cast<uint8_t *>(buf);
    for (uint32_t k = 0; k < size; k++) p[k] = PatternByte(k, seed);
    int64_t id = shmx_channel_commit(ch, SHMX_TYPE_DATA, 0, 0);
    return id < 0 ? (int)id : 0;
}

// Receive one message and check its length and every byte. Returns 0, a
// negative code, or 1 for wrong contents.
int ReceivePattern(shmx_channel_t *ch, uint32_t size, uint32_t seed) {
    shmx_message_t m;
    int rc = shmx_channel_receive(ch, &m, 10 * kSecond);
    if (rc < 0) return rc;
    int bad = m.length != size || m.type != SHMX_TYPE_DATA;
    const uint8_t *p = static_cast<const uint8_t *>(m.data);
    for (uint32_t k = 0; !bad && k < size; k++) bad = p[k] != PatternByte(k, seed);
    rc = shmx_channel_release(ch, &m);
    return bad ? 1 : rc;
}

// The guest's half of an exchange: every size out, every size back. Returns
// 0 or a nonzero step number (usable as a child's exit status).
int GuestExchange(shmx_channel_t *ch) {
    int step = 10;
    for (uint32_t size : kSizes) {
        if (SendPattern(ch, size, GuestSeed(size)) != 0) return step;
        if (ReceivePattern(ch, size, HostSeed(size)) != 0) return step + 1;
        step += 2;
    }
    return 0;
}

// The host's half, with gtest checks.
void HostExchange(shmx_channel_t *ch) {
    for (uint32_t size : kSizes) {
        ASSERT_EQ(ReceivePattern(ch, size, GuestSeed(size)), 0) << "size " << size;
        ASSERT_EQ(SendPattern(ch, size, HostSeed(size)), 0) << "size " << size;
    }
}

// Connect as a guest and run the exchange: what a child process does.
int GuestMain(const std::string &name, uint32_t transport) {
    shmx_guest_t *g = nullptr;
    if (shmx_guest_connect(name.c_str(), transport, 10 * kSecond, &g) != 0) return 2;
    int rc = GuestExchange(shmx_guest_channel(g));
    shmx_guest_close(g);
    return rc;
}


class HostGuestTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "hg-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
    }

    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        shmx_host_destroy(host_);
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    }

    shmx_channel_t *Accept() {
        shmx_channel_t *ch = nullptr;
        int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        return ch;
    }

    // Connect a guest while this thread accepts it (connect waits for the welcome).
    void ConnectPair(uint32_t transport, shmx_guest_t **g, shmx_channel_t **host_side) {
        std::atomic<int> rc{1};
        std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), transport, 10 * kSecond, g); });
        *host_side = Accept();
        t.join();
        ASSERT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
        ASSERT_NE(*host_side, nullptr);
    }

    // Wait (bounded) until the host side sees its guest gone, receiving and
    // releasing whatever the guest sent before it went.
    void ExpectGuestGone(shmx_channel_t *ch) {
        for (int i = 0; i < 100; i++) {
            shmx_message_t m;
            int rc = shmx_channel_receive(ch, &m, 100 * kMs);
            if (rc == 0) {
                shmx_channel_release(ch, &m);
                continue;
            }
            if (rc == -SHMX_ECLOSED) return;
            if (rc == -SHMX_EEMPTY && shmx_channel_peer_alive(ch) == 0) return;
            ASSERT_EQ(rc, -SHMX_EEMPTY) << shmx_strerror(rc);
        }
        FAIL() << "the host never noticed that its guest was gone";
    }

    void ExpectPoolAllFree() {
        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        for (uint32_t c = 0; c < st.class_count; c++) {
            EXPECT_EQ(st.free_slots[c], st.total_slots[c]) << "class " << c;
            EXPECT_EQ(st.claimed_slots[c], 0u) << "class " << c;
            EXPECT_EQ(st.sent_slots[c], 0u) << "class " << c;
        }
    }

    // A fresh guest connects and completes a whole exchange.
    void ExpectAnotherGuestWorks(uint32_t transport) {
        shmx_guest_t *g = nullptr;
        shmx_channel_t *ch = nullptr;
        ConnectPair(transport, &g, &ch);
        if (!g || !ch) return;
        std::atomic<int> guest_rc{-1};
        std::thread t([&] { guest_rc = GuestExchange(shmx_guest_channel(g)); });
        HostExchange(ch);
        t.join();
        EXPECT_EQ(guest_rc.load(), 0);
        shmx_guest_close(g);
        ExpectGuestGone(ch);
        shmx_channel_free(ch);
    }

    void ExchangeInOneProcess(uint32_t transport) {
        CreateHost();
        shmx_guest_t *g = nullptr;
        shmx_channel_t *ch = nullptr;
        ConnectPair(transport, &g, &ch);
        ASSERT_NE(g, nullptr);
        guests_.push_back(g);
        EXPECT_EQ(shmx_channel_transport(shmx_guest_channel(g)), (int)transport);
        EXPECT_EQ(shmx_channel_transport(ch), (int)transport);
        std::atomic<int> guest_rc{-1};
        std::thread t([&] { guest_rc = GuestExchange(shmx_guest_channel(g)); });
        HostExchange(ch);
        t.join();
        EXPECT_EQ(guest_rc.load(), 0);
        shmx_channel_free(ch);
    }

    void ExchangeAcrossProcesses(uint32_t transport) {
        CreateHost();
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) _exit(GuestMain(name_, transport));
        shmx_channel_t *ch = Accept();
        if (ch) {
            HostExchange(ch);
            ExpectGuestGone(ch);
            shmx_channel_free(ch);
        }
        int status = WaitChild(pid, 30000);
        ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
        EXPECT_EQ(WEXITSTATUS(status), 0) << "the guest failed at step " << WEXITSTATUS(status);
        ExpectPoolAllFree();
    }

    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::string name_;
    PrivateRuntimeDir runtime_; /* made before SetUp, removed after TearDown */
};

TEST_F(HostGuestTest, ShouldExchangeEverySizeBothWaysOverShmInOneProcess) {
    ExchangeInOneProcess(kShm);
    EXPECT_GT(shmx_guest_mapped_bytes(guests_[0]), 0u);
    EXPECT_EQ(shmx_guest_mapped_bytes(guests_[0]), shmx_host_mapped_bytes(host_));
}

TEST_F(HostGuestTest, ShouldExchangeEverySizeBothWaysOverUdsInOneProcess) {
    ExchangeInOneProcess(kUds);
    EXPECT_EQ(shmx_guest_mapped_bytes(guests_[0]), 0u);
}

TEST_F(HostGuestTest, ShouldExchangeEverySizeBothWaysOverShmAcrossProcesses) { ExchangeAcrossProcesses(kShm); }

TEST_F(HostGuestTest, ShouldExchangeEverySizeBothWaysOverUdsAcrossProcesses) { ExchangeAcrossProcesses(kUds); }

TEST_F(HostGuestTest, ShouldDescribeItselfThroughItsAccessors) {
    CreateHost();
    char path[108];
    ASSERT_GT(shmx_socket_path(name_.c_str(), path, sizeof path), 0);
    EXPECT_STREQ(shmx_host_socket_path(host_), path);
    EXPECT_EQ(shmx_host_config(host_)->max_channels, 4u);
    EXPECT_EQ(shmx_host_mapped_bytes(host_), shmx_config_segment_bytes(&cfg_));
    EXPECT_GE(shmx_host_fd(host_), 0);
    shmx_channel_t *ch = nullptr;
    EXPECT_EQ(shmx_host_accept(host_, 0, &ch), -ETIMEDOUT);
    EXPECT_EQ(shmx_host_accept(host_, 20 * kMs, &ch), -ETIMEDOUT);
}

// The figure: 17 idle plugins of one host (default configuration) cost the host
// at most 16 MiB of shared memory: one segment, one shared pool, no extent until needed.
TEST_F(HostGuestTest, ShouldMapAtMost16MiBForAHostWithSeventeenIdleGuests) {
    shmx_config_default(&cfg_);
    CreateHost();
    std::vector<shmx_channel_t *> host_sides;
    for (int i = 0; i < 17; i++) {
        shmx_guest_t *g = nullptr;
        shmx_channel_t *ch = nullptr;
        ConnectPair(kShm, &g, &ch);
        ASSERT_NE(g, nullptr);
        guests_.push_back(g);
        host_sides.push_back(ch);
        EXPECT_EQ(shmx_guest_mapped_bytes(g), shmx_config_segment_bytes(&cfg_)) << "guest " << i;
    }
    EXPECT_EQ(shmx_host_channel_count(host_), 17u);
    const uint64_t mapped = shmx_host_mapped_bytes(host_);
    EXPECT_GE(mapped, shmx_config_segment_bytes(&cfg_));
    EXPECT_LE(mapped, 16ull * 1024 * 1024);
    EXPECT_EQ(shmx_host_extent_count(host_), 0u);
    RecordProperty("host_mapped_bytes_with_17_guests", std::to_string(mapped));
    printf("host with 17 idle guests maps %llu bytes (%.2f MiB)\n", (unsigned long long)mapped,
           (double)mapped / (1024.0 * 1024.0));
    /* And any of them can still send a 10 MiB message through that pool. */
    const size_t big = 10u * 1024 * 1024;
    std::vector<uint8_t> payload(big);
    for (size_t i = 0; i < big; i++) payload[i] = (uint8_t)(i * 31u + (i >> 12));
    for (int g : {0, 16}) {
        auto sent = std::async(std::launch::async, [&] {
            return shmx_channel_send(shmx_guest_channel(guests_[g]), 300, 0, 0, payload.data(), (uint32_t)big,
                                     5000 * kMs);
        });
        void *buf = nullptr;
        size_t cap = 0;
        EXPECT_EQ((int64_t)big, shmx_channel_receive_message(host_sides[g], &buf, &cap, nullptr, 5000 * kMs));
        EXPECT_GT(sent.get(), 0) << "guest " << g;
        EXPECT_TRUE(buf != nullptr && memcmp(buf, payload.data(), big) == 0) << "guest " << g;
        free(buf);
    }
    EXPECT_LE(shmx_host_mapped_bytes(host_), 16ull * 1024 * 1024) << "flow control kept it within the pool";
    for (shmx_channel_t *ch : host_sides) shmx_channel_free(ch);
}

TEST_F(HostGuestTest, ShouldRefuseBadNamesAndConfigurations) {
    shmx_host_t *h = nullptr;
    EXPECT_EQ(shmx_host_create("bad name", nullptr, &h), -SHMX_EINVAL);
    shmx_config_t bad = cfg_;
    bad.ring_bytes = 5000;
    EXPECT_EQ(shmx_host_create(name_.c_str(), &bad, &h), -SHMX_ECONFIG);
    EXPECT_EQ(h, nullptr);
    shmx_guest_t *g = nullptr;
    EXPECT_EQ(shmx_guest_connect("bad/name", kShm, 0, &g), -SHMX_EINVAL);
    EXPECT_EQ(shmx_guest_connect(name_.c_str(), 4, 0, &g), -SHMX_EINVAL);
}

TEST_F(HostGuestTest, ShouldRefuseASecondHostWithTheSameName) {
    CreateHost();
    shmx_host_t *second = nullptr;
    EXPECT_EQ(shmx_host_create(name_.c_str(), &cfg_, &second), -EADDRINUSE);
    EXPECT_EQ(second, nullptr);
}

TEST_F(HostGuestTest, ShouldGiveNoHostWhenNobodyListens) {
    shmx_guest_t *g = nullptr;
    EXPECT_EQ(shmx_guest_connect(name_.c_str(), kShm, 50 * kMs, &g), -SHMX_ENOHOST);
    EXPECT_EQ(g, nullptr);
}

TEST_F(HostGuestTest, ShouldFreeTheChannelOfAGuestThatClosesAndServeTheNext) {
    for (uint32_t transport : {kShm, kUds}) {
        if (!host_) CreateHost();
        shmx_guest_t *g = nullptr;
        shmx_channel_t *ch = nullptr;
        ConnectPair(transport, &g, &ch);
        ASSERT_NE(g, nullptr);
        // Leave something in flight both ways: a large message to the host it never reads,
        // and one to the guest that the guest never reads either.
        ASSERT_EQ(SendPattern(shmx_guest_channel(g), 100000, 1), 0);
        ASSERT_EQ(SendPattern(ch, 100000, 2), 0);
        shmx_guest_close(g);
        ExpectGuestGone(ch);
        shmx_channel_free(ch);
        EXPECT_EQ(shmx_host_channel_count(host_), 0u);
        ExpectPoolAllFree();
        ExpectAnotherGuestWorks(transport);
        ExpectPoolAllFree();
    }
}

// A child that connects, leaves slots in every state, then dies (SIGKILL
// from the parent, or its own _exit once @go_fd becomes readable) without
// closing anything.
void RunDyingGuest(const std::string &name, int ready_fd, int go_fd, bool exit_itself) {
    shmx_guest_t *g = nullptr;
    if (shmx_guest_connect(name.c_str(), kShm, 10 * kSecond, &g) != 0) _exit(2);
    shmx_channel_t *ch = shmx_guest_channel(g);
    shmx_message_t held;
    if (shmx_channel_receive(ch, &held, 10 * kSecond) != 0) _exit(3); // held, never released
    if (SendPattern(ch, 100000, 7) != 0 || SendPattern(ch, 200000, 8) != 0) _exit(4); // sent, never read
    void *claimed;
    if (shmx_channel_claim(ch, 300000, 10 * kSecond, &claimed) != 0) _exit(5); // claimed, never committed
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1) _exit(6);
    // The host takes everything back the moment it notices: let it count first.
    if (exit_itself && read(go_fd, &c, 1) >= 0) _exit(0);
    for (;;) pause();
}

TEST_F(HostGuestTest, ShouldReclaimEverythingOfAGuestThatDiesAndServeOthers) {
    for (bool exit_itself : {false, true}) {
        if (!host_) CreateHost();
        // A bystander guest that must not notice anything.
        shmx_guest_t *other = nullptr;
        shmx_channel_t *other_ch = nullptr;
        ConnectPair(kShm, &other, &other_ch);
        ASSERT_NE(other, nullptr);
        guests_.push_back(other);

        int ready[2], go[2];
        ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) RunDyingGuest(name_, ready[1], go[0], exit_itself);
        close(ready[1]);
        close(go[0]);
        shmx_channel_t *ch = Accept();
        ASSERT_NE(ch, nullptr);
        ASSERT_EQ(SendPattern(ch, 150000, 9), 0);
        struct pollfd p = {ready[0], POLLIN, 0};
        ASSERT_EQ(poll(&p, 1, 10000), 1) << "the child never got ready";
        char c;
        ASSERT_EQ(read(ready[0], &c, 1), 1);
        close(ready[0]);

        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        uint32_t busy = 0;
        for (uint32_t k = 0; k < st.class_count; k++) busy += st.claimed_slots[k] + st.sent_slots[k];
        EXPECT_EQ(busy, 4u) << "one held, two sent, one claimed";

        if (exit_itself) ASSERT_EQ(write(go[1], "g", 1), 1);
        else kill(pid, SIGKILL);
        close(go[1]);
        int status = WaitChild(pid, 10000);
        EXPECT_TRUE(exit_itself ? WIFEXITED(status) : WIFSIGNALED(status));

        EXPECT_EQ(shmx_channel_peer_alive(ch), 0);
        if (exit_itself) ExpectGuestGone(ch); // this time the host reads what the guest left
        shmx_channel_free(ch);
        ExpectPoolAllFree();

        // The bystander still works, and a newcomer gets the freed entry.
        std::atomic<int> other_rc{-1};
        std::thread t([&] { other_rc = GuestExchange(shmx_guest_channel(other)); });
        HostExchange(other_ch);
        t.join();
        EXPECT_EQ(other_rc.load(), 0);
        ExpectAnotherGuestWorks(kShm);

        shmx_guest_close(other);
        guests_.pop_back();
        ExpectGuestGone(other_ch);
        shmx_channel_free(other_ch);
        ExpectPoolAllFree();
        EXPECT_EQ(shmx_host_channel_count(host_), 0u);
    }
}

TEST_F(HostGuestTest, ShouldTellTheGuestBeyondMaxChannelsThatTheHostIsFull) {
    cfg_.max_channels = 2;
    CreateHost();
    std::vector<int> accepted;
    std::vector<shmx_channel_t *> channels;
    std::thread host([&] {
        for (int i = 0; i < 3; i++) {
            shmx_channel_t *ch = nullptr;
            accepted.push_back(shmx_host_accept(host_, 10 * kSecond, &ch));
            if (ch) channels.push_back(ch);
        }
    });
    int rcs[3];
    for (int i = 0; i < 3; i++) {
        shmx_guest_t *g = nullptr;
        rcs[i] = shmx_guest_connect(name_.c_str(), kShm, 10 * kSecond, &g);
        if (g) guests_.push_back(g);
    }
    host.join();
    EXPECT_EQ(rcs[0], 0);
    EXPECT_EQ(rcs[1], 0);
    EXPECT_EQ(rcs[2], -SHMX_EFULL);
    ASSERT_EQ(accepted.size(), 3u);
    EXPECT_EQ(accepted[2], -SHMX_EFULL);
    EXPECT_EQ(channels.size(), 2u);
    // Entries are distinct, and one freed entry lets the next guest in.
    ASSERT_EQ(channels.size(), 2u);
    EXPECT_NE(shmx_channel_index(channels[0]), shmx_channel_index(channels[1]));
    shmx_guest_close(guests_[0]);
    guests_.erase(guests_.begin());
    ExpectGuestGone(channels[0]);
    shmx_channel_free(channels[0]);
    ExpectAnotherGuestWorks(kShm);
    shmx_channel_free(channels[1]);
}

TEST_F(HostGuestTest, ShouldGiveAReusedEntryAFreshEpoch) {
    cfg_.max_channels = 1;
    CreateHost();
    shmx_channel_ctl_t *ctl = shmx_segment_channel(shmx_host_segment(host_), 0);
    uint32_t epochs[2] = {};
    for (uint32_t &epoch : epochs) {
        shmx_guest_t *g = nullptr;
        shmx_channel_t *ch = nullptr;
        ConnectPair(kShm, &g, &ch);
        ASSERT_NE(g, nullptr);
        EXPECT_EQ(shmx_channel_index(ch), 0u);
        EXPECT_EQ(__atomic_load_n(&ctl->state, __ATOMIC_ACQUIRE), (uint32_t)SHMX_CHANNEL_ACTIVE);
        epoch = __atomic_load_n(&ctl->epoch, __ATOMIC_ACQUIRE);
        shmx_guest_close(g);
        ExpectGuestGone(ch);
        shmx_channel_free(ch);
        EXPECT_EQ(__atomic_load_n(&ctl->state, __ATOMIC_ACQUIRE), (uint32_t)SHMX_CHANNEL_FREE);
    }
    EXPECT_NE(epochs[0], 0u);
    EXPECT_NE(epochs[0], epochs[1]);
}

TEST_F(HostGuestTest, ShouldNotReuseTheEntryOfAFreedGuestThatStillRuns) {
    cfg_.max_channels = 1;
    CreateHost();
    shmx_guest_t *a = nullptr;
    shmx_channel_t *ch = nullptr;
    ConnectPair(kShm, &a, &ch);
    ASSERT_NE(a, nullptr);
    shmx_channel_free(ch); /* the host lets go of a guest that is still running */

    /* The old guest learns it, and its entry is not handed to anyone while it runs. */
    shmx_message_t m;
    int rc = shmx_channel_receive(shmx_guest_channel(a), &m, 2 * kSecond);
    EXPECT_TRUE(rc == -SHMX_ECLOSED || rc == -SHMX_EHOSTGONE) << shmx_strerror(rc);
    std::atomic<int> brc{1};
    shmx_guest_t *b = nullptr;
    std::thread t([&] { brc = shmx_guest_connect(name_.c_str(), kShm, 10 * kSecond, &b); });
    shmx_channel_t *none = nullptr;
    EXPECT_EQ(-SHMX_EFULL, shmx_host_accept(host_, 10 * kSecond, &none));
    t.join();
    EXPECT_EQ(-SHMX_EFULL, brc.load());
    EXPECT_EQ(nullptr, b);

    /* Once it hangs up, the entry is reclaimed and the next guest is served. */
    shmx_guest_close(a);
    ExpectAnotherGuestWorks(kShm);
    ExpectPoolAllFree();
}

TEST_F(HostGuestTest, ShouldRefuseATransportTheHostDoesNotOffer) {
    cfg_.transports = kShm;
    CreateHost();
    int host_rc = 1;
    std::thread host([&] {
        shmx_channel_t *ch = nullptr;
        host_rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        if (ch) shmx_channel_free(ch);
    });
    shmx_guest_t *g = nullptr;
    EXPECT_EQ(shmx_guest_connect(name_.c_str(), kUds, 10 * kSecond, &g), -SHMX_ETRANSPORT);
    host.join();
    EXPECT_EQ(host_rc, -SHMX_ETRANSPORT);
    EXPECT_EQ(g, nullptr);
}

// Connect to a host's socket by hand, bypassing every check of the guest side.
int RawConnect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

TEST_F(HostGuestTest, ShouldDropSilentAndGarbledGuestsAndGoOn) {
    CreateHost();
    int silent = RawConnect(shmx_host_socket_path(host_));
    ASSERT_GE(silent, 0);
    shmx_channel_t *ch = nullptr;
    EXPECT_EQ(shmx_host_accept(host_, 10 * kSecond, &ch), -SHMX_EPROTO);
    int garbled = RawConnect(shmx_host_socket_path(host_));
    ASSERT_GE(garbled, 0);
    char junk[16];
    memset(junk, 0xAB, sizeof junk);
    ASSERT_EQ(write(garbled, junk, sizeof junk), (ssize_t)sizeof junk);
    EXPECT_EQ(shmx_host_accept(host_, 10 * kSecond, &ch), -SHMX_EPROTO);
    EXPECT_EQ(ch, nullptr);
    close(silent);
    close(garbled);
    EXPECT_EQ(shmx_host_channel_count(host_), 0u);
    ExpectAnotherGuestWorks(kShm);
}

// A host running as another user, met by root (who can reach any socket): the
// SO_PEERCRED check is what refuses it, and the host goes on.
TEST_F(HostGuestTest, ShouldRefuseAGuestOfAnotherUser) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run the host as a second user";
    const uid_t other = 65534;
    char tmpl[] = "/tmp/shmxhuXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string host_runtime = tmpl;
    ASSERT_EQ(chown(tmpl, other, other), 0);
    int result[2];
    ASSERT_EQ(pipe2(result, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgid(other) != 0 || setuid(other) != 0) _exit(2);
        setenv("XDG_RUNTIME_DIR", tmpl, 1);
        shmx_host_t *h = nullptr;
        int rc = shmx_host_create(name_.c_str(), &cfg_, &h);
        if (write(result[1], &rc, sizeof rc) != (ssize_t)sizeof rc || rc != 0) _exit(3);
        shmx_channel_t *ch = nullptr;
        rc = shmx_host_accept(h, 10 * kSecond, &ch);
        if (write(result[1], &rc, sizeof rc) != (ssize_t)sizeof rc) _exit(4);
        shmx_host_destroy(h);
        _exit(0);
    }
    close(result[1]);
    // Wait until the host made its directory: a guest that came first would create it as root.
    int host_rc = 1;
    struct pollfd p = {result[0], POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1);
    ASSERT_EQ(read(result[0], &host_rc, sizeof host_rc), (ssize_t)sizeof host_rc);
    ASSERT_EQ(host_rc, 0) << shmx_strerror(host_rc);
    std::string path = host_runtime + "/shmx/" + name_ + ".sock";
    int64_t deadline = shmx_deadline(10 * kSecond);
    int fd = RawConnect(path.c_str()); // shmx_bootstrap_connect would refuse another user's directory
    ASSERT_GE(fd, 0) << strerror(errno);
    shmx_hello_t hello = {kShm};
    shmx_bootstrap_send_hello(fd, &hello); // may fail: the host may hang up first
    shmx_welcome_t w = {};
    int seg_fd = -1;
    ASSERT_EQ(shmx_bootstrap_recv_welcome(fd, deadline, &w, &seg_fd), 0);
    EXPECT_EQ(w.status, -SHMX_EPEERCRED);
    EXPECT_EQ(seg_fd, -1) << "a refused guest never gets the segment";
    close(fd);
    ASSERT_EQ(poll(&p, 1, 10000), 1);
    ASSERT_EQ(read(result[0], &host_rc, sizeof host_rc), (ssize_t)sizeof host_rc);
    EXPECT_EQ(host_rc, -SHMX_EPEERCRED);
    close(result[0]);
    int status = WaitChild(pid, 10000);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    nftw(host_runtime.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_F(HostGuestTest, ShouldTellGuestsThatTheHostIsGoneAfterDestroy) {
    CreateHost();
    shmx_guest_t *gs[2] = {};
    shmx_channel_t *chs[2] = {};
    ConnectPair(kShm, &gs[0], &chs[0]);
    ConnectPair(kUds, &gs[1], &chs[1]);
    ASSERT_NE(gs[0], nullptr);
    ASSERT_NE(gs[1], nullptr);
    guests_.push_back(gs[0]);
    guests_.push_back(gs[1]);
    shmx_host_destroy(host_);
    host_ = nullptr;
    for (shmx_guest_t *g : gs) {
        shmx_message_t m;
        EXPECT_EQ(shmx_channel_receive(shmx_guest_channel(g), &m, 5 * kSecond), -SHMX_EHOSTGONE)
            << "transport " << shmx_channel_transport(shmx_guest_channel(g));
        EXPECT_EQ(shmx_channel_peer_alive(shmx_guest_channel(g)), 0);
    }
}

TEST_F(HostGuestTest, ShouldTellTheGuestThatTheHostIsGoneWhenItDies) {
    int ready[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name_.c_str(), &cfg_, &h) != 0) _exit(2);
        shmx_channel_t *ch = nullptr;
        if (shmx_host_accept(h, 10 * kSecond, &ch) != 0) _exit(3);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1) _exit(4);
        for (;;) pause();
    }
    close(ready[1]);
    shmx_guest_t *g = nullptr;
    ASSERT_EQ(shmx_guest_connect(name_.c_str(), kShm, 10 * kSecond, &g), 0);
    guests_.push_back(g);
    struct pollfd p = {ready[0], POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1);
    close(ready[0]);
    kill(pid, SIGKILL);
    WaitChild(pid, 10000);
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(shmx_guest_channel(g), &m, 5 * kSecond), -SHMX_EHOSTGONE);
}

} // namespace
