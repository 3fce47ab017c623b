// Spawned guests (shmx_host_spawn): the C ping attached by its ticket, only
// the intended descriptors inherited, a program that cannot run, a killed
// child reported with its signal, and a respawn with a fresh epoch.
//
// The children that check inheritance and hold a channel are this test binary
// run again: a constructor takes over before GoogleTest when argv[1] is one
// of the child modes below, so no test-only program is installed in bin/.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

const std::string kBin = SHMX_BIN_DIR;
constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;

const char kListFds[] = "--spawn-child-list-fds"; // report open descriptors and cwd, then close
const char kHold[] = "--spawn-child-hold";        // say "ready", then stay until the host closes

// Exit codes of the child modes (beyond 0: all went well).
enum { kChildNoAttach = 10, kChildSendFailed = 11 };

int64_t NowNs() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// "0,1,2,3": the descriptors open now, without the one listing them.
std::string OpenFds() {
    std::vector<int> fds;
    DIR *d = opendir("/proc/self/fd");
    if (d == nullptr) return "?";
    while (struct dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != dirfd(d)) fds.push_back(fd);
    }
    closedir(d);
    std::sort(fds.begin(), fds.end());
    std::string s;
    for (int fd : fds) s += (s.empty() ? "" : ",") + std::to_string(fd);
    return s;
}

// The child modes. Runs before main; never returns into GoogleTest in a child.
__attribute__((constructor)) void ChildMain(int argc, char **argv, char **) {
    if (argc < 2 || (strcmp(argv[1], kListFds) != 0 && strcmp(argv[1], kHold) != 0)) return;
    std::string report;
    if (strcmp(argv[1], kListFds) == 0) {
        report = "fds=" + OpenFds(); // before the guest opens anything of its own
        char cwd[4096];
        report += std::string(" cwd=") + (getcwd(cwd, sizeof cwd) ? cwd : "?");
        const char *mark = getenv("SHMX_SPAWN_TEST_MARK");
        report += std::string(" mark=") + (mark ? mark : "-");
    }
    shmx_guest_t *g = nullptr;
    if (shmx_guest_attach_ticket(nullptr, 10 * kSecond, &g) != 0) _exit(kChildNoAttach);
    shmx_channel_t *ch = shmx_guest_channel(g);
    if (report.empty()) report = "ready";
    if (shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, report.data(), (uint32_t)report.size(), 10 * kSecond) < 0)
        _exit(kChildSendFailed);
    if (strcmp(argv[1], kHold) == 0) {
        shmx_message_t m;
        int rc;
        while ((rc = shmx_channel_receive(ch, &m, 60 * kSecond)) == 0) shmx_channel_release(ch, &m);
    }
    shmx_guest_close(g);
    _exit(0);
}

std::string SelfExe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, (size_t)n) : std::string();
}

// What the peer listener reported, for a test thread to wait on.
struct Events {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<shmx_peer_event_t> list;

    static void Listener(void *arg, const shmx_peer_event_t *ev) {
        Events *e = static_cast<Events *>(arg);
        std::lock_guard<std::mutex> lock(e->mu);
        e->list.push_back(*ev);
        e->cv.notify_all();
    }

    bool WaitFor(size_t n, int64_t timeout_ns) {
        std::unique_lock<std::mutex> lock(mu);
        return cv.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return list.size() >= n; });
    }
};

class SpawnTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "spawn-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_t cfg;
        shmx_config_default(&cfg);
        cfg.max_channels = 4;
        int rc = shmx_host_create(name_.c_str(), &cfg, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(shmx_host_set_peer_listener(host_, Events::Listener, &events_), 0);
    }

    void TearDown() override {
        for (shmx_channel_t *ch : channels_) shmx_channel_free(ch);
        for (shmx_child_t *c : children_) {
            if (shmx_child_wait(c, 0, nullptr) == -ETIMEDOUT) {
                shmx_child_kill(c, SIGKILL);
                shmx_child_wait(c, 10 * kSecond, nullptr);
            }
            shmx_child_free(c);
        }
        shmx_host_destroy(host_);
    }

    // Spawn @args (args[0] is the program); the channel and child are freed by TearDown.
    int Spawn(const std::vector<std::string> &args, const shmx_spawn_options_t *opts, shmx_channel_t **ch,
              shmx_child_t **child) {
        std::vector<const char *> argv;
        for (auto &a : args) argv.push_back(a.c_str());
        argv.push_back(nullptr);
        int rc = shmx_host_spawn(host_, argv[0], argv.data(), opts, ch, child);
        if (rc == 0) {
            channels_.push_back(*ch);
            children_.push_back(*child);
        }
        return rc;
    }

    // Receive one text message from a child (bounded).
    static std::string ReceiveText(shmx_channel_t *ch) {
        shmx_message_t m;
        int rc = shmx_channel_receive(ch, &m, 10 * kSecond);
        if (rc != 0) return std::string("receive failed: ") + shmx_strerror(rc);
        std::string s(static_cast<const char *>(m.data), m.length);
        shmx_channel_release(ch, &m);
        return s;
    }

    void ExpectNoEntryTaken() {
        EXPECT_EQ(shmx_host_channel_count(host_), 0u);
        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        for (uint32_t c = 0; c < st.class_count; c++) {
            EXPECT_EQ(st.free_slots[c], st.total_slots[c]) << "class " << c;
            EXPECT_EQ(st.claimed_slots[c] + st.sent_slots[c], 0u) << "class " << c;
        }
    }

    void Forget(shmx_channel_t *ch) {
        channels_.erase(std::remove(channels_.begin(), channels_.end(), ch), channels_.end());
        shmx_channel_free(ch);
    }

    PrivateRuntimeDir runtime_;
    std::string name_;
    shmx_host_t *host_ = nullptr;
    Events events_;
    std::vector<shmx_channel_t *> channels_;
    std::vector<shmx_child_t *> children_;
};

// Echo every request until the guest closes (the pong side of ping, in this thread).
void ServeEchoes(shmx_channel_t *ch, int64_t timeout_ns) {
    int64_t deadline = NowNs() + timeout_ns;
    while (NowNs() < deadline) {
        shmx_message_t m;
        int rc = shmx_channel_receive(ch, &m, 100 * kMs);
        if (rc == -SHMX_EEMPTY) continue;
        if (rc != 0) return; // closed: the ping is done
        int64_t sent = shmx_channel_send(ch, SHMX_TYPE_RESPONSE, 0, m.id, m.data, m.length, 5 * kSecond);
        shmx_channel_release(ch, &m);
        ASSERT_GE(sent, 0) << shmx_strerror((int)sent);
    }
    FAIL() << "the ping did not finish in time";
}

TEST_F(SpawnTest, shouldRunSpawnedCPingByTicket) {
    std::string ping = kBin + "/shmx-ping";
    if (access(ping.c_str(), X_OK) != 0) GTEST_SKIP() << ping << " is not built";
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    int rc = Spawn({ping, "--ticket", "--count", "200", "--warmup", "20", "--size", "100"}, nullptr, &ch, &child);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_GT(shmx_child_pid(child), 0);
    EXPECT_GE(shmx_child_pidfd(child), 0);
    ServeEchoes(ch, 30 * kSecond);
    int status = -1;
    ASSERT_EQ(shmx_child_wait(child, 30 * kSecond, &status), 0);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    // Reaped once; later calls return the same status.
    int again = -1;
    EXPECT_EQ(shmx_child_wait(child, 0, &again), 0);
    EXPECT_EQ(again, status);
    EXPECT_EQ(shmx_child_pidfd(child), -1);
    EXPECT_EQ(shmx_child_kill(child, SIGTERM), -SHMX_EINVAL);
}

TEST_F(SpawnTest, shouldInheritOnlyStdioAndTheTicketDescriptor) {
    // Descriptors the application left inheritable must not reach the child.
    int leak[2];
    ASSERT_EQ(pipe(leak), 0);
    int leak_dup = dup(leak[0]);
    ASSERT_GE(leak_dup, 0);
    std::string expected;
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) >= 0) expected += std::to_string(fd) + ",";
    expected += std::to_string(SHMX_SPAWN_TICKET_FD);

    // An environment of our own with a stale ticket in it: the host's ticket replaces it.
    std::vector<const char *> env = {"SHMX_TICKET=1:99:99:99", "SHMX_SPAWN_TEST_MARK=42", "PATH=/usr/bin:/bin"};
    const char *asan = getenv("ASAN_OPTIONS");
    std::string asan_var = std::string("ASAN_OPTIONS=") + (asan ? asan : "");
    if (asan) env.push_back(asan_var.c_str());
    env.push_back(nullptr);
    shmx_spawn_options_t opts = {};
    opts.envp = env.data();
    opts.cwd = "/";
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    int rc = Spawn({SelfExe(), kListFds}, &opts, &ch, &child);
    close(leak[0]);
    close(leak[1]);
    close(leak_dup);
    ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    EXPECT_EQ(ReceiveText(ch), "fds=" + expected + " cwd=/ mark=42");
    int status = -1;
    ASSERT_EQ(shmx_child_wait(child, 10 * kSecond, &status), 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_F(SpawnTest, shouldReturnEnoentForMissingProgramAndTakeNoEntry) {
    shmx_channel_t *ch = reinterpret_cast<shmx_channel_t *>(1);
    shmx_child_t *child = reinterpret_cast<shmx_child_t *>(1);
    const char *argv[] = {"/nonexistent/shmx-no-such-program", nullptr};
    EXPECT_EQ(shmx_host_spawn(host_, argv[0], argv, nullptr, &ch, &child), -ENOENT);
    EXPECT_EQ(ch, nullptr);
    EXPECT_EQ(child, nullptr);
    const char *bare[] = {"shmx-no-such-program-on-path", nullptr};
    EXPECT_EQ(shmx_host_spawn(host_, bare[0], bare, nullptr, &ch, &child), -ENOENT);
    ExpectNoEntryTaken();
    // Nothing ran, so nothing was reported.
    EXPECT_FALSE(events_.WaitFor(1, 100 * kMs));

    // The entry is given out again.
    ASSERT_EQ(Spawn({SelfExe(), kHold}, nullptr, &ch, &child), 0);
    EXPECT_EQ(shmx_channel_index(ch), 0u);
    EXPECT_EQ(ReceiveText(ch), "ready");
}

TEST_F(SpawnTest, shouldRejectBadArguments) {
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    const char *argv[] = {"/bin/true", nullptr};
    const char *no_args[] = {nullptr};
    shmx_spawn_options_t opts = {};
    opts.flags = 1;
    EXPECT_EQ(shmx_host_spawn(nullptr, argv[0], argv, nullptr, &ch, &child), -SHMX_EINVAL);
    EXPECT_EQ(shmx_host_spawn(host_, argv[0], no_args, nullptr, &ch, &child), -SHMX_EINVAL);
    EXPECT_EQ(shmx_host_spawn(host_, argv[0], argv, &opts, &ch, &child), -SHMX_EINVAL);
    EXPECT_EQ(shmx_host_spawn(host_, argv[0], argv, nullptr, nullptr, &child), -SHMX_EINVAL);
    ExpectNoEntryTaken();
}

TEST_F(SpawnTest, shouldReportKilledChildWithItsSignalAndFreeEverything) {
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    ASSERT_EQ(Spawn({SelfExe(), kHold}, nullptr, &ch, &child), 0);
    ASSERT_EQ(ReceiveText(ch), "ready");
    EXPECT_EQ(shmx_child_wait(child, 10 * kMs, nullptr), -ETIMEDOUT);

    int64_t killed = NowNs();
    ASSERT_EQ(shmx_child_kill(child, SIGKILL), 0);
    ASSERT_TRUE(events_.WaitFor(1, 5 * kSecond)) << "no peer event";
    shmx_peer_event_t ev;
    {
        std::lock_guard<std::mutex> lock(events_.mu);
        ASSERT_EQ(events_.list.size(), 1u);
        ev = events_.list[0];
    }
    EXPECT_EQ(ev.reason, (uint32_t)SHMX_PEER_EXITED);
    EXPECT_TRUE(WIFSIGNALED(ev.exit_status) && WTERMSIG(ev.exit_status) == SIGKILL) << "status " << ev.exit_status;
    EXPECT_EQ(ev.pid, shmx_child_pid(child));
    EXPECT_EQ(ev.peer, shmx_channel_index(ch));
    EXPECT_EQ(ev.epoch, shmx_channel_epoch(ch));
    EXPECT_LT(ev.noticed_ns - killed, 100 * kMs) << "the host noticed the exit late";

    int status = -1;
    ASSERT_EQ(shmx_child_wait(child, 10 * kSecond, &status), 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    Forget(ch);
    ExpectNoEntryTaken();
}

TEST_F(SpawnTest, shouldGiveRespawnFreshEpochOnSameEntry) {
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    ASSERT_EQ(Spawn({SelfExe(), kHold}, nullptr, &ch, &child), 0);
    ASSERT_EQ(ReceiveText(ch), "ready");
    uint32_t index = shmx_channel_index(ch), epoch = shmx_channel_epoch(ch);
    ASSERT_EQ(shmx_child_kill(child, SIGKILL), 0);
    ASSERT_TRUE(events_.WaitFor(1, 5 * kSecond));
    ASSERT_EQ(shmx_child_wait(child, 10 * kSecond, nullptr), 0);
    Forget(ch);

    ASSERT_EQ(Spawn({SelfExe(), kHold}, nullptr, &ch, &child), 0);
    EXPECT_EQ(shmx_channel_index(ch), index);
    EXPECT_GT(shmx_channel_epoch(ch), epoch);
    EXPECT_EQ(ReceiveText(ch), "ready");
    // Closing the host's side lets the holding child finish on its own.
    shmx_channel_close(ch);
    int status = -1;
    ASSERT_EQ(shmx_child_wait(child, 10 * kSecond, &status), 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_F(SpawnTest, shouldReapExitedChildOnFree) {
    shmx_channel_t *ch = nullptr;
    shmx_child_t *child = nullptr;
    const char *argv[] = {"/bin/true", nullptr};
    ASSERT_EQ(shmx_host_spawn(host_, argv[0], argv, nullptr, &ch, &child), 0);
    channels_.push_back(ch);
    pid_t pid = shmx_child_pid(child);
    ASSERT_TRUE(events_.WaitFor(1, 5 * kSecond));
    shmx_child_free(child);
    // Reaped by the free: the pid is no child of ours any more.
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
}

} // namespace
