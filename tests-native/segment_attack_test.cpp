// RELIABILITY.md "Segment" S1-S4 with a real host and a hostile guest process:
// a guest that shrinks, grows or re-describes the segment it was given, hosts
// created under memory and file-size limits, and the seals, close-on-exec and
// modes of every segment and extent a running host made. The single-segment
// cases (seals on a fresh memfd, corrupted header copies, a tiny tmpfs, an
// impossible size, RLIMIT_FSIZE) are in segment_test.cpp.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr uint32_t kShm = SHMX_TRANSPORT_SHM;
constexpr uint32_t kUds = SHMX_TRANSPORT_UDS;
constexpr uint32_t kSizes[] = {0, 100, 4096, 70000};
constexpr int kSealsAll = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

uint8_t Pattern(uint32_t k, uint32_t seed) { return (uint8_t)(k * 13u + seed * 5u + (k >> 9)); }

int SendPattern(shmx_channel_t *ch, uint32_t size, uint32_t seed) {
    std::vector<uint8_t> b(size);
    for (uint32_t k = 0; k < size; k++) b[k] = Pattern(k, seed);
    int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, b.data(), size, 10 * kSecond);
    return id < 0 ? (int)id : 0;
}

// 0, a negative code, or 1 for wrong bytes.
int ReceivePattern(shmx_channel_t *ch, uint32_t size, uint32_t seed) {
    shmx_message_t m;
    int rc = shmx_channel_receive(ch, &m, 10 * kSecond);
    if (rc < 0) return rc;
    int bad = m.length != size;
    for (uint32_t k = 0; !bad && k < size; k++) bad = static_cast<const uint8_t *>(m.data)[k] != Pattern(k, seed);
    rc = shmx_channel_release(ch, &m);
    return bad ? 1 : rc;
}

// The guest's half of a round trip: every size out, every size back. 0 or a step number.
int GuestRoundTrip(shmx_channel_t *ch) {
    int step = 40;
    for (uint32_t size : kSizes) {
        if (size > shmx_channel_max_payload(ch)) continue;
        if (SendPattern(ch, size, size + 1) != 0) return step;
        if (ReceivePattern(ch, size, size + 2) != 0) return step + 1;
        step += 2;
    }
    return 0;
}

// Guest @g (on a thread) and host channel @ch exchange every size, in a child process that
// reports by exit status and can not use gtest's checks. Returns 0, 1 if the host's side
// failed, 2 if the guest's did.
int ServeRoundTrips(shmx_guest_t *g, shmx_channel_t *ch) {
    int rt = 0;
    std::thread gt([&] { rt = GuestRoundTrip(shmx_guest_channel(g)); });
    for (uint32_t size : kSizes) {
        if (size > shmx_channel_max_payload(ch)) continue;
        if (ReceivePattern(ch, size, size + 1) != 0 || SendPattern(ch, size, size + 2) != 0) {
            gt.detach(); /* the caller exits at once: the guest thread dies with the process */
            return 1;
        }
    }
    gt.join();
    return rt != 0 ? 2 : 0;
}

// In a child process: a guest of @h asking for @ask connects (on a thread), must get
// @want, and both sides exchange every size; then the guest closes and @h is destroyed.
// Returns 0, 1 (connect or accept failed), 2 (another transport), 3 or 4 (ServeRoundTrips).
int AdmitAndServe(shmx_host_t *h, const std::string &name, uint32_t ask, uint32_t want) {
    std::atomic<int> grc{1};
    shmx_guest_t *g = nullptr;
    std::thread t([&] { grc = shmx_guest_connect(name.c_str(), ask, 5 * kSecond, &g); });
    shmx_channel_t *ch = nullptr;
    int arc = shmx_host_accept(h, 5 * kSecond, &ch);
    t.join();
    if (arc != 0 || grc != 0) return 1;
    if (shmx_channel_transport(shmx_guest_channel(g)) != (int)want) return 2;
    if (int step = ServeRoundTrips(g, ch)) return 2 + step;
    shmx_guest_close(g);
    shmx_host_destroy(h);
    return 0;
}

void HostRoundTrip(shmx_channel_t *ch) {
    for (uint32_t size : kSizes) {
        if (size > shmx_channel_max_payload(ch)) continue;
        ASSERT_EQ(ReceivePattern(ch, size, size + 1), 0) << "size " << size;
        ASSERT_EQ(SendPattern(ch, size, size + 2), 0) << "size " << size;
    }
}

// This process's descriptors whose link names a memfd starting with "shmx:" (segments and extents).
std::vector<int> ShmxMemfds(const std::string &label_prefix = "") {
    std::vector<int> fds;
    DIR *d = opendir("/proc/self/fd");
    if (d == nullptr) return fds;
    int self = dirfd(d);
    for (struct dirent *e; (e = readdir(d)) != nullptr;) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == self) continue;
        char link[256];
        std::string p = std::string("/proc/self/fd/") + e->d_name;
        ssize_t n = readlink(p.c_str(), link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = '\0';
        std::string want = "/memfd:shmx:" + label_prefix;
        if (strncmp(link, want.c_str(), want.size()) == 0) fds.push_back(fd);
    }
    closedir(d);
    return fds;
}

// Descriptors opened read-write on every mapping of this process whose file is a
// memfd named "shmx:@label_prefix..." (through /proc/self/map_files, which needs
// CAP_SYS_ADMIN): how a guest reaches an extent whose descriptor it already closed.
std::vector<int> OpenShmxMappings(const std::string &label_prefix) {
    std::vector<int> fds;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == nullptr) return fds;
    char line[512];
    std::string want = "/memfd:shmx:" + label_prefix;
    std::vector<std::string> seen;
    while (fgets(line, sizeof line, f) != nullptr) {
        const char *path = strchr(line, '/');
        if (path == nullptr || strncmp(path, want.c_str(), want.size()) != 0) continue;
        std::string range(line, strcspn(line, " "));
        bool dup = false;
        for (const std::string &r : seen) dup = dup || r == range;
        if (dup) continue;
        seen.push_back(range);
        int fd = open(("/proc/self/map_files/" + range).c_str(), O_RDWR | O_CLOEXEC);
        if (fd >= 0) fds.push_back(fd);
    }
    fclose(f);
    return fds;
}

// Make @h's pool grow by @n extents of class 0: take its slots as the host until
// the class is empty and the allocation adds an extent, then give them all back.
void GrowClass0(shmx_host_t *h, uint32_t n) {
    static const shmx_idle_t idle = {100, 10};
    shmx_pool_t *pool = shmx_host_pool(h);
    std::vector<shmx_slot_ref_t> refs;
    uint32_t want = shmx_host_extent_count(h) + n;
    while (shmx_host_extent_count(h) < want && refs.size() < 100000) {
        shmx_slot_ref_t ref{};
        int rc = shmx_pool_alloc(pool, pool->cls[0].slot_size, SHMX_OWNER_HOST, shmx_deadline(0), &idle, &ref);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        refs.push_back(ref);
    }
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(shmx_pool_free(pool, &r, SHMX_OWNER_HOST), 0);
    ASSERT_EQ(shmx_host_extent_count(h), want);
}

// What a hostile guest tries on one descriptor of the segment. 0 when every attempt
// was refused with EPERM and the size stayed, else a step number.
int TryToResize(int fd) {
    struct stat before;
    if (fstat(fd, &before) != 0) return 20;
    off_t size = before.st_size;
    errno = 0;
    if (ftruncate(fd, 4096) == 0 || errno != EPERM) return 21;  // shrink: the host would SIGBUS past 4 KiB
    errno = 0;
    if (ftruncate(fd, 0) == 0 || errno != EPERM) return 22;
    errno = 0;
    if (ftruncate(fd, size * 4) == 0 || errno != EPERM) return 23;  // grow
    errno = 0;
    if (fallocate(fd, 0, 0, size + (1 << 20)) == 0 || errno != EPERM) return 24;
    errno = 0;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0 || errno != EPERM) return 25;  // F_SEAL_SEAL: no more seals
    struct stat after;
    if (fstat(fd, &after) != 0 || after.st_size != size) return 26;
    return 0;
}

// The same attempts through the descriptor and through /proc/self/fd reopened read-write.
int TryToResizeEveryWay(int fd) {
    int rc = TryToResize(fd);
    if (rc != 0) return rc;
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    int again = open(proc.c_str(), O_RDWR | O_CLOEXEC);
    if (again < 0) return 27;
    rc = TryToResize(again);
    close(again);
    return rc == 0 ? 0 : rc + 10;
}

class SegmentAttackTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "sa-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
    }

    void TearDown() override { shmx_host_destroy(host_); }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    }

    // A guest child: connects over shm, runs @attack on its own mapping, then a round trip.
    // Exit status: 0, 2 (no connection), the attack's step, or the round trip's step.
    pid_t StartGuest(const std::function<int(shmx_guest_t *)> &attack) {
        pid_t pid = fork();
        if (pid == 0) {
            shmx_guest_t *g = nullptr;
            if (shmx_guest_connect(name_.c_str(), kShm, 10 * kSecond, &g) != 0) _exit(2);
            int rc = attack(g);
            if (rc == 0) rc = GuestRoundTrip(shmx_guest_channel(g));
            shmx_guest_close(g);
            _exit(rc);
        }
        return pid;
    }

    shmx_channel_t *Accept() {
        shmx_channel_t *ch = nullptr;
        int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        return ch;
    }

    // Accept the guest, do the host's half of its round trip, free the channel, reap it.
    void ServeGuest(pid_t pid) {
        shmx_channel_t *ch = Accept();
        if (ch != nullptr) {
            HostRoundTrip(ch);
            shmx_channel_free(ch);
        }
        int status = WaitChild(pid, 30000);
        ASSERT_TRUE(WIFEXITED(status)) << "guest status " << status;
        EXPECT_EQ(WEXITSTATUS(status), 0) << "the guest failed at step " << WEXITSTATUS(status);
    }

    // The host's segment is whole: its size is what it created, its last byte is mapped.
    void ExpectHostSegmentWhole(uint64_t size) {
        shmx_segment_t *seg = shmx_host_segment(host_);
        EXPECT_EQ(seg->size, size);
        struct stat st;
        ASSERT_EQ(fstat(seg->fd, &st), 0);
        EXPECT_EQ((uint64_t)st.st_size, size);
        volatile uint8_t *last = seg->base + size - 1;
        uint8_t v = *last;  // a SIGBUS here would kill the test binary
        *last = v;
    }

    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::string name_;
    PrivateRuntimeDir runtime_;
};

// S1: the guest holds the host's memfd; shrinking (directly and through a /proc
// reopen) is refused with EPERM, the host never faults, traffic goes on.
TEST_F(SegmentAttackTest, ShouldRefuseAGuestShrinkingTheSegmentAndKeepServing) {
    CreateHost();
    const uint64_t size = shmx_host_segment(host_)->size;
    const std::string label = name_;
    pid_t pid = StartGuest([label](shmx_guest_t *) {
        std::vector<int> fds = ShmxMemfds(label);
        if (fds.empty()) return 30;  // the guest must hold the segment it mapped
        for (int fd : fds) {
            int rc = TryToResizeEveryWay(fd);
            if (rc != 0) return rc;
        }
        return 0;
    });
    ASSERT_GT(pid, 0);
    ServeGuest(pid);
    ExpectHostSegmentWhole(size);
    EXPECT_EQ(shmx_host_mapped_bytes(host_), size);
    // And the host serves the next guest as before.
    pid = StartGuest([](shmx_guest_t *) { return 0; });
    ASSERT_GT(pid, 0);
    ServeGuest(pid);
}

// S1/S4 for extents: a guest that received pool extents can neither shrink nor grow them.
TEST_F(SegmentAttackTest, ShouldRefuseAGuestResizingThePoolExtentsItReceived) {
    cfg_.class_count = 1;
    cfg_.class_size[0] = 4096;
    cfg_.class_slots[0] = 2;
    cfg_.max_payload = 4096;
    cfg_.window_bytes = 1 << 20;
    cfg_.extent_bytes = 64 * 1024;
    cfg_.inline_max = 256;
    CreateHost();
    GrowClass0(host_, 1);
    pid_t pid = StartGuest([](shmx_guest_t *g) {
        // Extents are mapped on first use: a message through a slot of the extent makes
        // the guest map it. Ask for more slots than the segment's own two.
        for (int i = 0; i < 3; i++) {
            void *buf = nullptr;
            if (shmx_channel_claim(shmx_guest_channel(g), 4000, 5 * kSecond, &buf) != 0) return 31;
            memset(buf, i, 4000);
            if (shmx_channel_commit(shmx_guest_channel(g), SHMX_TYPE_DATA, 0, 0) < 0) return 32;
        }
        // A guest closes each extent's fd once mapped: reach the files through /proc/self/map_files.
        std::vector<int> fds = OpenShmxMappings("extent");
        if (fds.empty()) return geteuid() == 0 ? 34 : 0;  // map_files needs CAP_SYS_ADMIN
        for (int fd : fds) {
            int rc = TryToResizeEveryWay(fd);
            close(fd);
            if (rc != 0) return rc;
        }
        return 0;
    });
    ASSERT_GT(pid, 0);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    for (int i = 0; i < 3; i++) {
        shmx_message_t m;
        ASSERT_EQ(shmx_channel_receive(ch, &m, 10 * kSecond), 0);
        EXPECT_EQ(m.length, 4000u);
        EXPECT_EQ(static_cast<const uint8_t *>(m.data)[3999], (uint8_t)i);
        ASSERT_EQ(shmx_channel_release(ch, &m), 0);
    }
    HostRoundTrip(ch);
    shmx_channel_free(ch);
    int status = WaitChild(pid, 30000);
    ASSERT_TRUE(WIFEXITED(status)) << "guest status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the guest failed at step " << WEXITSTATUS(status);
    const shmx_extent_t &e = host_->extents[0];
    struct stat st;
    ASSERT_EQ(fstat(e.fd, &st), 0);
    EXPECT_EQ((uint64_t)st.st_size, e.bytes);
    volatile uint8_t *last = e.base + e.bytes - 1;
    uint8_t v = *last;
    *last = v;
}

// S2: a guest rewrites the shared header to claim a larger segment (and another
// layout); growing the file is refused; the host keeps its own size and layout.
TEST_F(SegmentAttackTest, ShouldKeepItsOwnSizeWhenAGuestClaimsALargerSegment) {
    CreateHost();
    const shmx_segment_t *seg = shmx_host_segment(host_);
    const uint64_t size = seg->size;
    const shmx_layout_t layout = seg->layout;
    const shmx_config_t config = *shmx_host_config(host_);
    const std::string label = name_;
    pid_t pid = StartGuest([label](shmx_guest_t *) {
        std::vector<int> fds = ShmxMemfds(label);
        if (fds.empty()) return 30;  // (a forked guest also inherited the host's copy: the same file)
        struct stat st;
        if (fstat(fds[0], &st) != 0) return 31;
        errno = 0;
        if (ftruncate(fds[0], st.st_size * 2) == 0 || errno != EPERM) return 32;
        auto *h = static_cast<shmx_segment_header_t *>(
            mmap(nullptr, SHMX_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0));
        if (h == MAP_FAILED) return 33;
        h->total_bytes = (uint64_t)st.st_size * 4;
        h->config.max_channels = SHMX_MAX_CHANNELS;
        h->config.ring_bytes = 1u << 24;
        h->pool_offset += 1u << 20;
        h->channel_stride *= 2;
        munmap(h, SHMX_HEADER_BYTES);
        return 0;
    });
    ASSERT_GT(pid, 0);
    ServeGuest(pid);
    ExpectHostSegmentWhole(size);
    EXPECT_EQ(shmx_host_mapped_bytes(host_), size);
    EXPECT_EQ(0, memcmp(&seg->layout, &layout, sizeof layout)) << "the host's layout is private";
    EXPECT_EQ(0, memcmp(shmx_host_config(host_), &config, sizeof config)) << "the host's configuration is private";
}

// S2, the other guests' side: the header is shared and writable by every guest, and
// a later guest validates it against the file size. One guest's scribbling must not
// keep every later guest out (host.c: "a guest that misbehaves costs its own channel
// and nothing else").
TEST_F(SegmentAttackTest, ShouldAdmitLaterGuestsAfterOneRewroteTheSharedHeader) {
    CreateHost();
    const std::string label = name_;
    pid_t pid = StartGuest([label](shmx_guest_t *) {
        std::vector<int> fds = ShmxMemfds(label);
        if (fds.empty()) return 30;  // (a forked guest also inherited the host's copy: the same file)
        auto *h = static_cast<shmx_segment_header_t *>(
            mmap(nullptr, SHMX_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0));
        if (h == MAP_FAILED) return 33;
        h->total_bytes *= 4;
        munmap(h, SHMX_HEADER_BYTES);
        return 0;
    });
    ASSERT_GT(pid, 0);
    ServeGuest(pid);
    // A well-behaved guest comes next.
    std::atomic<int> rc{1};
    shmx_guest_t *g = nullptr;
    std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), kShm, 5 * kSecond, &g); });
    shmx_channel_t *ch = nullptr;
    int arc = shmx_host_accept(host_, 5 * kSecond, &ch);
    t.join();
    EXPECT_EQ(arc, 0) << shmx_strerror(arc);
    EXPECT_EQ(rc.load(), 0) << "a later guest is refused after an earlier one rewrote the header: "
                            << shmx_strerror(rc.load());
    if (g != nullptr) shmx_guest_close(g);
    if (ch != nullptr) shmx_channel_free(ch);
}

// S3: a host created where its segment cannot be backed reports it at creation
// (shm only: the error; shm and uds: the hybrid fallback serves over the socket).
TEST_F(SegmentAttackTest, ShouldReportAFileSizeLimitAtHostCreationAndFallBackToTheSocket) {
    const std::string name = name_;
    shmx_config_t cfg = cfg_;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {1 << 20, 1 << 20};  // the default segment is about 11 MiB
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(2);
        shmx_host_t *h = nullptr;
        shmx_config_t shm_only = cfg;
        shm_only.transports = kShm;
        if (shmx_host_create(name.c_str(), &shm_only, &h) != -EFBIG) _exit(3);
        if (h != nullptr) _exit(4);
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) _exit(5);  // the name was released by the failure
        if (shmx_host_transports(h) != kUds) _exit(6);
        if (shmx_host_mapped_bytes(h) != 0) _exit(7);
        if (int step = AdmitAndServe(h, name, SHMX_TRANSPORT_AUTO, kUds)) _exit(7 + step);
        _exit(0);
    }
    int status = WaitChild(pid, 60000);
    ASSERT_TRUE(WIFEXITED(status)) << "the host process died: status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "failed at step " << WEXITSTATUS(status);
}

// S3: a small address-space limit makes the mapping fail with ENOMEM at creation,
// and nothing is left behind (no descriptor, no mapping).
TEST_F(SegmentAttackTest, ShouldReportNoMemoryUnderASmallAddressSpaceLimit) {
    shmx_config_t cfg;
    shmx_config_default(&cfg);  // about 11 MiB
    const std::string label = name_;
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        // Just above what the process uses now (sanitizers reserve terabytes of shadow):
        // room for small allocations, not for 11 MiB more.
        long vm_kb = -1;
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        while (f != nullptr && fgets(line, sizeof line, f) != nullptr)
            if (sscanf(line, "VmSize: %ld kB", &vm_kb) == 1) break;
        if (f != nullptr) fclose(f);
        int32_t out[2] = {INT32_MIN, 0};
        if (vm_kb > 0) {
            rlim_t lim = (rlim_t)vm_kb * 1024 + (4u << 20);
            struct rlimit rl = {lim, lim};
            if (setrlimit(RLIMIT_AS, &rl) == 0) {
                size_t before = ShmxMemfds(label).size();
                shmx_segment_t seg;
                out[0] = shmx_segment_create(&cfg, label.c_str(), &seg);
                if (out[0] == 0) shmx_segment_close(&seg);
                else out[1] = (int32_t)(ShmxMemfds(label).size() - before) + (seg.base != nullptr ? 100 : 0);
            }
        }
        if (write(p[1], out, sizeof out) != (ssize_t)sizeof out) _exit(2);
        _exit(0);
    }
    close(p[1]);
    int32_t out[2] = {INT32_MIN, 0};
    ssize_t n = read(p[0], out, sizeof out);
    close(p[0]);
    int status = WaitChild(pid, 30000);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    ASSERT_EQ(n, (ssize_t)sizeof out);
    if (out[0] == INT32_MIN) GTEST_SKIP() << "could not read VmSize or set RLIMIT_AS";
    EXPECT_EQ(out[0], -ENOMEM) << shmx_strerror(out[0]);
    EXPECT_EQ(out[1], 0) << "a failed creation left a memfd or a mapping behind";
}

// S3: pool growth under a limit fails with a clear code; the host goes on serving
// with the memory it has (no SIGBUS later).
TEST_F(SegmentAttackTest, ShouldReportAFailedPoolGrowthAndKeepServing) {
    const std::string name = name_;
    shmx_config_t cfg = cfg_;
    cfg.class_count = 1;
    cfg.class_size[0] = 4096;
    cfg.class_slots[0] = 2;
    cfg.max_payload = 4096;
    cfg.window_bytes = 1 << 20;
    cfg.extent_bytes = 8 << 20;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        shmx_host_t *h = nullptr;
        if (shmx_host_create(name.c_str(), &cfg, &h) != 0) _exit(2);
        struct rlimit lim = {1 << 20, 1 << 20};  // extents are 8 MiB
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(3);
        static const shmx_idle_t idle = {100, 10};
        shmx_pool_t *pool = shmx_host_pool(h);
        shmx_slot_ref_t refs[2];
        for (shmx_slot_ref_t &r : refs)  // empty the class: growth is tried only then
            if (shmx_pool_alloc(pool, 4096, SHMX_OWNER_HOST, shmx_deadline(0), &idle, &r) != 0) _exit(12);
        pthread_mutex_lock(&h->mu);
        int rc = shmx_host_grow_locked(h, 0);
        pthread_mutex_unlock(&h->mu);
        if (rc != -EFBIG) _exit(4);
        if (shmx_host_extent_count(h) != 0) _exit(5);
        shmx_slot_ref_t more{};  // an allocation now fails with a code (no growth), not a signal
        int arc0 = shmx_pool_alloc(pool, 4096, SHMX_OWNER_HOST, shmx_deadline(0), &idle, &more);
        if (arc0 == 0) _exit(13);
        for (shmx_slot_ref_t &r : refs)
            if (shmx_pool_free(pool, &r, SHMX_OWNER_HOST) != 0) _exit(14);
        if (int step = AdmitAndServe(h, name, kShm, kShm)) _exit(5 + step);
        _exit(0);
    }
    int status = WaitChild(pid, 60000);
    ASSERT_TRUE(WIFEXITED(status)) << "the host process died: status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "failed at step " << WEXITSTATUS(status);
}

// S4: every memfd a running host holds (its segment and each extent) is sealed
// against shrinking, growing and further seals, and close-on-exec; so is the
// guest's copy of each.
TEST_F(SegmentAttackTest, ShouldSealAndCloseOnExecEveryMemfdOfARunningHost) {
    cfg_.class_count = 1;
    cfg_.class_size[0] = 4096;
    cfg_.class_slots[0] = 2;
    cfg_.max_payload = 4096;
    cfg_.window_bytes = 1 << 20;
    cfg_.extent_bytes = 64 * 1024;
    CreateHost();
    GrowClass0(host_, 3);
    std::vector<int> fds = {shmx_host_segment(host_)->fd};
    for (uint32_t i = 0; i < 3; i++) fds.push_back(host_->extents[i].fd);
    std::vector<int> seen = ShmxMemfds();
    for (int fd : fds) {
        SCOPED_TRACE("fd " + std::to_string(fd));
        EXPECT_NE(std::find(seen.begin(), seen.end(), fd), seen.end()) << "a host memfd not named shmx:";
        int seals = fcntl(fd, F_GET_SEALS);
        ASSERT_GE(seals, 0);
        EXPECT_EQ(seals & kSealsAll, kSealsAll);
        EXPECT_EQ(seals & F_SEAL_WRITE, 0);
        EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    }
    // Every shmx memfd of this process is one of the host's: none escaped the checks above.
    for (int fd : seen) {
        int seals = fcntl(fd, F_GET_SEALS);
        EXPECT_EQ(seals & kSealsAll, kSealsAll) << "fd " << fd;
        EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "fd " << fd;
    }
    // The guest's side: what it received is close-on-exec too (and sealed, or attach would refuse it).
    std::atomic<int> rc{1};
    shmx_guest_t *g = nullptr;
    std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), kShm, 5 * kSecond, &g); });
    shmx_channel_t *ch = nullptr;
    ASSERT_EQ(shmx_host_accept(host_, 5 * kSecond, &ch), 0);
    t.join();
    ASSERT_EQ(rc.load(), 0);
    std::vector<int> after = ShmxMemfds();
    EXPECT_GT(after.size(), seen.size()) << "the guest holds the segment";
    for (int fd : after) {
        EXPECT_EQ(fcntl(fd, F_GET_SEALS) & kSealsAll, kSealsAll) << "fd " << fd;
        EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "fd " << fd;
    }
    shmx_guest_close(g);
    shmx_channel_free(ch);
}

// S4, named mode: the file is 0600 whatever the umask, of this user, close-on-exec,
// and fully allocated.
TEST_F(SegmentAttackTest, ShouldCreateTheNamedSegmentOfAHostWithMode0600UnderAnyUmask) {
    cfg_.segment_mode = SHMX_SEGMENT_NAMED;
    for (mode_t mask : {0000, 0022, 0077}) {
        SCOPED_TRACE("umask " + std::to_string(mask));
        mode_t old = umask(mask);
        shmx_host_t *h = nullptr;
        int rc = shmx_host_create(name_.c_str(), &cfg_, &h);
        umask(old);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        const shmx_segment_t *seg = shmx_host_segment(h);
        ASSERT_NE(seg->path[0], '\0');
        struct stat st;
        ASSERT_EQ(lstat(seg->path, &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode));
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        EXPECT_EQ(st.st_uid, geteuid());
        EXPECT_EQ(st.st_nlink, 1u);
        EXPECT_EQ((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size) << "every page allocated";
        EXPECT_NE(fcntl(seg->fd, F_GETFD) & FD_CLOEXEC, 0);
        ASSERT_EQ(lstat(shmx_host_socket_path(h), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u) << "the socket too";
        std::string path = seg->path;
        shmx_host_destroy(h);
        EXPECT_NE(access(path.c_str(), F_OK), 0) << "destroy removes the file";
    }
}

}  // namespace
