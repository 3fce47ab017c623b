// Process death and liveness with a C host (RELIABILITY.md L1-L5, W2, W3 and
// the peer listener): real processes (fork) killed with SIGKILL at chosen
// steps, a host killed under its guests, a guest stopped past liveness_ms, a
// guest flooding its bootstrap socket, and a short kill loop. Every wait is
// bounded; timing bounds are generous (a shared 2-CPU machine) and the
// measured figures are printed: timing claims live in shmx-kill-bench and
// scripts/soak.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "private_headers.h"
#include "test_pattern.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
// The targets (issue 4): a death is noticed and a host's death seen within 100 ms. Tests
// allow this much on top, for a loaded machine; the benchmarks measure the real figure.
constexpr int64_t kSlackMs = 900;

int64_t NowNs() { return shmx_now_ns(); }

// Descriptors open in this process (the host's fd count).
int CountFds() {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (struct dirent *e = readdir(d))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; // the directory's own descriptor
}

// Send @len bytes of pattern(@seed) (claim, fill, commit). Returns the id or a negative code.
int64_t SendSeeded(shmx_channel_t *ch, uint32_t len, uint32_t seed, int64_t timeout_ns = 5 * kSecond) {
    std::vector<uint8_t> p = pattern(seed, len);
    return shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, p.data(), len, timeout_ns);
}

// Receive one message and check it is pattern(@seed) of @len bytes. 0, a negative code or 1 (wrong bytes).
int ReceiveSeeded(shmx_channel_t *ch, uint32_t len, uint32_t seed, bool release = true,
                  int64_t timeout_ns = 5 * kSecond) {
    shmx_message_t m;
    int rc = shmx_channel_receive(ch, &m, timeout_ns);
    if (rc != 0) return rc;
    int bad = m.length != len || first_mismatch(m.data, seed, len) >= 0;
    if (release) shmx_channel_release(ch, &m);
    return bad;
}

// One byte (or a small record) from a child through a pipe, within @ms. Returns bytes read or -1.
ssize_t ReadWithin(int fd, void *buf, size_t len, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return -1;
    return read(fd, buf, len);
}

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) == 0) {
            r = fds[0];
            w = fds[1];
        }
    }
    ~Pipe() {
        if (r >= 0) close(r);
        if (w >= 0) close(w);
    }
    void CloseWrite() {
        if (w >= 0) close(w);
        w = -1;
    }
};

// Pool slots by state, summed over the classes.
struct PoolCount {
    uint32_t free = 0, claimed = 0, sent = 0, total = 0;
};

PoolCount CountPool(shmx_host_t *h) {
    shmx_pool_stats_t st;
    shmx_pool_stats(shmx_host_pool(h), &st);
    PoolCount c;
    for (uint32_t k = 0; k < st.class_count; k++) {
        c.free += st.free_slots[k];
        c.claimed += st.claimed_slots[k];
        c.sent += st.sent_slots[k];
        c.total += st.total_slots[k];
    }
    return c;
}

// The peer listener: keeps every event for the test to wait on.
class Events {
  public:
    static void Listener(void *arg, const shmx_peer_event_t *e) {
        auto *self = static_cast<Events *>(arg);
        std::lock_guard<std::mutex> lock(self->mu_);
        self->events_.push_back(*e);
        self->cv_.notify_all();
    }
    // The event of entry @peer's incarnation @epoch, within @ms.
    bool Wait(uint32_t peer, uint32_t epoch, int ms, shmx_peer_event_t *out) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] {
            for (const auto &e : events_)
                if (e.peer == peer && e.epoch == epoch) {
                    *out = e;
                    return true;
                }
            return false;
        });
    }
    size_t Count(uint32_t reason) {
        std::lock_guard<std::mutex> lock(mu_);
        size_t n = 0;
        for (const auto &e : events_) n += e.reason == reason;
        return n;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<shmx_peer_event_t> events_;
};

/*
 * Complete the open claim on @ch exactly as shmx_channel_commit does but
 * publish without the wake-up: the frame header (and slot reference), the
 * slot handed to the receiver, the record header and the tail stored with
 * release; shmx_waitpoint_notify is what is left out. This is the state of a
 * producer that dies between shmx_ring_commit's stores and its notify.
 */
int PublishWithoutWake(shmx_channel_t *ch, uint64_t id) {
    if (!ch->claim_open) return -SHMX_ESTATE;
    int rc;
    if (ch->claim_in_slot) {
        rc = shmx_frame_header_encode(ch->claim_body, SHMX_TYPE_DATA, 0, id, ch->claim_payload, ch->claim_len);
        memcpy(ch->claim_body + SHMX_FRAME_HEADER_SIZE, &ch->claim_slot, sizeof ch->claim_slot);
        if (rc >= 0) rc = shmx_pool_send(ch->pool, &ch->claim_slot, ch->self_owner, ch->peer_owner);
    } else {
        rc = shmx_frame_encode(ch->claim_body, SHMX_FRAME_HEADER_SIZE + ch->claim_len, SHMX_TYPE_DATA, 0, id,
                               ch->claim_payload, ch->claim_len);
    }
    if (rc < 0) return rc;
    shmx_ring_t *r = &ch->tx;
    if (r->claim_pos != r->tail) return -SHMX_ESTATE; // padding is not needed in these fresh rings
    __atomic_store_n(reinterpret_cast<uint64_t *>(r->data + (r->claim_pos & r->mask)), r->claim_header,
                     __ATOMIC_RELEASE);
    r->tail += r->claim_total;
    r->claim_total = 0;
    __atomic_store_n(reinterpret_cast<uint64_t *>(&r->ctl->tail), r->tail, __ATOMIC_RELEASE);
    ch->claim_open = 0;
    return 0;
}

// Connect a guest to @name over shm (a child's first step).
shmx_guest_t *ConnectOrExit(const std::string &name) {
    shmx_guest_t *g = nullptr;
    if (shmx_guest_connect(name.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) _exit(90);
    return g;
}

void WriteOrExit(int fd, const void *p, size_t n) {
    if (write(fd, p, n) != static_cast<ssize_t>(n)) _exit(91);
}

// The step of a send at which a producer dies (L1).
enum class Step { kAfterClaim, kMidPayload, kPublishedNotWoken };

class LivenessTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = unique_label("lv");
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
    }

    void TearDown() override {
        for (pid_t p : children_) {
            kill(p, SIGKILL);
            WaitChild(p, 5000);
        }
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        shmx_host_destroy(host_);
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(shmx_host_set_peer_listener(host_, Events::Listener, &events_), 0);
    }

    shmx_channel_t *Accept() {
        shmx_channel_t *ch = nullptr;
        int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        return ch;
    }

    // Fork a child running @f (its return value is the exit status); it is killed at TearDown if still there.
    template <class F>
    pid_t Fork(F f) {
        pid_t pid = fork();
        if (pid == 0) {
            if constexpr (std::is_void_v<decltype(f())>) {
                f(); // a child that only ends by a signal
                _exit(0);
            } else {
                _exit(f());
            }
        }
        if (pid > 0) children_.push_back(pid);
        return pid;
    }

    // Reap @pid (bounded) and forget it.
    int Reap(pid_t pid) {
        int status = WaitChild(pid, 10000);
        for (auto it = children_.begin(); it != children_.end(); ++it)
            if (*it == pid) {
                children_.erase(it);
                break;
            }
        return status;
    }

    // A guest in this process, connected while this thread accepts it.
    void ConnectHere(shmx_guest_t **g, shmx_channel_t **host_side) {
        std::atomic<int> rc{1};
        std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, g); });
        *host_side = Accept();
        t.join();
        ASSERT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
        ASSERT_NE(*host_side, nullptr);
        guests_.push_back(*g);
    }

    void CloseHere(shmx_guest_t *g) {
        for (auto it = guests_.begin(); it != guests_.end(); ++it)
            if (*it == g) {
                guests_.erase(it);
                break;
            }
        shmx_guest_close(g);
    }

    // @n round trips on an in-process guest (a thread echoes on the host side).
    void ExpectRoundTrips(shmx_guest_t *g, shmx_channel_t *host_side, int n, uint32_t len = 64) {
        std::atomic<int> echo_rc{0};
        std::thread echo([&] {
            for (int i = 0; i < n; i++) {
                shmx_message_t m;
                int rc = shmx_channel_receive(host_side, &m, 5 * kSecond);
                if (rc == 0) {
                    int64_t id = shmx_channel_send(host_side, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, 5 * kSecond);
                    shmx_channel_release(host_side, &m);
                    if (id < 0) rc = (int)id;
                }
                if (rc != 0) {
                    echo_rc = rc;
                    return;
                }
            }
        });
        shmx_channel_t *ch = shmx_guest_channel(g);
        for (int i = 0; i < n; i++) {
            ASSERT_GT(SendSeeded(ch, len, 1000u + (uint32_t)i), 0) << "round trip " << i;
            ASSERT_EQ(ReceiveSeeded(ch, len, 1000u + (uint32_t)i), 0) << "round trip " << i;
        }
        echo.join();
        EXPECT_EQ(echo_rc.load(), 0) << shmx_strerror(echo_rc.load());
    }

    // Every pool slot free, none claimed or sent.
    void ExpectPoolAllFree(const char *when) {
        PoolCount c = CountPool(host_);
        EXPECT_EQ(c.free, c.total) << when;
        EXPECT_EQ(c.claimed, 0u) << when;
        EXPECT_EQ(c.sent, 0u) << when;
    }

    void ProducerKill(Step step); // L1, below

    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::string name_;
    Events events_;
    std::vector<pid_t> children_;
    std::vector<shmx_guest_t *> guests_;
    PrivateRuntimeDir runtime_;
};

// ---- L1: a producer killed at each step of a send ---------------------------------------

// Committed before the step under test: inline and slot messages of two classes.
constexpr uint32_t kCommitted[] = {64, 2000, 70000, 64, 5000};
constexpr uint32_t kCommittedCount = sizeof kCommitted / sizeof kCommitted[0];
constexpr uint32_t kLate[] = {100, 300000}; // published without a wake (step c): one inline, one slot
constexpr uint32_t kHalfWritten = 300000;

int ProducerChild(const std::string &name, Step step, int ready_fd, int go_fd) {
    shmx_guest_t *g = ConnectOrExit(name);
    shmx_channel_t *ch = shmx_guest_channel(g);
    for (uint32_t i = 0; i < kCommittedCount; i++)
        if (SendSeeded(ch, kCommitted[i], i) <= 0) return 10 + (int)i;
    void *dst = nullptr;
    if (step == Step::kPublishedNotWoken) {
        char c;
        WriteOrExit(ready_fd, "r", 1);
        if (read(go_fd, &c, 1) != 1) return 20;
        for (uint32_t k = 0; k < 2; k++) {
            uint32_t len = kLate[k];
            if (shmx_channel_claim(ch, len, kSecond, &dst) != 0) return 21;
            std::vector<uint8_t> p = pattern(kCommittedCount + k, len);
            memcpy(dst, p.data(), len);
            if (PublishWithoutWake(ch, kCommittedCount + 1 + k) != 0) return 22;
        }
        raise(SIGKILL); // dies right after publishing: nobody ever wakes the host
        return 23;
    }
    if (shmx_channel_claim(ch, kHalfWritten, kSecond, &dst) != 0) return 30;
    if (step == Step::kMidPayload) {
        std::vector<uint8_t> p = pattern(77, kHalfWritten);
        memcpy(dst, p.data(), kHalfWritten / 2);
    }
    WriteOrExit(ready_fd, "r", 1);
    for (;;) pause();
}

TEST_F(LivenessTest, ShouldDeliverCommittedAndReclaimClaimedSlotOfProducerKilledAfterClaim) {
    CreateHost();
    ProducerKill(Step::kAfterClaim);
}

TEST_F(LivenessTest, ShouldDeliverCommittedAndReclaimSlotOfProducerKilledMidPayload) {
    CreateHost();
    ProducerKill(Step::kMidPayload);
}

// Also W2: the producer dies between publishing and waking; the waiting host still finds the data.
TEST_F(LivenessTest, ShouldDeliverWhatAProducerPublishedButDiedBeforeWaking) {
    CreateHost();
    ProducerKill(Step::kPublishedNotWoken);
}

void LivenessTest::ProducerKill(Step step) {
    LivenessTest *t = this;
    Pipe ready, go;
    std::string name = t->name_;
    pid_t pid = t->Fork([&] { return ProducerChild(name, step, ready.w, go.r); });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = t->Accept();
    ASSERT_NE(ch, nullptr);
    uint32_t idx = shmx_channel_index(ch), epoch = shmx_channel_epoch(ch);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1) << "the producer never got ready";

    // Everything committed arrives once, in order, intact.
    for (uint32_t i = 0; i < kCommittedCount; i++) ASSERT_EQ(ReceiveSeeded(ch, kCommitted[i], i), 0) << "message " << i;

    // Now the host waits in a receive while the producer dies.
    std::atomic<int64_t> woke_ns{0};
    std::atomic<int> first_rc{1};
    std::vector<int> late_rc;
    std::thread waiter([&] {
        if (step == Step::kPublishedNotWoken) {
            for (uint32_t k = 0; k < 2; k++) late_rc.push_back(ReceiveSeeded(ch, kLate[k], kCommittedCount + k, true, 10 * kSecond));
        }
        shmx_message_t m;
        first_rc = shmx_channel_receive(ch, &m, 10 * kSecond);
        woke_ns = NowNs();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // the waiter is asleep by now
    int64_t t0 = NowNs();
    if (step == Step::kPublishedNotWoken) ASSERT_EQ(write(go.w, "g", 1), 1);
    else kill(pid, SIGKILL);
    waiter.join();
    int status = t->Reap(pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

    if (step == Step::kPublishedNotWoken) {
        ASSERT_EQ(late_rc.size(), 2u);
        EXPECT_EQ(late_rc[0], 0) << "the inline message published without a wake";
        EXPECT_EQ(late_rc[1], 0) << "the slot message published without a wake";
    }
    EXPECT_EQ(first_rc.load(), -SHMX_ECLOSED) << shmx_strerror(first_rc.load());
    int64_t woke_ms = (woke_ns.load() - t0) / kMs;
    printf("[ measure  ] step %d: the host's waiting receive ended %lld ms after the %s\n", (int)step,
           (long long)woke_ms, step == Step::kPublishedNotWoken ? "go (publish, then death)" : "kill");
    EXPECT_LT(woke_ms, 100 + kSlackMs);

    // Exactly once: nothing more after the end.
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(ch, &m, 0), -SHMX_ECLOSED);

    shmx_peer_event_t ev;
    ASSERT_TRUE(t->events_.Wait(idx, epoch, 5000, &ev)) << "no peer event";
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED);
    EXPECT_EQ(ev.pid, pid);
    // The open claim's slot (steps a, b) was the guest's; what it published is the host's.
    EXPECT_EQ(ev.reclaimed, step == Step::kPublishedNotWoken ? 0u : 1u);
    PoolCount before = CountPool(t->host_);
    EXPECT_EQ(before.claimed, 0u) << "the dead producer's claim was taken back at once";
    EXPECT_EQ(before.sent, 0u);
    shmx_channel_free(ch);
    PoolCount after = CountPool(t->host_);
    EXPECT_EQ(after.free, after.total);
}

// ---- L1 the other way: the host produces, the consuming guest dies mid-stream --------------

TEST_F(LivenessTest, ShouldFailTheHostsSendsSoonAfterItsConsumerIsKilledMidStream) {
    CreateHost();
    Pipe ready;
    constexpr uint32_t kSizes[] = {64, 3000, 70000, 500000};
    std::string name = name_;
    pid_t pid = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        shmx_channel_t *ch = shmx_guest_channel(g);
        for (uint32_t i = 0;; i++) {
            int rc = ReceiveSeeded(ch, kSizes[i % 4], i, true, 10 * kSecond);
            if (rc != 0) return 40;
            if (i == 20) WriteOrExit(ready.w, "r", 1);
        }
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    uint32_t idx = shmx_channel_index(ch), epoch = shmx_channel_epoch(ch);
    std::atomic<int64_t> fail_ns{0};
    std::atomic<int64_t> fail_rc{0};
    std::atomic<uint32_t> sent{0};
    std::thread producer([&] {
        for (uint32_t i = 0;; i++) {
            int64_t id = SendSeeded(ch, kSizes[i % 4], i, 10 * kSecond);
            if (id < 0) {
                fail_ns = NowNs();
                fail_rc = id;
                return;
            }
            sent = i + 1;
        }
    });
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1) << "the consumer never got going";
    std::this_thread::sleep_for(std::chrono::milliseconds(std::random_device{}() % 20));
    int64_t t0 = NowNs();
    kill(pid, SIGKILL);
    producer.join();
    int status = Reap(pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the consumer failed on its own: exit " << WEXITSTATUS(status);
    EXPECT_EQ(fail_rc.load(), -SHMX_ECLOSED) << shmx_strerror((int)fail_rc.load());
    int64_t ms = (fail_ns.load() - t0) / kMs;
    printf("[ measure  ] %u messages sent; the host's send failed %lld ms after the kill\n", sent.load(),
           (long long)ms);
    EXPECT_LT(ms, 100 + kSlackMs);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(idx, epoch, 5000, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED);
    PoolCount before = CountPool(host_);
    EXPECT_EQ(before.claimed + before.sent, 0u) << "everything sent to the dead consumer was taken back";
    EXPECT_EQ(before.free, before.total);
    shmx_channel_free(ch);
    ExpectPoolAllFree("after free");
}

// ---- L2: a consumer killed holding N received, unreleased messages ------------------------

TEST_F(LivenessTest, ShouldReclaimEveryMessageAKilledConsumerHeldAcrossClasses) {
    CreateHost();
    // Slot messages of every class (4 KiB, 64 KiB, 1 MiB) plus two inline ones.
    const std::vector<uint32_t> sizes = {2000, 3000, 4000, 50000, 60000, 500000, 64, 900};
    const uint32_t slot_messages = 6;
    Pipe ready;
    std::string name = name_;
    pid_t pid = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        shmx_channel_t *ch = shmx_guest_channel(g);
        for (uint32_t i = 0; i < sizes.size(); i++)
            if (ReceiveSeeded(ch, sizes[i], i, false, 10 * kSecond) != 0) return 50; // held
        WriteOrExit(ready.w, "r", 1);
        for (;;) pause();
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    uint32_t idx = shmx_channel_index(ch), epoch = shmx_channel_epoch(ch);
    for (uint32_t i = 0; i < sizes.size(); i++) ASSERT_GT(SendSeeded(ch, sizes[i], i), 0);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1) << "the consumer never got ready";

    shmx_pool_stats_t st;
    shmx_pool_stats(shmx_host_pool(host_), &st);
    for (uint32_t k = 0; k < st.class_count; k++) {
        EXPECT_EQ(st.sent_slots[k], k == 2 ? 1u : k == 1 ? 2u : 3u) << "held in class " << k;
        EXPECT_EQ(st.free_slots[k] + st.sent_slots[k] + st.claimed_slots[k], st.total_slots[k])
            << "free + held + in flight == total, class " << k;
    }
    int64_t t0 = NowNs();
    kill(pid, SIGKILL);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(idx, epoch, 5000, &ev)) << "no peer event";
    printf("[ measure  ] death noticed %lld us after the kill\n", (long long)((ev.noticed_ns - t0) / 1000));
    EXPECT_LT(ev.noticed_ns - t0, (100 + kSlackMs) * kMs);
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED);
    EXPECT_EQ(ev.reclaimed, slot_messages);
    // At once, before the application frees the channel.
    shmx_pool_stats(shmx_host_pool(host_), &st);
    for (uint32_t k = 0; k < st.class_count; k++) {
        EXPECT_EQ(st.sent_slots[k] + st.claimed_slots[k], 0u) << "class " << k;
        EXPECT_EQ(st.free_slots[k], st.total_slots[k]) << "class " << k;
    }
    Reap(pid);
    shmx_channel_free(ch);
    ExpectPoolAllFree("after free");
}

// ---- L3: a C host killed under its guests --------------------------------------------------

TEST_F(LivenessTest, ShouldTellEveryGuestThatTheHostIsGoneWithinTheBound) {
    constexpr int kGuests = 3;
    Pipe ready;
    std::string name = name_;
    shmx_config_t cfg = cfg_;
    pid_t pid = Fork([&] {
        // The host: accept every guest and echo on each channel until killed.
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) return 60;
        std::vector<std::thread> echo;
        for (int i = 0; i < kGuests; i++) {
            shmx_channel_t *ch = nullptr;
            if (shmx_host_accept(h, 10 * kSecond, &ch) != 0) return 61;
            echo.emplace_back([ch] {
                for (;;) {
                    shmx_message_t m;
                    if (shmx_channel_receive(ch, &m, -1) != 0) return;
                    shmx_channel_send(ch, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, kSecond);
                    shmx_channel_release(ch, &m);
                }
            });
        }
        WriteOrExit(ready.w, "r", 1);
        for (;;) pause();
    });
    ASSERT_GT(pid, 0);
    shmx_guest_t *g[kGuests] = {};
    for (int i = 0; i < kGuests; i++) {
        ASSERT_EQ(shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g[i]), 0);
        guests_.push_back(g[i]);
    }
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1) << "the host never got ready";
    for (int i = 0; i < kGuests; i++) {
        shmx_channel_t *ch = shmx_guest_channel(g[i]);
        ASSERT_GT(SendSeeded(ch, 70000, (uint32_t)i), 0);
        ASSERT_EQ(ReceiveSeeded(ch, 70000, (uint32_t)i), 0) << "guest " << i << "'s round trip";
    }
    // Guests 0 and 1 wait in a receive; guest 2 will send.
    shmx_channel_t *sender = shmx_guest_channel(g[2]);
    std::atomic<int> rcs[2] = {{1}, {1}};
    std::atomic<int64_t> woke[2] = {{0}, {0}};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 2; i++)
        waiters.emplace_back([&, i] {
            shmx_message_t m;
            rcs[i] = shmx_channel_receive(shmx_guest_channel(g[i]), &m, 10 * kSecond);
            woke[i] = NowNs();
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int64_t t0 = NowNs();
    kill(pid, SIGKILL);
    for (auto &w : waiters) w.join();
    for (int i = 0; i < 2; i++) {
        int64_t ms = (woke[i].load() - t0) / kMs;
        printf("[ measure  ] guest %d saw the host gone %lld ms after the kill\n", i, (long long)ms);
        EXPECT_EQ(rcs[i].load(), -SHMX_EHOSTGONE) << shmx_strerror(rcs[i].load());
        EXPECT_LT(ms, 100 + kSlackMs);
    }
    Reap(pid);
    // Later waiting calls fail the same way (zero-timeout calls: see ShouldKeepReportingTheHostGoneOnceNoticed).
    for (int i = 0; i < kGuests; i++) {
        shmx_message_t m;
        shmx_channel_t *ch = shmx_guest_channel(g[i]);
        EXPECT_EQ(shmx_channel_receive(ch, &m, 50 * kMs), -SHMX_EHOSTGONE) << "guest " << i;
        EXPECT_EQ(shmx_channel_peer_alive(ch), 0);
    }
    // Sends into the dead host's rings notice within CLAIMS_PER_CHECK (64) claims or at the first wait.
    int ok = 0;
    int64_t rc = 0;
    for (int i = 0; i < 200 && (rc = SendSeeded(sender, i % 2 ? 64 : 5000, (uint32_t)i, kSecond)) > 0; i++) ok++;
    printf("[ measure  ] the sender noticed after %d more sends\n", ok);
    EXPECT_EQ(rc, -SHMX_EHOSTGONE) << shmx_strerror((int)rc);
    EXPECT_LE(ok, 64);
    for (int i = 0; i < kGuests; i++) CloseHere(g[i]); // unmaps cleanly (ASan)
}

// Once a guest was told -SHMX_EHOSTGONE, every later call says so, even one that does not wait.
// (Fails on the core of 422f1b8: the notice is not kept; see the report.)
TEST_F(LivenessTest, ShouldKeepReportingTheHostGoneOnceNoticed) {
    Pipe ready;
    std::string name = name_;
    shmx_config_t cfg = cfg_;
    pid_t pid = Fork([&] {
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) return 60;
        for (int i = 0; i < 2; i++) {
            shmx_channel_t *ch = nullptr;
            if (shmx_host_accept(h, 10 * kSecond, &ch) != 0) return 61;
        }
        WriteOrExit(ready.w, "r", 1);
        for (;;) pause();
    });
    ASSERT_GT(pid, 0);
    shmx_guest_t *rx = nullptr, *tx = nullptr;
    ASSERT_EQ(shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &rx), 0);
    guests_.push_back(rx);
    ASSERT_EQ(shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &tx), 0);
    guests_.push_back(tx);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    kill(pid, SIGKILL);
    Reap(pid);
    shmx_message_t m;
    shmx_channel_t *rch = shmx_guest_channel(rx);
    ASSERT_EQ(shmx_channel_receive(rch, &m, kSecond), -SHMX_EHOSTGONE);
    EXPECT_EQ(shmx_channel_receive(rch, &m, 0), -SHMX_EHOSTGONE) << "a receive after the notice";
    void *dst;
    EXPECT_EQ(shmx_channel_claim(rch, 64, 0, &dst), -SHMX_EHOSTGONE) << "a claim after the notice";
    shmx_channel_t *tch = shmx_guest_channel(tx);
    int64_t rc = 0;
    for (int i = 0; i < 200 && (rc = SendSeeded(tch, 64, (uint32_t)i, kSecond)) > 0; i++) {
    }
    ASSERT_EQ(rc, -SHMX_EHOSTGONE);
    EXPECT_EQ(shmx_channel_claim(tch, 64, 0, &dst), -SHMX_EHOSTGONE) << "a claim after a send was told";
}

// ---- L4: a dead guest's entry goes to the next guest with a fresh epoch ---------------------

TEST_F(LivenessTest, ShouldGiveTheNextGuestAFreshEpochAndNothingOfTheDeadOne) {
    cfg_.max_channels = 1; // the entry must be reused
    CreateHost();
    Pipe ready_a;
    std::string name = name_;
    pid_t a = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        for (uint32_t i = 0; i < 2; i++)
            if (SendSeeded(shmx_guest_channel(g), i ? 70000 : 64, 500 + i) <= 0) return 70; // never read by the host
        WriteOrExit(ready_a.w, "r", 1);
        for (;;) pause();
    });
    ASSERT_GT(a, 0);
    shmx_channel_t *ch_a = Accept();
    ASSERT_NE(ch_a, nullptr);
    uint32_t idx = shmx_channel_index(ch_a), epoch_a = shmx_channel_epoch(ch_a);
    for (uint32_t i = 0; i < 3; i++) ASSERT_GT(SendSeeded(ch_a, i == 1 ? 70000 : 64, 600 + i), 0); // never read by A
    char c;
    ASSERT_EQ(ReadWithin(ready_a.r, &c, 1, 10000), 1);
    kill(a, SIGKILL);
    Reap(a);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(idx, epoch_a, 5000, &ev));
    shmx_channel_free(ch_a);

    Pipe ready_b, go_b;
    struct Report {
        uint32_t idx, epoch;
        int first_rc;
    };
    pid_t b = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        shmx_channel_t *ch = shmx_guest_channel(g);
        shmx_message_t m;
        Report r = {shmx_channel_index(ch), shmx_channel_epoch(ch), shmx_channel_receive(ch, &m, 300 * kMs)};
        WriteOrExit(ready_b.w, &r, sizeof r);
        if (ReceiveSeeded(ch, 64, 99, true, 10 * kSecond) != 0) return 71; // the new incarnation's own message
        if (SendSeeded(ch, 64, 98) <= 0) return 72;
        if (shmx_channel_receive(ch, &m, 200 * kMs) != -SHMX_EEMPTY) return 73;
        shmx_guest_close(g);
        return 0;
    });
    ASSERT_GT(b, 0);
    shmx_channel_t *ch_b = Accept();
    ASSERT_NE(ch_b, nullptr);
    EXPECT_EQ(shmx_channel_index(ch_b), idx);
    EXPECT_GT(shmx_channel_epoch(ch_b), epoch_a);
    Report r{};
    ASSERT_EQ(ReadWithin(ready_b.r, &r, sizeof r, 10000), (ssize_t)sizeof r);
    EXPECT_EQ(r.idx, idx);
    EXPECT_EQ(r.epoch, shmx_channel_epoch(ch_b));
    EXPECT_EQ(r.first_rc, -SHMX_EEMPTY) << "the new guest received something meant for the dead one: "
                                        << shmx_strerror(r.first_rc);
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(ch_b, &m, 200 * kMs), -SHMX_EEMPTY) << "the host received the dead guest's message";
    ASSERT_GT(SendSeeded(ch_b, 64, 99), 0);
    EXPECT_EQ(ReceiveSeeded(ch_b, 64, 98), 0);
    int status = Reap(b);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "guest B failed at step " << WEXITSTATUS(status);
    shmx_channel_free(ch_b);
    ExpectPoolAllFree("after both");
}

// ---- the listener: reasons, pid, reclaimed count, noticed time -----------------------------

TEST_F(LivenessTest, ShouldReportAClosedAndAKilledGuestWithTheirPidsAndReclaimedSlots) {
    CreateHost();
    // CLOSED: the child closes its guest and exits.
    std::string name = name_;
    pid_t closer = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        shmx_message_t m;
        if (shmx_channel_receive(shmx_guest_channel(g), &m, 10 * kSecond) != 0) return 80; // held at close
        shmx_guest_close(g);
        return 0;
    });
    ASSERT_GT(closer, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    ASSERT_GT(SendSeeded(ch, 3000, 1), 0);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(shmx_channel_index(ch), shmx_channel_epoch(ch), 10000, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_CLOSED);
    EXPECT_EQ(ev.pid, closer) << "SO_PEERCRED names the child";
    EXPECT_EQ(ev.reclaimed, 0u) << "a guest that closes gives its slots back itself";
    EXPECT_EQ(ev.exit_status, 0);
    int status = Reap(closer);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    shmx_channel_free(ch);

    // DIED: the child holds two messages and is killed.
    Pipe ready;
    pid_t victim = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        for (uint32_t i = 0; i < 2; i++)
            if (ReceiveSeeded(shmx_guest_channel(g), 5000, i, false, 10 * kSecond) != 0) return 81;
        WriteOrExit(ready.w, "r", 1);
        for (;;) pause();
    });
    ASSERT_GT(victim, 0);
    ch = Accept();
    ASSERT_NE(ch, nullptr);
    for (uint32_t i = 0; i < 2; i++) ASSERT_GT(SendSeeded(ch, 5000, i), 0);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    int64_t t0 = NowNs();
    kill(victim, SIGKILL);
    ASSERT_TRUE(events_.Wait(shmx_channel_index(ch), shmx_channel_epoch(ch), 5000, &ev));
    int64_t t1 = NowNs();
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED);
    EXPECT_EQ(ev.pid, victim);
    EXPECT_EQ(ev.reclaimed, 2u);
    EXPECT_EQ(ev.exit_status, 0);
    EXPECT_GE(ev.noticed_ns, t0);
    EXPECT_LE(ev.noticed_ns, t1);
    printf("[ measure  ] noticed %lld us after the kill\n", (long long)((ev.noticed_ns - t0) / 1000));
    Reap(victim);
    shmx_channel_free(ch);
    ExpectPoolAllFree("after both");
}

// ---- SIGSTOP past liveness_ms: expelled ---------------------------------------------------

TEST_F(LivenessTest, ShouldExpelAStoppedGuestAndWithholdItsEntryUntilItHangsUp) {
    cfg_.max_channels = 3;
    cfg_.liveness_ms = 100;
    CreateHost();
    shmx_guest_t *by = nullptr;
    shmx_channel_t *by_host = nullptr;
    ConnectHere(&by, &by_host); // a bystander on its own entry
    ASSERT_NE(by, nullptr);

    Pipe ready, go, report;
    std::string name = name_;
    pid_t pid = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        shmx_channel_t *ch = shmx_guest_channel(g);
        char c;
        WriteOrExit(ready.w, "r", 1);
        if (read(go.r, &c, 1) != 1) return 90;
        int rcs[5];
        rcs[0] = (int)SendSeeded(ch, 64, 1, kSecond); // the next call after the expulsion
        void *dst;
        rcs[1] = shmx_channel_claim(ch, 5000, 100 * kMs, &dst);
        for (int i = 2; i < 5; i++) { // two messages were queued to it before it was expelled
            shmx_message_t m;
            rcs[i] = shmx_channel_receive(ch, &m, 100 * kMs);
            if (rcs[i] == 0) shmx_channel_release(ch, &m);
        }
        WriteOrExit(report.w, rcs, sizeof rcs);
        shmx_guest_close(g);
        return 0;
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    uint32_t idx = shmx_channel_index(ch), epoch = shmx_channel_epoch(ch);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    int64_t t0 = NowNs();
    ASSERT_GT(SendSeeded(ch, 64, 1), 0); // queued to the stopped guest
    ASSERT_GT(SendSeeded(ch, 5000, 2), 0);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(idx, epoch, 5000, &ev)) << "never expelled";
    printf("[ measure  ] expelled %lld ms after its messages were queued (liveness_ms %u)\n",
           (long long)((ev.noticed_ns - t0) / kMs), cfg_.liveness_ms);
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXPELLED);
    EXPECT_EQ(ev.pid, pid);
    EXPECT_EQ(ev.reclaimed, 1u) << "the slot message queued to it";
    EXPECT_GE(ev.noticed_ns - t0, 100 * kMs);
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(ch, &m, 0), -SHMX_ECLOSED);
    shmx_channel_free(ch);
    ExpectRoundTrips(by, by_host, 20); // the bystander was not touched

    // The entry is withheld while the expelled guest still runs: a newcomer gets another one,
    // and with that one taken the host is full.
    shmx_guest_t *n1 = nullptr;
    shmx_channel_t *n1_host = nullptr;
    ConnectHere(&n1, &n1_host);
    ASSERT_NE(n1, nullptr);
    EXPECT_NE(shmx_channel_index(n1_host), idx);
    {
        std::atomic<int> rc{1};
        std::thread t([&] {
            shmx_guest_t *g = nullptr;
            rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g);
            if (g) shmx_guest_close(g);
        });
        shmx_channel_t *none = nullptr;
        EXPECT_EQ(shmx_host_accept(host_, 10 * kSecond, &none), -SHMX_EFULL);
        t.join();
        EXPECT_EQ(rc.load(), -SHMX_EFULL);
    }

    // It resumes: its calls fail with EEXPELLED; then it hangs up and the entry is free again.
    ASSERT_EQ(kill(pid, SIGCONT), 0);
    ASSERT_EQ(write(go.w, "g", 1), 1);
    int rcs[5] = {};
    ASSERT_EQ(ReadWithin(report.r, rcs, sizeof rcs, 10000), (ssize_t)sizeof rcs);
    EXPECT_EQ(rcs[0], -SHMX_EEXPELLED) << "send: " << shmx_strerror(rcs[0]);
    EXPECT_EQ(rcs[1], -SHMX_EEXPELLED) << "claim: " << shmx_strerror(rcs[1]);
    EXPECT_EQ(rcs[4], -SHMX_EEXPELLED) << "receive, after what was queued: " << shmx_strerror(rcs[4]);
    int status = Reap(pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    shmx_guest_t *n2 = nullptr;
    shmx_channel_t *n2_host = nullptr;
    ConnectHere(&n2, &n2_host);
    ASSERT_NE(n2, nullptr);
    EXPECT_EQ(shmx_channel_index(n2_host), idx);
    EXPECT_GT(shmx_channel_epoch(n2_host), epoch);
    ExpectRoundTrips(n2, n2_host, 5);
    ExpectRoundTrips(by, by_host, 5);
    for (auto [g, h] : {std::pair{by, by_host}, std::pair{n1, n1_host}, std::pair{n2, n2_host}}) {
        CloseHere(g);
        shmx_channel_free(h);
    }
    ExpectPoolAllFree("after all");
}

// An expelled incarnation is over: what the host had queued to it (its slots already taken back)
// is not delivered. (Fails on the core of 422f1b8: see the report.)
TEST_F(LivenessTest, ShouldDeliverNothingQueuedToAnExpelledGuest) {
    cfg_.liveness_ms = 100;
    CreateHost();
    Pipe ready, go, report;
    std::string name = name_;
    pid_t pid = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        char c;
        WriteOrExit(ready.w, "r", 1);
        if (read(go.r, &c, 1) != 1) return 90;
        int rcs[2];
        for (int i = 0; i < 2; i++) {
            shmx_message_t m;
            rcs[i] = shmx_channel_receive(shmx_guest_channel(g), &m, 100 * kMs);
        }
        WriteOrExit(report.w, rcs, sizeof rcs);
        for (;;) pause();
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    ASSERT_GT(SendSeeded(ch, 64, 1), 0);
    ASSERT_GT(SendSeeded(ch, 5000, 2), 0);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(shmx_channel_index(ch), shmx_channel_epoch(ch), 5000, &ev));
    ASSERT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXPELLED);
    ASSERT_EQ(kill(pid, SIGCONT), 0);
    ASSERT_EQ(write(go.w, "g", 1), 1);
    int rcs[2] = {};
    ASSERT_EQ(ReadWithin(report.r, rcs, sizeof rcs, 10000), (ssize_t)sizeof rcs);
    EXPECT_EQ(rcs[0], -SHMX_EEXPELLED) << "the queued inline message: " << shmx_strerror(rcs[0]);
    EXPECT_EQ(rcs[1], -SHMX_EEXPELLED) << "the queued slot message: " << shmx_strerror(rcs[1]);
    kill(pid, SIGKILL);
    Reap(pid);
    shmx_channel_free(ch);
}

// ---- W2 with the host as the producer that dies between publishing and waking ------------

TEST_F(LivenessTest, ShouldLetAGuestFindWhatADyingHostPublishedWithoutWaking) {
    Pipe ready, go;
    std::string name = name_;
    shmx_config_t cfg = cfg_;
    pid_t pid = Fork([&] {
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) return 100;
        shmx_channel_t *ch = nullptr;
        if (shmx_host_accept(h, 10 * kSecond, &ch) != 0) return 101;
        WriteOrExit(ready.w, "r", 1);
        char c;
        if (read(go.r, &c, 1) != 1) return 102;
        void *dst;
        if (shmx_channel_claim(ch, 64, kSecond, &dst) != 0) return 103;
        std::vector<uint8_t> p = pattern(7, 64);
        memcpy(dst, p.data(), 64);
        if (PublishWithoutWake(ch, 1) != 0) return 104;
        raise(SIGKILL);
        return 105;
    });
    ASSERT_GT(pid, 0);
    shmx_guest_t *g = nullptr;
    ASSERT_EQ(shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g), 0);
    guests_.push_back(g);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    std::atomic<int> rc{1};
    std::thread waiter([&] { rc = ReceiveSeeded(shmx_guest_channel(g), 64, 7, true, 10 * kSecond); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(write(go.w, "g", 1), 1);
    waiter.join();
    EXPECT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(shmx_guest_channel(g), &m, kSecond), -SHMX_EHOSTGONE);
    Reap(pid);
}

// W2 without a death: a live producer that never wakes its consumer costs a wait slice, not the data.
TEST_F(LivenessTest, ShouldFindARecordPublishedWithoutAWakeWithinAWaitSlice) {
    CreateHost();
    shmx_guest_t *g = nullptr;
    shmx_channel_t *h = nullptr;
    ConnectHere(&g, &h);
    ASSERT_NE(g, nullptr);
    std::atomic<int> rc{1};
    std::atomic<int64_t> got{0};
    shmx_channel_set_idle(h, 0, 0); // straight to the futex
    std::thread waiter([&] {
        rc = ReceiveSeeded(h, 64, 3, true, 10 * kSecond);
        got = NowNs();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    shmx_channel_t *ch = shmx_guest_channel(g);
    void *dst;
    ASSERT_EQ(shmx_channel_claim(ch, 64, kSecond, &dst), 0);
    std::vector<uint8_t> p = pattern(3, 64);
    memcpy(dst, p.data(), 64);
    int64_t t0 = NowNs();
    ASSERT_EQ(PublishWithoutWake(ch, 1), 0);
    waiter.join();
    EXPECT_EQ(rc.load(), 0);
    printf("[ measure  ] found %lld ms after an unwoken publish\n", (long long)((got.load() - t0) / kMs));
    EXPECT_LT(got.load() - t0, (100 + kSlackMs) * kMs);
    CloseHere(g);
    shmx_channel_free(h);
}

// ---- W3: a guest floods its bootstrap socket; another never reads its own ---------------

TEST_F(LivenessTest, ShouldStayResponsiveWhileAGuestFloodsItsSocketWithGarbageGrowsAndDescriptors) {
    CreateHost();
    Pipe ready;
    int base_fds = CountFds();
    // What one in-process guest costs in descriptors (both ends' sockets, the guest's mapping).
    shmx_guest_t *g = nullptr;
    shmx_channel_t *h = nullptr;
    ConnectHere(&g, &h);
    ASSERT_NE(g, nullptr);
    int pair_fds = CountFds() - base_fds;
    std::string name = name_;
    pid_t pid = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        int sock = shmx_guest_channel(g)->sock;
        int extra = eventfd(0, 0); // a descriptor to push at the host with every third request
        uint8_t junk[256];
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37u);
        WriteOrExit(ready.w, "r", 1);
        for (uint32_t i = 0;; i++) {
            if (i % 3 == 0) {
                (void)shmx_bootstrap_send_grow(sock, i % 5); // valid and invalid classes; nothing is empty
            } else if (i % 3 == 1) {
                (void)send(sock, junk, 1 + i % sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
            } else {
                uint8_t req[SHMX_GROW_BYTES];
                memset(req, 0xA5, sizeof req);
                char ctrl[CMSG_SPACE(sizeof(int))] = {};
                struct iovec iov = {req, sizeof req};
                struct msghdr mh = {};
                mh.msg_iov = &iov;
                mh.msg_iovlen = 1;
                mh.msg_control = ctrl;
                mh.msg_controllen = sizeof ctrl;
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &extra, sizeof extra);
                (void)sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
        }
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *flooder = Accept();
    ASSERT_NE(flooder, nullptr);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // let it fill the socket

    // Meanwhile another guest is admitted and both are served; the host's descriptors stay flat.
    int64_t t0 = NowNs();
    shmx_guest_t *g2 = nullptr;
    shmx_channel_t *h2 = nullptr;
    ConnectHere(&g2, &h2);
    ASSERT_NE(g2, nullptr);
    int max_fds = 0;
    for (int round = 0; round < 10; round++) {
        ExpectRoundTrips(g, h, 10);
        ExpectRoundTrips(g2, h2, 10);
        int n = CountFds();
        max_fds = n > max_fds ? n : max_fds;
    }
    int64_t ms = (NowNs() - t0) / kMs;
    // Two in-process pairs, the flooder's entry on the host (its socket, two doorbell ends and the
    // channel's wake eventfd), and a couple of its descriptors between receipt and close: a leak
    // would add thousands.
    int allowed = base_fds + 2 * pair_fds + 4 + 6;
    printf("[ measure  ] admitted a guest and served 200 round trips in %lld ms under the flood; fds at most %d "
           "(allowed %d)\n", (long long)ms, max_fds, allowed);
    EXPECT_LT(ms, 10000);
    EXPECT_LE(max_fds, allowed) << "the flooder's descriptors must be closed as they come";
    EXPECT_EQ(shmx_host_extent_count(host_), 0u) << "grow requests for classes that are not empty grow nothing";
    kill(pid, SIGKILL);
    Reap(pid);
    shmx_peer_event_t ev;
    ASSERT_TRUE(events_.Wait(shmx_channel_index(flooder), shmx_channel_epoch(flooder), 5000, &ev));
    shmx_channel_free(flooder);
    for (auto [gg, hh] : {std::pair{g, h}, std::pair{g2, h2}}) {
        CloseHere(gg);
        shmx_channel_free(hh);
    }
    EXPECT_EQ(CountFds(), base_fds);
    ExpectPoolAllFree("after all");
}

TEST_F(LivenessTest, ShouldNeverBlockOnAGuestThatStopsReadingItsSocket) {
    // Tiny classes and extents: every host send below needs a new extent, announced to every guest.
    cfg_.class_count = 1;
    cfg_.class_size[0] = 4096;
    cfg_.class_slots[0] = 2;
    cfg_.max_payload = 4096;
    cfg_.max_message = 4096;
    cfg_.window_bytes = 1u << 20;
    cfg_.extent_bytes = 8192;
    cfg_.liveness_ms = 0; // this test is about the socket, not the rings
    CreateHost();
    Pipe ready;
    int base_fds = CountFds();
    std::string name = name_;
    pid_t stopped = Fork([&] {
        shmx_guest_t *g = ConnectOrExit(name);
        (void)g;
        WriteOrExit(ready.w, "r", 1);
        for (;;) pause(); // never reads its socket again
    });
    ASSERT_GT(stopped, 0);
    shmx_channel_t *sch = Accept();
    ASSERT_NE(sch, nullptr);
    char c;
    ASSERT_EQ(ReadWithin(ready.r, &c, 1, 10000), 1);
    kill(stopped, SIGSTOP);
    shmx_guest_t *g = nullptr;
    shmx_channel_t *h = nullptr;
    ConnectHere(&g, &h);
    ASSERT_NE(g, nullptr);
    int64_t worst = 0;
    int sent = 0;
    for (int i = 0; i < 60; i++) { // held unread in g's ring: the pool must grow for each
        int64_t t = NowNs();
        int64_t id = SendSeeded(h, 3000, (uint32_t)i, 2 * kSecond);
        t = NowNs() - t;
        worst = t > worst ? t : worst;
        if (id < 0) break;
        sent++;
    }
    uint32_t extents = shmx_host_extent_count(host_);
    printf("[ measure  ] %d sends, %u extents announced, slowest send %lld us\n", sent, extents,
           (long long)(worst / 1000));
    EXPECT_GT(extents, 10u);
    EXPECT_LT(worst, 1 * kSecond) << "a send that grows the pool must not wait for a guest's socket";
    for (int i = 0; i < sent; i++) ASSERT_EQ(ReceiveSeeded(shmx_guest_channel(g), 3000, (uint32_t)i), 0);
    ExpectRoundTrips(g, h, 10);
    kill(stopped, SIGKILL);
    Reap(stopped);
    CloseHere(g);
    shmx_channel_free(h);
    shmx_channel_free(sch);
    ExpectPoolAllFree("after all");
    EXPECT_EQ(CountFds(), base_fds + (int)extents) << "the host keeps one memfd per extent, nothing else";
}

// ---- L5, short: a kill loop with one healthy guest ---------------------------------------

// The host side of the loop: accept on one thread, echo each channel on its own until it ends.
class EchoHost {
  public:
    explicit EchoHost(shmx_host_t *h) : host_(h), acceptor_([this] { AcceptLoop(); }) {}
    ~EchoHost() { Stop(); }
    void Stop() {
        stop_ = true;
        if (acceptor_.joinable()) acceptor_.join();
        std::lock_guard<std::mutex> lock(mu_);
        for (auto &t : servers_) t.join();
        servers_.clear();
    }
    int live() const { return live_.load(); }
    int echo_errors() const { return echo_errors_.load(); }

  private:
    void AcceptLoop() {
        while (!stop_) {
            shmx_channel_t *ch = nullptr;
            if (shmx_host_accept(host_, 50 * kMs, &ch) != 0) continue; // timeouts, guests that died mid-handshake
            live_++;
            std::lock_guard<std::mutex> lock(mu_);
            servers_.emplace_back([this, ch] { Serve(ch); });
        }
    }
    void Serve(shmx_channel_t *ch) {
        for (;;) {
            shmx_message_t m;
            int rc = shmx_channel_receive(ch, &m, 50 * kMs);
            if (rc == -SHMX_EEMPTY) {
                if (stop_) break;
                continue;
            }
            if (rc != 0) break; // the guest ended (-SHMX_ECLOSED)
            int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, kSecond);
            if (id < 0 && id != -SHMX_ECLOSED) echo_errors_++;
            shmx_channel_release(ch, &m);
        }
        shmx_channel_free(ch);
        live_--;
    }
    shmx_host_t *host_;
    std::atomic<bool> stop_{false};
    std::atomic<int> live_{0}, echo_errors_{0};
    std::mutex mu_;
    std::vector<std::thread> servers_;
    std::thread acceptor_;
};

// A guest that is killed at a random point: bursts of 1-3 messages of mixed sizes, their echoes held, then released.
int KillableGuest(const std::string &name) {
    shmx_guest_t *g = ConnectOrExit(name);
    shmx_channel_t *ch = shmx_guest_channel(g);
    std::minstd_rand rng((uint32_t)getpid());
    constexpr uint32_t kSizes[] = {64, 64, 3000, 70000};
    for (uint32_t seq = 0;; seq += 4) {
        uint32_t n = 1 + rng() % 3;
        uint32_t len[3];
        for (uint32_t k = 0; k < n; k++) {
            len[k] = kSizes[rng() % 4];
            if (SendSeeded(ch, len[k], seq + k) <= 0) return 110;
        }
        shmx_message_t held[3];
        for (uint32_t k = 0; k < n; k++) {
            if (shmx_channel_receive(ch, &held[k], 5 * kSecond) != 0) return 111;
            if (held[k].length != len[k] || first_mismatch(held[k].data, seq + k, len[k]) >= 0) return 112;
        }
        for (uint32_t k = 0; k < n; k++)
            if (shmx_channel_release(ch, &held[k]) != 0) return 113;
    }
}

TEST_F(LivenessTest, ShouldKeepAccountsExactThroughAShortKillLoop) {
    cfg_.max_channels = 16;
    CreateHost();
    int base_fds = CountFds();
    PoolCount base_pool = CountPool(host_);
    std::string name = name_;
    {
        EchoHost echo(host_);
        // The healthy guest: round trips all along, none may fail.
        std::atomic<bool> stop{false};
        std::atomic<int> healthy_errors{0};
        std::atomic<uint64_t> trips{0};
        std::thread healthy([&] {
            shmx_guest_t *g = nullptr;
            if (shmx_guest_connect(name.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) {
                healthy_errors++;
                return;
            }
            shmx_channel_t *ch = shmx_guest_channel(g);
            for (uint32_t i = 0; !stop; i++) {
                uint32_t len = i % 50 == 0 ? 65536 : 64;
                if (SendSeeded(ch, len, i) <= 0 || ReceiveSeeded(ch, len, i) != 0) {
                    healthy_errors++;
                    break;
                }
                trips++;
            }
            shmx_guest_close(g);
        });
        constexpr int kKillable = 3;
        pid_t pids[kKillable];
        for (auto &p : pids) p = Fork([&] { return KillableGuest(name); });
        std::minstd_rand rng(12345);
        int kills = 0, self_exits = 0;
        int64_t end = NowNs() + 3 * kSecond;
        while (NowNs() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 90));
            int i = (int)(rng() % kKillable);
            kill(pids[i], SIGKILL);
            int status = Reap(pids[i]);
            if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
                self_exits++;
                ADD_FAILURE() << "a killable guest failed on its own: status " << status;
            }
            kills++;
            pids[i] = Fork([&] { return KillableGuest(name); });
        }
        for (pid_t p : pids) {
            kill(p, SIGKILL);
            Reap(p);
        }
        stop = true;
        healthy.join();
        // Every channel ends (the dead ones noticed, the healthy one closed) and is freed by its server.
        for (int i = 0; i < 500 && echo.live() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        printf("[ measure  ] %d kills, %llu healthy round trips, %zu death events, %d channels left\n", kills,
               (unsigned long long)trips.load(), events_.Count(SHMX_PEER_DIED), echo.live());
        EXPECT_EQ(echo.live(), 0);
        echo.Stop();
        EXPECT_EQ(healthy_errors.load(), 0);
        EXPECT_EQ(echo.echo_errors(), 0);
        EXPECT_GT(trips.load(), 10u); // behaviour, not speed: a TSan build forks slowly
        EXPECT_GE(kills, 10);
        EXPECT_EQ(self_exits, 0);
    }
    EXPECT_EQ(shmx_host_channel_count(host_), 0u);
    PoolCount c = CountPool(host_);
    if (c.total != base_pool.total) printf("[ measure  ] the pool grew from %u to %u slots\n", base_pool.total, c.total);
    EXPECT_EQ(c.free, c.total) << "leaked slots: " << c.total - c.free;
    EXPECT_EQ(CountFds(), base_fds + (int)shmx_host_extent_count(host_)) << "the host's descriptors";
}

} // namespace
