// RELIABILITY.md W3, descriptor exhaustion: a host whose RLIMIT_NOFILE leaves
// room for only a few guests. Guests connect until it runs out; its accept must
// say so with an -errno (EMFILE/ENFILE), return instead of spinning on the
// connection it cannot take, keep serving the guests it has, and admit new
// guests again once some have left.
//
// The host runs in a forked child (the limit is per process) and reports each
// shmx_host_accept result over a pipe; the guests run here.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shmx/shmx.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr int kSpareFds = 16;  // free descriptor numbers left to the host after create
constexpr int kMaxGuests = 12; // far more than kSpareFds can carry

// What the host child tells the test, one record per write (atomic: < PIPE_BUF).
struct Report {
    enum Kind : int32_t { kLimit = 1, kAccept = 2, kCreateFailed = 3 } kind;
    int32_t rc;      // kAccept: shmx_host_accept's return; kCreateFailed: shmx_host_create's
    int64_t a;       // kLimit: the soft limit set; kAccept: how long the call took (us)
    int64_t b;       // kLimit: descriptors open when it was set
};

int64_t NowNs() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// How many descriptors are open, and the limit below which exactly @spare numbers are free
// (a new descriptor takes the lowest free number, and RLIMIT_NOFILE bounds that number; descriptors
// inherited at high numbers stay usable and do not count).
void FdLimitFor(int spare, int *count, int *limit) {
    std::vector<bool> open(1 << 16);
    *count = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        *limit = -1;
        return;
    }
    int own = dirfd(d);
    while (struct dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == own || fd >= (int)open.size()) continue;
        (*count)++;
        open[fd] = true;
    }
    closedir(d);
    int fd = 0;
    for (int free_seen = 0; free_seen < spare; fd++) free_seen += !open[fd];
    *limit = fd;
}

void Send(int fd, const Report &r) {
    ssize_t n;
    do n = write(fd, &r, sizeof r);
    while (n < 0 && errno == EINTR);
}

// The host child: create, lower the limit, accept until @stop_fd is readable, echo each channel.
// With @fill, it then takes every free descriptor itself (so accept4 is what fails) and gives
// them back after kFilledAccepts accepts have said EMFILE.
constexpr int kFilledAccepts = 3;
int HostChild(const std::string &name, int report_fd, int stop_fd, bool fill) {
    shmx_log_set_handler(nullptr, nullptr);
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    cfg.max_channels = 16; // entries are not the limit here, descriptors are
    shmx_host_t *h = nullptr;
    int rc = shmx_host_create(name.c_str(), &cfg, &h);
    if (rc != 0) {
        Send(report_fd, {Report::kCreateFailed, rc, 0, 0});
        return 60;
    }
    int count, limit;
    FdLimitFor(kSpareFds, &count, &limit);
    if (limit < 0) return 62;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = (rlim_t)limit;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 61;
    std::vector<int> fillers;
    for (int fd; fill && (fd = dup(0)) >= 0;) fillers.push_back(fd);
    Send(report_fd, {Report::kLimit, 0, (int64_t)rl.rlim_cur, count});
    int emfiles = 0;

    std::atomic<bool> stop{false};
    std::vector<std::thread> echo;
    for (;;) {
        struct pollfd p = {stop_fd, POLLIN, 0};
        if (poll(&p, 1, 0) != 0) break;
        shmx_channel_t *ch = nullptr;
        int64_t t0 = NowNs();
        rc = shmx_host_accept(h, 100 * kMs, &ch); // one call: it returns, whatever happens
        int64_t took_us = (NowNs() - t0) / 1000;
        if (rc == -ETIMEDOUT) continue;
        Send(report_fd, {Report::kAccept, rc, took_us, 0});
        if (rc == 0) {
            echo.emplace_back([ch, &stop] {
                while (!stop.load()) {
                    shmx_message_t m;
                    int r = shmx_channel_receive(ch, &m, 50 * kMs);
                    if (r == -SHMX_EEMPTY || r == -ETIMEDOUT) continue;
                    if (r != 0) break; // the guest left
                    shmx_channel_send(ch, SHMX_TYPE_DATA, 0, m.id, m.data, m.length, kSecond);
                    shmx_channel_release(ch, &m);
                }
                shmx_channel_free(ch); // its descriptors go back
            });
        } else {
            usleep(20000); // our back-off, not the library's: the waiting connection stays queued
            if ((rc == -EMFILE || rc == -ENFILE) && ++emfiles == kFilledAccepts) {
                for (int fd : fillers) close(fd);
                fillers.clear();
            }
        }
    }
    stop = true;
    for (auto &t : echo) t.join();
    shmx_host_destroy(h);
    return 0;
}

// Read one report within @ms; false on timeout or end.
bool ReadReport(int fd, Report *r, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return false;
    return read(fd, r, sizeof *r) == (ssize_t)sizeof *r;
}

// One 64-byte message to the host's echo and back.
int RoundTrip(shmx_guest_t *g, uint8_t seed) {
    shmx_channel_t *ch = shmx_guest_channel(g);
    uint8_t out[64], in[128];
    for (int i = 0; i < 64; i++) out[i] = (uint8_t)(seed + i);
    int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, out, sizeof out, 2 * kSecond);
    if (id < 0) return (int)id;
    int64_t n = shmx_channel_receive_copy(ch, in, sizeof in, nullptr, 2 * kSecond);
    if (n < 0) return (int)n;
    return n == 64 && memcmp(in, out, 64) == 0 ? 0 : -SHMX_EPROTO;
}

class FdExhaustionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = "fdx-" + std::to_string(getpid());
        ASSERT_EQ(pipe2(report_, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(stop_, O_CLOEXEC), 0);
    }
    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        if (child_ > 0) {
            kill(child_, SIGKILL);
            WaitChild(child_, 5000);
        }
        for (int fd : {report_[0], report_[1], stop_[0], stop_[1]})
            if (fd >= 0) close(fd);
    }

    // Every report that arrives within @ms (stops early once @until says so).
    template <class Pred>
    void Collect(int ms, Pred until) {
        Report r;
        int64_t end = NowNs() + (int64_t)ms * kMs;
        while (!until() && NowNs() < end && ReadReport(report_[0], &r, 50)) {
            if (r.kind == Report::kAccept) accepts_.push_back(r);
        }
    }
    int CountAccepts(int rc) const {
        int n = 0;
        for (const Report &r : accepts_) n += r.rc == rc;
        return n;
    }

    // Fork the host child and wait until it has set its limit.
    void StartHost(bool fill) {
        child_ = fork();
        ASSERT_GE(child_, 0);
        if (child_ == 0) {
            close(report_[0]);
            close(stop_[1]);
            _exit(HostChild(name_, report_[1], stop_[0], fill));
        }
        close(report_[1]);
        report_[1] = -1;
        close(stop_[0]);
        stop_[0] = -1;
        Report lim;
        ASSERT_TRUE(ReadReport(report_[0], &lim, 10000)) << "the host child never started";
        ASSERT_EQ(lim.kind, Report::kLimit) << "create failed: " << shmx_strerror(lim.rc);
        printf("[ measure  ] host: %lld descriptors open, RLIMIT_NOFILE lowered to %lld%s\n", (long long)lim.b,
               (long long)lim.a, fill ? ", every free one then taken" : "");
    }

    // Close the guests, stop the host child: it must exit 0 (no crash on the way).
    void StopHost() {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        guests_.clear();
        ASSERT_EQ(write(stop_[1], "s", 1), 1);
        int status = WaitChild(child_, 5000);
        child_ = -1;
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "host child status " << status << (WIFSIGNALED(status) ? " (killed by a signal)" : "");
    }

    PrivateRuntimeDir runtime_;
    std::string name_;
    int report_[2] = {-1, -1}, stop_[2] = {-1, -1};
    pid_t child_ = -1;
    std::vector<shmx_guest_t *> guests_;
    std::vector<Report> accepts_;
};

TEST_F(FdExhaustionTest, ShouldReportDescriptorExhaustionKeepServingAndAdmitAgainOnceGuestsLeave) {
    ASSERT_NO_FATAL_FAILURE(StartHost(false));

    // Guests until one is not admitted.
    int refused = 0;
    for (int i = 0; i < kMaxGuests; i++) {
        shmx_guest_t *g = nullptr;
        int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, kSecond, &g);
        if (rc != 0) {
            refused = rc;
            printf("[ measure  ] guest %d not admitted: %d (%s)\n", i, rc, shmx_strerror(rc));
            break;
        }
        guests_.push_back(g);
    }
    auto exhausted = [&] { return CountAccepts(-EMFILE) + CountAccepts(-ENFILE) > 0; };
    Collect(3000, exhausted);
    size_t admitted = guests_.size();
    printf("[ measure  ] %zu guests admitted; host accept results:", admitted);
    for (const Report &r : accepts_) printf(" %d (%lld us)", r.rc, (long long)r.a);
    printf("\n");
    ASSERT_NE(refused, 0) << "every guest was admitted: the limit never bit";
    ASSERT_GE(admitted, 1u) << "not even one guest fitted in " << kSpareFds << " spare descriptors";
    EXPECT_TRUE(exhausted()) << "the host's accept never said EMFILE/ENFILE";
    for (const Report &r : accepts_) {
        EXPECT_TRUE(r.rc == 0 || r.rc == -EMFILE || r.rc == -ENFILE || r.rc == -EPIPE || r.rc == -ECONNRESET ||
                    r.rc == -SHMX_EPROTO)
            << "unexpected accept result " << r.rc << " (" << shmx_strerror(r.rc) << ")";
    }

    // The admitted guests are still served.
    for (size_t i = 0; i < admitted; i++) EXPECT_EQ(RoundTrip(guests_[i], (uint8_t)i), 0) << "guest " << i;

    // Some leave; a new guest is admitted (the host may first meet the refused guest's
    // stale connection, which fails on its own) and served, and so are those who stayed.
    size_t leave = (admitted + 1) / 2;
    for (size_t i = 0; i < leave; i++) shmx_guest_close(guests_[i]);
    guests_.erase(guests_.begin(), guests_.begin() + (long)leave);
    shmx_guest_t *next = nullptr;
    int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 5 * kSecond, &next);
    ASSERT_EQ(rc, 0) << "no guest admitted after " << leave << " left: " << shmx_strerror(rc);
    guests_.push_back(next);
    EXPECT_EQ(RoundTrip(next, 99), 0) << "the newcomer";
    for (size_t i = 0; i + 1 < guests_.size(); i++) {
        EXPECT_EQ(RoundTrip(guests_[i], (uint8_t)(50 + i)), 0) << "a guest that stayed";
    }
    Collect(200, [] { return false; });
    printf("[ measure  ] after %zu left: accept results so far:", leave);
    for (const Report &r : accepts_) printf(" %d", r.rc);
    printf("\n");

    StopHost();
}

// accept4 itself fails with EMFILE: the pending connection stays queued and the listening
// socket stays readable, so an accept that retried internally would spin until its deadline
// (or forever without one). shmx_host_accept returns -EMFILE at once instead, each time; once
// descriptors are free again the waiting guest is admitted.
TEST_F(FdExhaustionTest, ShouldReturnEmfileAtOnceFromAnAcceptThatCannotTakeTheConnection) {
    ASSERT_NO_FATAL_FAILURE(StartHost(true));
    shmx_guest_t *g = nullptr;
    int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 5 * kSecond, &g);
    Collect(1000, [&] { return !accepts_.empty() && accepts_.back().rc == 0; });
    printf("[ measure  ] host accept results:");
    for (const Report &r : accepts_) printf(" %d (%lld us)", r.rc, (long long)r.a);
    printf("\n");
    ASSERT_EQ(rc, 0) << "the waiting guest was not admitted once descriptors were free: " << shmx_strerror(rc);
    guests_.push_back(g);
    ASSERT_EQ(accepts_.size(), (size_t)kFilledAccepts + 1);
    for (int i = 0; i < kFilledAccepts; i++) {
        EXPECT_EQ(accepts_[i].rc, -EMFILE) << shmx_strerror(accepts_[i].rc);
        // The first call may have waited for the guest to arrive; later ones find it queued.
        if (i > 0) {
            EXPECT_LT(accepts_[i].a, 100000) << "returned before its 100 ms deadline: no spin on the queued connection";
        }
    }
    EXPECT_EQ(accepts_.back().rc, 0);
    EXPECT_EQ(RoundTrip(g, 7), 0);
    StopHost();
}

} // namespace
