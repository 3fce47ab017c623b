// The host's service thread (host_service.c): epoll tokens that name the
// right guest whatever its epoch, log messages that never reach the handler
// under the host's lock, a spawned child that hangs up but lives on, which
// must not stall the host while its exit status may still come, and uds
// guests' peer ids, which never collide with shm entries.
//
// The spawned children are this test binary run again: a constructor takes
// over before GoogleTest when argv[1] is one of the child modes below.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;

const char kHangUpAndStay[] = "--host-service-hang-up-and-stay"; // on "go": shut the socket, live on
const char kHangUpAndExit[] = "--host-service-hang-up-and-exit"; // on "go": shut the socket, exit 7
const char kByeAndStay[] = "--host-service-bye-and-stay";        // on "go": close the guest, live on
constexpr int kHangUpExitCode = 7;

// The child modes. Runs before main; never returns into GoogleTest in a child.
__attribute__((constructor)) void ChildMain(int argc, char **argv, char **) {
    if (argc < 2) return;
    std::string mode = argv[1];
    if (mode != kHangUpAndStay && mode != kHangUpAndExit && mode != kByeAndStay) return;
    alarm(60); // never outlive a test that crashed
    shmx_guest_t *g = nullptr;
    if (shmx_guest_attach_ticket(nullptr, 10 * kSecond, &g) != 0) _exit(10);
    shmx_channel_t *ch = shmx_guest_channel(g);
    if (shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, "ready", 5, 10 * kSecond) < 0) _exit(11);
    shmx_message_t m;
    if (shmx_channel_receive(ch, &m, 10 * kSecond) != 0) _exit(12);
    shmx_channel_release(ch, &m);
    if (mode == kByeAndStay) {
        shmx_guest_close(g);
    } else {
        shutdown(SHMX_SPAWN_TICKET_FD, SHUT_RDWR); // the guest's socket, named by its ticket
        if (mode == kHangUpAndExit) _exit(kHangUpExitCode);
    }
    for (;;) pause();
}

std::string SelfExe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, (size_t)n) : std::string();
}

// Aborts the process unless the scope is left within @timeout_ns: a deadlock fails, bounded.
class Watchdog {
  public:
    explicit Watchdog(int64_t timeout_ns)
        : thread_([this, timeout_ns] {
              std::unique_lock<std::mutex> lock(mu_);
              if (!cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [this] { return done_; })) {
                  fprintf(stderr, "watchdog: the test is stuck after %lld ms (a deadlock)\n",
                          (long long)(timeout_ns / kMs));
                  abort();
              }
          }) {}
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_; // last: it starts once the others are built
};

class HostServiceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "hs-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
    }

    void TearDown() override {
        shmx_log_set_default(); // before the host goes: the handlers below call into it
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        for (shmx_channel_t *ch : channels_) shmx_channel_free(ch);
        for (shmx_child_t *c : children_) {
            shmx_child_kill(c, SIGKILL);
            shmx_child_wait(c, 10 * kSecond, nullptr);
            shmx_child_free(c);
        }
        shmx_host_destroy(host_);
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(shmx_host_set_peer_listener(host_, &HostServiceTest::OnPeer, this), 0);
    }

    static void OnPeer(void *arg, const shmx_peer_event_t *ev) {
        auto *self = static_cast<HostServiceTest *>(arg);
        std::lock_guard<std::mutex> lock(self->mu_);
        self->events_.push_back(*ev);
        self->cv_.notify_all();
    }

    // The @n-th event (from 1), waiting up to 5 s; false if it did not come.
    bool AwaitEvent(size_t n, shmx_peer_event_t *ev) {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return events_.size() >= n; })) return false;
        *ev = events_[n - 1];
        return true;
    }

    size_t EventCount() {
        std::lock_guard<std::mutex> lock(mu_);
        return events_.size();
    }

    // A connected guest asking for @transport and the host's channel for it (kept for TearDown).
    void Connect(uint32_t transport, shmx_guest_t **g, shmx_channel_t **h) {
        *h = nullptr;
        *g = nullptr;
        int accepted = -1;
        std::thread t([&] { accepted = shmx_host_accept(host_, 10 * kSecond, h); });
        int rc = shmx_guest_connect(name_.c_str(), transport, 10 * kSecond, g);
        t.join();
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(accepted, 0) << shmx_strerror(accepted);
        guests_.push_back(*g);
        channels_.push_back(*h);
    }

    // This binary in child mode @mode as a spawned guest that said "ready" (kept for TearDown).
    void SpawnChild(const char *mode, shmx_channel_t **ch, shmx_child_t **child) {
        std::string self = SelfExe();
        const char *argv[] = {self.c_str(), mode, nullptr};
        int rc = shmx_host_spawn(host_, argv[0], argv, nullptr, ch, child);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        channels_.push_back(*ch);
        children_.push_back(*child);
        char buf[16];
        ASSERT_EQ(shmx_channel_receive_copy(*ch, buf, sizeof buf, nullptr, 10 * kSecond), 5);
    }

    static void Go(shmx_channel_t *ch) { ASSERT_GT(shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, "go", 2, kSecond), 0); }

    // Quarantine the guest of host channel @h: the next record header in its guest-to-host ring is of a
    // kind that does not exist, and the host's receive meets it.
    void Quarantine(shmx_channel_t *h) {
        uint8_t *data = shmx_segment_ring_data(shmx_host_segment(host_), shmx_channel_index(h), SHMX_RING_GUEST_TO_HOST);
        __atomic_store_n(reinterpret_cast<uint64_t *>(data), 0x0000'6363'0000'0040ull, __ATOMIC_RELEASE);
        shmx_message_t m;
        ASSERT_EQ(shmx_channel_receive(h, &m, kSecond), -SHMX_ECORRUPT);
    }

    // A spawned guest that hung up and lives on, once the host has ended it (its report then waits
    // up to 50 ms for an exit status).
    void SpawnChildThatHungUp(shmx_channel_t **ch, shmx_child_t **child) {
        ASSERT_NO_FATAL_FAILURE(SpawnChild(kHangUpAndStay, ch, child));
        ASSERT_NO_FATAL_FAILURE(Go(*ch));
        shmx_message_t m;
        ASSERT_EQ(shmx_channel_receive(*ch, &m, 5 * kSecond), -SHMX_ECLOSED) << "the host ended it";
    }

    void CloseGuest(shmx_guest_t *g) {
        guests_.erase(std::remove(guests_.begin(), guests_.end(), g), guests_.end());
        shmx_guest_close(g);
    }

    void FreeChannel(shmx_channel_t *ch) {
        channels_.erase(std::remove(channels_.begin(), channels_.end(), ch), channels_.end());
        shmx_channel_free(ch);
    }

    void EndChild(shmx_child_t *child) {
        children_.erase(std::remove(children_.begin(), children_.end(), child), children_.end());
        shmx_child_kill(child, SIGKILL);
        shmx_child_wait(child, 10 * kSecond, nullptr);
        shmx_child_free(child);
    }

    // The next guest admitted on entry @idx gets epoch @epoch.
    void SetNextEpoch(uint32_t idx, uint32_t epoch) {
        pthread_mutex_lock(&host_->mu);
        host_->epochs[idx] = epoch - 1u;
        pthread_mutex_unlock(&host_->mu);
    }

    uint32_t EntryState(uint32_t idx) {
        return __atomic_load_n(&shmx_segment_channel(shmx_host_segment(host_), idx)->state, __ATOMIC_ACQUIRE);
    }

    PrivateRuntimeDir runtime_;
    std::string name_;
    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::vector<shmx_channel_t *> channels_;
    std::vector<shmx_child_t *> children_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<shmx_peer_event_t> events_;
};

// ---- 1. epoll tokens: an entry's epoch never reads as a tag -----------------------------------

class HostServiceEpochTest : public HostServiceTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(HostServiceEpochTest, ShouldReportAHangUpAndReapADrainingEntryWhateverTheEpoch) {
    CreateHost();
    const uint32_t epoch = GetParam();
    SetNextEpoch(0, epoch);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    ASSERT_EQ(shmx_channel_index(h), 0u);
    ASSERT_EQ(shmx_channel_epoch(h), epoch);
    CloseGuest(g);
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev)) << "the hang-up of epoch " << epoch << " went unnoticed";
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_CLOSED);
    EXPECT_EQ(ev.peer, 0u);
    EXPECT_EQ(ev.epoch, epoch);
    FreeChannel(h);

    // The next incarnation is freed by the application first: its entry is reaped when it hangs up.
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    ASSERT_EQ(shmx_channel_index(h), 0u);
    ASSERT_EQ(shmx_channel_epoch(h), epoch + 1u);
    FreeChannel(h);
    ASSERT_EQ(EntryState(0), (uint32_t)SHMX_CHANNEL_ACTIVE) << "withheld while its guest is connected";
    CloseGuest(g);
    int64_t end = shmx_now_ns() + 5 * kSecond;
    while (EntryState(0) != SHMX_CHANNEL_FREE && shmx_now_ns() < end) usleep(1000);
    EXPECT_EQ(EntryState(0), (uint32_t)SHMX_CHANNEL_FREE) << "the draining entry of epoch " << epoch + 1u
                                                            << " was not reaped on its hang-up";
}

TEST_P(HostServiceEpochTest, ShouldReportASpawnedChildsExitWhateverTheEpoch) {
    CreateHost();
    const uint32_t epoch = GetParam();
    SetNextEpoch(0, epoch);
    shmx_channel_t *ch;
    shmx_child_t *child;
    ASSERT_NO_FATAL_FAILURE(SpawnChild(kHangUpAndStay, &ch, &child));
    ASSERT_EQ(shmx_channel_epoch(ch), epoch);
    ASSERT_EQ(shmx_child_kill(child, SIGKILL), 0);
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev)) << "the exit of epoch " << epoch << " went unnoticed";
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXITED);
    EXPECT_TRUE(WIFSIGNALED(ev.exit_status) && WTERMSIG(ev.exit_status) == SIGKILL) << "status " << ev.exit_status;
    EXPECT_EQ(ev.epoch, epoch);
}

// Epochs whose bits 28..31 reach the tags' places once shifted into a token, and the last one.
INSTANTIATE_TEST_SUITE_P(Epochs, HostServiceEpochTest,
                         ::testing::Values(1u, 1u << 28, 1u << 29, 1u << 30, 1u << 31, 0xfffffffeu),
                         [](const ::testing::TestParamInfo<uint32_t> &p) {
                             char name[16];
                             snprintf(name, sizeof name, "Epoch%08x", p.param);
                             return std::string(name);
                         });

// ---- 2. log messages: the handler may call into the host ------------------------------------------

// Takes the library's log lines and, for each, calls host functions that take the host's lock.
class ReentrantLog {
  public:
    explicit ReentrantLog(shmx_host_t *host) : host_(host) { shmx_log_set_handler(&ReentrantLog::Take, this); }
    ~ReentrantLog() { shmx_log_set_default(); }

    // True once a line mentioning @what was taken and the handler's host calls returned (waits up to 5 s).
    bool Await(const char *what) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, std::chrono::seconds(5), [&] {
            for (const std::string &l : lines_)
                if (l.find(what) != std::string::npos) return true;
            return false;
        });
    }
    uint64_t violations_seen() {
        std::lock_guard<std::mutex> lock(mu_);
        return violations_;
    }

  private:
    static void Take(void *arg, int, const char *message) {
        auto *self = static_cast<ReentrantLog *>(arg);
        uint64_t violations = shmx_host_violations(self->host_); // takes the host's lock
        (void)shmx_host_channel_count(self->host_);              // and again
        std::lock_guard<std::mutex> lock(self->mu_);
        self->lines_.push_back(message);
        self->violations_ = violations;
        self->cv_.notify_all();
    }
    shmx_host_t *host_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    uint64_t violations_ = 0;
};

TEST_F(HostServiceTest, ShouldLogAQuarantineToAHandlerThatCallsTheHost) {
    CreateHost();
    Watchdog dog(20 * kSecond);
    ReentrantLog log(host_);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    ASSERT_NO_FATAL_FAILURE(Quarantine(h));
    EXPECT_TRUE(log.Await("quarantined")) << "the quarantine was not logged";
    EXPECT_EQ(log.violations_seen(), 1u);
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_VIOLATION);
}

// A listener that blocks in its first call until released, counting every call.
struct BlockingListener {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;
    int calls = 0;
    static void OnPeer(void *arg, const shmx_peer_event_t *) {
        auto *self = static_cast<BlockingListener *>(arg);
        std::unique_lock<std::mutex> lock(self->mu);
        self->calls++;
        self->cv.notify_all();
        self->cv.wait_for(lock, std::chrono::seconds(10), [self] { return self->released; });
    }
    void Release() {
        std::lock_guard<std::mutex> lock(mu);
        released = true;
        cv.notify_all();
    }
    bool AwaitCalls(int n) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, std::chrono::seconds(5), [&] { return calls >= n; });
    }
};

TEST_F(HostServiceTest, ShouldCountAndLogGuestEndsTheQueueHadNoRoomForWhileTheListenerWasBusy) {
    cfg_.max_channels = 1; // a queue of 2
    CreateHost();
    Watchdog dog(30 * kSecond);
    ReentrantLog log(host_);
    BlockingListener listener;
    ASSERT_EQ(shmx_host_set_peer_listener(host_, &BlockingListener::OnPeer, &listener), 0);
    constexpr int kEnds = 5;
    for (int i = 0; i < kEnds; i++) {
        shmx_guest_t *g;
        shmx_channel_t *h;
        ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
        ASSERT_NO_FATAL_FAILURE(Quarantine(h));
        if (i == 0) {
            ASSERT_TRUE(listener.AwaitCalls(1)) << "the first end reached the listener, which now blocks";
        }
        FreeChannel(h);
        CloseGuest(g); // the next admission reaps the entry
    }
    listener.Release();
    EXPECT_TRUE(log.Await("2 guest ends were not reported")) << "1 reported, 2 queued, 2 lost";
    ASSERT_TRUE(listener.AwaitCalls(3));
    usleep(100 * 1000);
    ASSERT_EQ(shmx_host_set_peer_listener(host_, nullptr, nullptr), 0); // before the listener goes
    std::lock_guard<std::mutex> lock(listener.mu);
    EXPECT_EQ(listener.calls, 3);
}

TEST_F(HostServiceTest, ShouldLogAnExpulsionToAHandlerThatCallsTheHost) {
    cfg_.liveness_ms = 100;
    CreateHost();
    Watchdog dog(20 * kSecond);
    ReentrantLog log(host_);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    ASSERT_GT(shmx_channel_send(h, SHMX_TYPE_DATA, 0, 0, "unread", 6, kSecond), 0); // the guest never reads it
    EXPECT_TRUE(log.Await("expelled")) << "the expulsion was not logged";
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXPELLED);
    // The service thread goes on: the next guest is served and its hang-up reported.
    shmx_guest_t *g2;
    shmx_channel_t *h2;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g2, &h2));
    CloseGuest(g2);
    ASSERT_TRUE(AwaitEvent(2, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_CLOSED);
}

TEST_F(HostServiceTest, ShouldLogSlotsBroughtBackToAHandlerThatCallsTheHost) {
    CreateHost();
    Watchdog dog(20 * kSecond);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    // A slot sent to the host but never published: what a guest that died in between leaves.
    shmx_pool_t *pool = shmx_host_pool(host_);
    shmx_slot_ref_t ref;
    ASSERT_EQ(shmx_pool_alloc(pool, 100, SHMX_OWNER_HOST, shmx_now_ns() + kSecond, nullptr, &ref), 0);
    ASSERT_EQ(shmx_pool_send(pool, &ref, SHMX_OWNER_HOST, SHMX_OWNER_HOST), 0);
    ReentrantLog log(host_);
    CloseGuest(g);
    FreeChannel(h); // the last channel: the host rebuilds its pool and finds the slot
    EXPECT_TRUE(log.Await("are back")) << "the slots brought back were not logged";
}

// What a peer's scribbles on the pool's lists cost is logged by the service thread (the pool itself
// never logs: its calls run under the host's lock), to a handler that may call the host.
TEST_F(HostServiceTest, ShouldLogListsAPeerScribbledOnToAHandlerThatCallsTheHost) {
    CreateHost();
    Watchdog dog(20 * kSecond);
    ReentrantLog log(host_);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &h));
    shmx_pool_t *pool = shmx_host_pool(host_);
    for (uint32_t sh = 0; sh < SHMX_POOL_SHARDS; sh++) // every list of class 0 names a slot that does not exist
        __atomic_store_n(reinterpret_cast<uint64_t *>(&pool->ctl->free_head[0][sh][0]), 0x0000'0007'00ff'fff0ull,
                         __ATOMIC_RELEASE);
    shmx_slot_ref_t ref;
    ASSERT_EQ(shmx_pool_alloc(pool, 100, SHMX_OWNER_HOST, shmx_now_ns() + kSecond, nullptr, &ref), 0)
        << "a larger class or a new extent serves it";
    EXPECT_TRUE(log.Await("free lists cut")) << "the cut lists were not logged";
    EXPECT_EQ(shmx_pool_free(pool, &ref, SHMX_OWNER_HOST), 0);
}

TEST_F(HostServiceTest, ShouldLogTheFallbackToAHandlerThatCallsTheHost) {
    cfg_.max_channels = 1;
    CreateHost();
    Watchdog dog(20 * kSecond);
    shmx_guest_t *first, *second;
    shmx_channel_t *h1, *h2;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_AUTO, &first, &h1));
    ReentrantLog log(host_);
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_AUTO, &second, &h2));
    EXPECT_EQ(shmx_channel_transport(h2), SHMX_TRANSPORT_UDS);
    EXPECT_TRUE(log.Await("Unix socket")) << "the fallback was not logged";
}

// ---- 3. a spawned child that hangs up but lives on ---------------------------------------------------

// The longest a host call that takes the lock waited, sampled in a loop until stopped.
class LockStallMeter {
  public:
    explicit LockStallMeter(shmx_host_t *host)
        : thread_([this, host] {
              while (!stop_.load(std::memory_order_relaxed)) {
                  int64_t t0 = shmx_now_ns();
                  (void)shmx_host_violations(host); // takes the host's lock
                  int64_t took = shmx_now_ns() - t0;
                  if (took > longest_) longest_ = took;
              }
          }) {}
    // Stops sampling; the longest wait in ns.
    int64_t Stop() {
        stop_.store(true, std::memory_order_relaxed);
        thread_.join();
        return longest_;
    }

  private:
    std::atomic<bool> stop_{false};
    int64_t longest_ = 0; // the sampling thread's until joined
    std::thread thread_;  // last: it starts once the others are built
};

TEST_F(HostServiceTest, ShouldEndAChildThatHungUpAtOnceWithoutStallingTheHostAndReportItDead) {
    CreateHost();
    shmx_guest_t *g;
    shmx_channel_t *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &g, &hg)); // a bystander
    constexpr int kTries = 5;
    std::vector<int64_t> stalls, ends;
    for (int i = 0; i < kTries; i++) {
        shmx_channel_t *ch;
        shmx_child_t *child;
        ASSERT_NO_FATAL_FAILURE(SpawnChild(kHangUpAndStay, &ch, &child));
        LockStallMeter meter(host_);
        int64_t go = shmx_now_ns();
        ASSERT_NO_FATAL_FAILURE(Go(ch));
        shmx_peer_event_t ev;
        bool reported = AwaitEvent((size_t)i + 1, &ev);
        stalls.push_back(meter.Stop());
        ASSERT_TRUE(reported) << "try " << i << ": the hang-up went unreported";
        EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED) << "try " << i << ": it hung up without a bye and lives on";
        EXPECT_EQ(ev.exit_status, 0);
        EXPECT_EQ(ev.pid, shmx_child_pid(child));
        EXPECT_EQ(ev.peer, shmx_channel_index(ch));
        EXPECT_EQ(ev.epoch, shmx_channel_epoch(ch));
        ends.push_back(ev.noticed_ns - go);
        shmx_message_t m;
        EXPECT_EQ(shmx_channel_receive(ch, &m, 0), -SHMX_ECLOSED) << "its rings are closed";
        EXPECT_EQ(shmx_child_wait(child, 0, nullptr), -ETIMEDOUT) << "it lives on";
        EndChild(child);
        FreeChannel(ch);
    }
    ASSERT_EQ(EventCount(), (size_t)kTries) << "one event per child, none for the bystander";
    std::sort(stalls.begin(), stalls.end());
    std::sort(ends.begin(), ends.end());
    printf("[ measure  ] median longest host call %lld us, median end %lld us after the request (%d tries)\n",
           (long long)(stalls[kTries / 2] / 1000), (long long)(ends[kTries / 2] / 1000), kTries);
    // A wait for the exit status under the lock would make both about 50 ms.
    EXPECT_LT(stalls[kTries / 2], 25 * kMs) << "median longest host call while a child hung up";
    EXPECT_LT(ends[kTries / 2], 25 * kMs) << "median time from the hang-up request to the guest's end";
    // The bystander was served throughout.
    const char ask[] = "still here";
    ASSERT_GT(shmx_channel_send(shmx_guest_channel(g), SHMX_TYPE_DATA, 0, 0, ask, sizeof ask, kSecond), 0);
    char buf[32];
    EXPECT_EQ(shmx_channel_receive_copy(hg, buf, sizeof buf, nullptr, kSecond), (int64_t)sizeof ask);
}

TEST_F(HostServiceTest, ShouldReportTheHeldEndOfAChildThatHungUpOnceWhenItsChannelIsFreed) {
    CreateHost();
    shmx_channel_t *ch;
    shmx_child_t *child;
    ASSERT_NO_FATAL_FAILURE(SpawnChildThatHungUp(&ch, &child));
    FreeChannel(ch); // most likely while its report still waits for an exit status
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED);
    EXPECT_EQ(ev.pid, shmx_child_pid(child));
    EndChild(child);
    usleep(100 * 1000);
    EXPECT_EQ(EventCount(), 1u) << "one report, whoever settled it";
}

TEST_F(HostServiceTest, ShouldReportTheHeldEndOfAChildWhenTheHostIsDestroyedBeforeItSettles) {
    CreateHost();
    shmx_channel_t *ch;
    shmx_child_t *child;
    ASSERT_NO_FATAL_FAILURE(SpawnChildThatHungUp(&ch, &child));
    // Destroyed most likely while the report still waits for an exit status; destroy frees the channel.
    channels_.erase(std::remove(channels_.begin(), channels_.end(), ch), channels_.end());
    shmx_host_destroy(host_);
    host_ = nullptr;
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev)) << "the end was lost with the host";
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_DIED) << "it lives on";
    EXPECT_EQ(ev.pid, shmx_child_pid(child));
    EXPECT_EQ(EventCount(), 1u);
}

TEST_F(HostServiceTest, ShouldReportTheExitStatusOfAChildThatHangsUpAndExits) {
    CreateHost();
    for (int i = 0; i < 3; i++) { // the hang-up and the exit status come in either order
        shmx_channel_t *ch;
        shmx_child_t *child;
        ASSERT_NO_FATAL_FAILURE(SpawnChild(kHangUpAndExit, &ch, &child));
        ASSERT_NO_FATAL_FAILURE(Go(ch));
        shmx_peer_event_t ev;
        ASSERT_TRUE(AwaitEvent((size_t)i + 1, &ev));
        EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXITED) << "try " << i;
        EXPECT_TRUE(WIFEXITED(ev.exit_status) && WEXITSTATUS(ev.exit_status) == kHangUpExitCode)
            << "try " << i << ": status " << ev.exit_status;
        int status = -1;
        ASSERT_EQ(shmx_child_wait(child, 10 * kSecond, &status), 0);
        EXPECT_EQ(status, ev.exit_status);
        EndChild(child);
        FreeChannel(ch);
    }
    EXPECT_EQ(EventCount(), 3u);
}

TEST_F(HostServiceTest, ShouldReportACloseForAChildThatSaidByeAndLivesOn) {
    CreateHost();
    shmx_channel_t *ch;
    shmx_child_t *child;
    ASSERT_NO_FATAL_FAILURE(SpawnChild(kByeAndStay, &ch, &child));
    ASSERT_NO_FATAL_FAILURE(Go(ch));
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(1, &ev));
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_CLOSED);
    // Its later exit is no second event.
    EndChild(child);
    usleep(100 * 1000);
    EXPECT_EQ(EventCount(), 1u);
}

// ---- 4. uds guests' peer ids ---------------------------------------------------------------

TEST_F(HostServiceTest, ShouldNumberUdsGuestsApartFromSharedMemoryEntries) {
    CreateHost();
    shmx_guest_t *gs, *gu[2];
    shmx_channel_t *hs, *hu[2];
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_SHM, &gs, &hs));
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_UDS, &gu[0], &hu[0]));
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_UDS, &gu[1], &hu[1]));
    ASSERT_EQ(shmx_channel_index(hs), 0u);
    EXPECT_EQ(shmx_channel_index(hu[0]), cfg_.max_channels);
    EXPECT_EQ(shmx_channel_index(hu[1]), cfg_.max_channels + 1u);
    EXPECT_GT(shmx_channel_epoch(hu[0]), 0u);

    // Each one's end names it, and nobody else.
    CloseGuest(gu[1]);
    CloseGuest(gs);
    CloseGuest(gu[0]);
    std::vector<shmx_peer_event_t> got(3);
    for (size_t i = 0; i < got.size(); i++) ASSERT_TRUE(AwaitEvent(i + 1, &got[i])) << "event " << i;
    auto find = [&](shmx_channel_t *ch) {
        int n = 0;
        for (const shmx_peer_event_t &ev : got)
            n += ev.peer == shmx_channel_index(ch) && ev.epoch == shmx_channel_epoch(ch);
        return n;
    };
    EXPECT_EQ(find(hs), 1);
    EXPECT_EQ(find(hu[0]), 1);
    EXPECT_EQ(find(hu[1]), 1);

    // A uds guest after a freed one takes its number with a larger epoch.
    uint32_t old_epoch = shmx_channel_epoch(hu[0]);
    FreeChannel(hu[0]);
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_NO_FATAL_FAILURE(Connect(SHMX_TRANSPORT_UDS, &g, &h));
    EXPECT_EQ(shmx_channel_index(h), cfg_.max_channels);
    EXPECT_GT(shmx_channel_epoch(h), old_epoch);
    CloseGuest(g);
    shmx_peer_event_t ev;
    ASSERT_TRUE(AwaitEvent(4, &ev));
    EXPECT_EQ(ev.peer, cfg_.max_channels);
    EXPECT_EQ(ev.epoch, shmx_channel_epoch(h));
}

} // namespace
