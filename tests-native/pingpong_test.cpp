// The C programs shmx-pong and shmx-ping (bench/c), run as real processes:
// every size over both transports, throughput, several pings at once, the
// "no host" exit code and a clean shutdown on SIGTERM.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_process.h"

extern char **environ;

namespace {

const std::string kBin = SHMX_BIN_DIR;

int RemoveEntry(const char *path, const struct stat *, int, struct FTW *) { return remove(path); }


// True if @out is exactly one line "LABEL k1=V1 k2=V2 ...\n" with the given
// keys in order, each value digits (and a '.' where @decimal allows), and the
// key "count" (and "size") equal to what is expected.
bool MatchesLine(const std::string &out, const std::string &label, const std::vector<std::string> &keys,
                 const std::vector<std::pair<std::string, std::string>> &fixed, bool decimal = false) {
    if (out.empty() || out.back() != '\n' || out.find('\n') != out.size() - 1) return false;
    std::istringstream in(out.substr(0, out.size() - 1));
    std::string word;
    if (!(in >> word) || word != label) return false;
    for (const std::string &key : keys) {
        if (!(in >> word) || word.compare(0, key.size() + 1, key + "=") != 0) return false;
        std::string value = word.substr(key.size() + 1);
        if (value.empty() || value.find_first_not_of(decimal ? "0123456789." : "0123456789") != std::string::npos)
            return false;
        for (auto &f : fixed)
            if (f.first == key && f.second != value) return false;
    }
    return !(in >> word);
}

struct Result {
    int status = -1; // wait status
    std::string out;
};

// Spawn @argv with stdout to a pipe and stderr to @err_path; collect stdout until exit (bounded).
class Process {
  public:
    Process(const std::vector<std::string> &args, const std::string &err_path) {
        std::vector<char *> argv;
        for (auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        out_fd_ = p[0];
    }

    ~Process() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            WaitChild(pid_, 10000);
        }
        if (out_fd_ >= 0) close(out_fd_);
    }

    bool started() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }

    // Reap without reading stdout (at most @timeout_ms, then SIGKILL). Returns the wait status.
    int Wait(int timeout_ms) {
        int status = WaitChild(pid_, timeout_ms);
        pid_ = -1;
        return status;
    }

    // Read stdout to its end (at most @timeout_ms in all), then reap.
    Result Finish(int timeout_ms) {
        Result r;
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        char buf[4096];
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (spent >= timeout_ms) break;
            struct pollfd p = {out_fd_, POLLIN, 0};
            if (poll(&p, 1, (int)(timeout_ms - spent)) <= 0) break;
            ssize_t n = read(out_fd_, buf, sizeof buf);
            if (n <= 0) break;
            r.out.append(buf, (size_t)n);
        }
        r.status = WaitChild(pid_, 1000);
        pid_ = -1;
        return r;
    }

  private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
};

class PingPongTest : public ::testing::Test {
  protected:
    void SetUp() override {
        pong_ = kBin + "/shmx-pong";
        ping_ = kBin + "/shmx-ping";
        if (access(pong_.c_str(), X_OK) != 0 || access(ping_.c_str(), X_OK) != 0)
            GTEST_SKIP() << "shmx-pong/shmx-ping are not built in " << kBin;
        const char *old = getenv("XDG_RUNTIME_DIR");
        had_old_ = old != nullptr;
        if (had_old_) old_ = old;
        char tmpl[] = "/tmp/shmxppXXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        runtime_ = tmpl;
        setenv("XDG_RUNTIME_DIR", runtime_.c_str(), 1); // both programs inherit it
        static std::atomic<int> counter{0};
        name_ = "pp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        err_ = runtime_ + "/stderr.log";
    }

    void TearDown() override {
        pong_proc_.reset();
        if (runtime_.empty()) return;
        if (HasFailure()) {
            std::ifstream f(err_);
            std::stringstream s;
            s << f.rdbuf();
            std::cerr << "---- stderr of the programs ----\n" << s.str();
        }
        nftw(runtime_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
        if (had_old_) setenv("XDG_RUNTIME_DIR", old_.c_str(), 1);
        else unsetenv("XDG_RUNTIME_DIR");
    }

    void StartPong(const std::vector<std::string> &extra = {}) {
        std::vector<std::string> args = {pong_, "--name", name_};
        args.insert(args.end(), extra.begin(), extra.end());
        pong_proc_.reset(new Process(args, err_));
        ASSERT_TRUE(pong_proc_->started());
    }

    Result Ping(const std::vector<std::string> &extra, int timeout_ms = 60000) {
        std::vector<std::string> args = {ping_, "--name", name_};
        args.insert(args.end(), extra.begin(), extra.end());
        Process p(args, err_);
        EXPECT_TRUE(p.started());
        return p.Finish(timeout_ms);
    }

    static void ExpectExit(const Result &r, int code, const std::string &what) {
        ASSERT_TRUE(WIFEXITED(r.status)) << what << ": status " << r.status;
        EXPECT_EQ(WEXITSTATUS(r.status), code) << what << "\nstdout: " << r.out;
    }

    static void ExpectRttLine(const Result &r, const std::string &count) {
        EXPECT_TRUE(MatchesLine(r.out, "rtt_ns", {"p50", "p90", "p99", "p999", "max", "count"}, {{"count", count}}))
            << "stdout: " << r.out;
    }

    std::string ReadStderr() {
        std::ifstream f(err_);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }

    std::string pong_, ping_, name_, runtime_, err_, old_;
    bool had_old_ = false;
    std::unique_ptr<Process> pong_proc_;
};

TEST_F(PingPongTest, ShouldEchoEverySizeOverBothTransports) {
    StartPong();
    for (const char *transport : {"shm", "uds"}) {
        for (const char *size : {"0", "1", "1024", "1025", "65536", "1048576"}) {
            std::string count = std::string(size) == "1048576" ? "20" : "200";
            Result r = Ping({"--transport", transport, "--size", size, "--count", count, "--warmup", "5"});
            std::string what = std::string(transport) + " size " + size;
            ExpectExit(r, 0, what);
            ExpectRttLine(r, count);
        }
    }
    EXPECT_NE(ReadStderr().find("pong: listening on " + name_ + " ("), std::string::npos);
}

TEST_F(PingPongTest, ShouldCountEverySinkMessageInThroughputMode) {
    StartPong({"--transport", "both"});
    for (const char *transport : {"shm", "uds"}) {
        for (const char *size : {"64", "5000"}) {
            Result r = Ping({"--transport", transport, "--throughput", "--size", size, "--count", "5000"});
            ExpectExit(r, 0, std::string("throughput ") + transport + " size " + size);
            EXPECT_TRUE(MatchesLine(r.out, "throughput", {"msgs_per_s", "mbytes_per_s", "count", "size"},
                                    {{"count", "5000"}, {"size", size}}, true))
                << "stdout: " << r.out;
        }
    }
}

TEST_F(PingPongTest, ShouldFallBackToTheSocketWithAutoWhenTheHostOffersNoSharedMemory) {
    StartPong({"--transport", "uds"});
    Result r = Ping({"--transport", "auto", "--size", "5000", "--count", "200", "--warmup", "5"});
    ExpectExit(r, 0, "auto against a uds-only host");
    ExpectRttLine(r, "200");
    EXPECT_NE(ReadStderr().find("Unix socket"), std::string::npos) << "the fallback is logged";
    ExpectExit(Ping({"--transport", "auto", "--count", "50", "--warmup", "5"}), 0, "auto again");
}

TEST_F(PingPongTest, ShouldServeSeveralPingsAtOnce) {
    StartPong({"--max-guests", "4"});
    std::vector<std::unique_ptr<Process>> pings;
    for (int i = 0; i < 3; i++) {
        std::vector<std::string> args = {ping_,     "--name",  name_,  "--transport", i == 1 ? "uds" : "shm",
                                         "--count", "300", "--size", "100000"};
        pings.emplace_back(new Process(args, err_));
    }
    for (auto &p : pings) {
        Result r = p->Finish(60000);
        ExpectExit(r, 0, "concurrent ping");
        ExpectRttLine(r, "300");
    }
}

TEST_F(PingPongTest, ShouldExitWithThreeWhenNoHostAppears) {
    Result r = Ping({"--timeout-ms", "100", "--count", "10"});
    ExpectExit(r, 3, "ping without a host");
    EXPECT_NE(ReadStderr().find("ping: could not connect"), std::string::npos);
}

TEST_F(PingPongTest, ShouldExitWithTwoOnBadUsage) {
    ExpectExit(Ping({"--size", "-1"}), 2, "negative size");
    ExpectExit(Ping({"--transport", "pigeon"}), 2, "unknown transport");
    ExpectExit(Ping({"--count", "0"}), 2, "zero count");
}

TEST_F(PingPongTest, ShouldExitWithFourWhenTheHostDiesMidRun) {
    StartPong();
    std::vector<std::string> args = {ping_, "--name", name_, "--count", "10000000", "--warmup", "0"};
    Process ping(args, err_);
    ASSERT_TRUE(ping.started());
    // Wait (bounded) until pong has a guest, then kill pong outright.
    bool connected = false;
    for (int i = 0; i < 200 && !connected; i++) {
        connected = ReadStderr().find("guest on channel") != std::string::npos;
        if (!connected) poll(nullptr, 0, 50);
    }
    ASSERT_TRUE(connected);
    kill(pong_proc_->pid(), SIGKILL);
    Result r = ping.Finish(30000);
    ExpectExit(r, 4, "ping after its host died"); // 4: the host is gone (3 is could not connect)
    EXPECT_NE(ReadStderr().find("host is gone"), std::string::npos);
}

TEST_F(PingPongTest, ShouldShutDownCleanlyOnSigterm) {
    StartPong();
    ExpectExit(Ping({"--count", "100"}), 0, "ping before shutdown");
    // One guest still connected at shutdown must not hold pong up.
    std::vector<std::string> args = {ping_, "--name", name_, "--count", "10000000", "--warmup", "0"};
    Process ping(args, err_);
    bool connected = false;
    for (int i = 0; i < 200 && !connected; i++) {
        std::string e = ReadStderr();
        connected = e.find("connected") != e.rfind("connected"); // the second guest arrived
        if (!connected) poll(nullptr, 0, 50);
    }
    ASSERT_TRUE(connected);
    ASSERT_EQ(kill(pong_proc_->pid(), SIGTERM), 0);
    int status = pong_proc_->Wait(20000);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    char path[200];
    snprintf(path, sizeof path, "%s/shmx/%s.sock", runtime_.c_str(), name_.c_str());
    struct stat st;
    EXPECT_NE(lstat(path, &st), 0) << "pong removes its socket";
    Result r = ping.Finish(30000);
    ExpectExit(r, 3, "ping whose host shut down");
}

} // namespace
