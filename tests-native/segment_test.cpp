// Segments: creation (seals, cloexec, backing, named files) and attach
// (file checks, ready wait, header validation).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"

namespace {

constexpr int64_t kSecond = 1000000000LL;

class SegmentTest : public ::testing::Test {
  protected:
    void SetUp() override {
        shmx_config_default(&cfg_);
        cfg_.max_channels = 2;
        cfg_.ring_bytes = 4096;
        cfg_.inline_max = 256;
        cfg_.class_count = 2;
        cfg_.class_size[0] = 256;
        cfg_.class_slots[0] = 4;
        cfg_.class_size[1] = 1024;
        cfg_.class_slots[1] = 2;
        cfg_.class_size[2] = 0;
        cfg_.class_slots[2] = 0;
        cfg_.max_payload = 1024;
        label_ = "segtest-" + std::to_string(getpid());
    }

    void TearDown() override {
        for (const std::string &p : cleanup_) unlink(p.c_str());
    }

    // A fresh file under /dev/shm with @mode (removed after the test).
    int TmpfsFile(mode_t mode) {
        std::string path = "/dev/shm/shmx-test-" + std::to_string(getpid()) + "-" + std::to_string(cleanup_.size());
        unlink(path.c_str());
        int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) fchmod(fd, mode);
        cleanup_.push_back(path);
        return fd;
    }

    // Copy @seg's bytes into @fd (sized to @size, default the segment's) and let @corrupt edit the copy.
    static void CopyInto(int fd, const shmx_segment_t &seg, uint64_t size,
                         const std::function<void(shmx_segment_header_t *)> &corrupt) {
        ASSERT_EQ(0, ftruncate(fd, (off_t)size));
        void *map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ASSERT_NE(MAP_FAILED, map);
        memcpy(map, seg.base, std::min(size, seg.size));
        if (corrupt) corrupt(static_cast<shmx_segment_header_t *>(map));
        munmap(map, size);
    }

    // A memfd copy of @seg, edited by @corrupt, then sealed like a real one.
    static int SealedCopy(const shmx_segment_t &seg, const std::function<void(shmx_segment_header_t *)> &corrupt,
                          uint64_t size = 0) {
        int fd = memfd_create("shmx-test-copy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        EXPECT_GE(fd, 0);
        CopyInto(fd, seg, size ? size : seg.size, corrupt);
        EXPECT_EQ(0, fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
        return fd;
    }

    static std::string ExpectedNamedPath(const std::string &label) {
        char boot[40] = {0};
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
        if (f != nullptr) {
            if (fgets(boot, sizeof(boot), f) == nullptr) boot[0] = '\0';
            fclose(f);
        }
        return "/dev/shm/shmx-" + std::to_string(geteuid()) + "-" + std::string(boot, 8) + "-" + label;
    }

    // Runs @body in a child process; returns what it wrote to the pipe, or INT32_MIN on a crash.
    static int32_t InChild(const std::function<int32_t()> &body) {
        int p[2];
        if (pipe(p) != 0) return INT32_MIN;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            int32_t v = body();
            if (write(p[1], &v, sizeof(v)) != (ssize_t)sizeof(v)) _exit(2);
            _exit(0);
        }
        close(p[1]);
        int32_t v = INT32_MIN;
        if (read(p[0], &v, sizeof(v)) != (ssize_t)sizeof(v)) v = INT32_MIN;
        close(p[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return INT32_MIN;
        return v;
    }

    shmx_config_t cfg_;
    std::string label_;
    std::vector<std::string> cleanup_;
};

TEST_F(SegmentTest, ShouldSealTheMemfdAndSetCloseOnExec) {
    shmx_segment_t seg;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &seg));
    int seals = fcntl(seg.fd, F_GET_SEALS);
    ASSERT_GE(seals, 0);
    EXPECT_EQ(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    EXPECT_EQ(0, seals & F_SEAL_WRITE) << "guests must be able to write their rings";
    EXPECT_TRUE(fcntl(seg.fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(-1, fcntl(seg.fd, F_ADD_SEALS, F_SEAL_WRITE)) << "F_SEAL_SEAL forbids further seals";
    EXPECT_EQ(seg.size, shmx_config_segment_bytes(&cfg_));
    EXPECT_EQ(1, seg.owner);
    shmx_segment_close(&seg);
}

TEST_F(SegmentTest, ShouldRefuseShrinkAndGrowAlsoThroughAProcReopen) {
    shmx_segment_t seg;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &seg));
    std::string proc = "/proc/self/fd/" + std::to_string(seg.fd);
    int again = open(proc.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(again, 0);
    for (int fd : {seg.fd, again}) {
        SCOPED_TRACE(fd == seg.fd ? "original fd" : "reopened through /proc");
        errno = 0;
        EXPECT_EQ(-1, ftruncate(fd, (off_t)(seg.size / 2)));
        EXPECT_EQ(EPERM, errno);
        errno = 0;
        EXPECT_EQ(-1, ftruncate(fd, (off_t)(seg.size * 2)));
        EXPECT_EQ(EPERM, errno);
        errno = 0;
        EXPECT_EQ(-1, fallocate(fd, 0, 0, (off_t)(seg.size + 4096)));
        EXPECT_EQ(EPERM, errno);
        struct stat st;
        ASSERT_EQ(0, fstat(fd, &st));
        EXPECT_EQ((off_t)seg.size, st.st_size);
    }
    close(again);
    // The host's mapping is still whole: touching its last byte does not fault.
    seg.base[seg.size - 1] = 1;
    EXPECT_EQ(1, seg.base[seg.size - 1]);
    shmx_segment_close(&seg);
}

TEST_F(SegmentTest, ShouldWriteEveryHeaderField) {
    shmx_segment_t seg;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &seg));
    shmx_layout_t lay;
    ASSERT_EQ(0, shmx_layout_compute(&cfg_, &lay));
    const shmx_segment_header_t *h = reinterpret_cast<const shmx_segment_header_t *>(seg.base);
    EXPECT_EQ(SHMX_SEGMENT_MAGIC, h->magic);
    EXPECT_EQ(SHMX_LAYOUT_VERSION, h->layout_version);
    EXPECT_EQ(SHMX_HEADER_BYTES, h->header_bytes);
    EXPECT_EQ(lay.total_bytes, h->total_bytes);
    EXPECT_EQ(SHMX_READY_MAGIC, __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE));
    EXPECT_EQ(0, memcmp(&cfg_, &h->config, sizeof(cfg_)));
    EXPECT_EQ(lay.channels_offset, h->channels_offset);
    EXPECT_EQ(lay.channel_stride, h->channel_stride);
    EXPECT_EQ(lay.pool_offset, h->pool_offset);
    for (uint32_t c = 0; c < SHMX_MAX_CLASSES; c++) {
        EXPECT_EQ(lay.class_meta_offset[c], h->class_meta_offset[c]);
        EXPECT_EQ(lay.class_data_offset[c], h->class_data_offset[c]);
    }
    EXPECT_EQ(0, memcmp(&lay, &seg.layout, sizeof(lay)));
    shmx_segment_close(&seg);
}

TEST_F(SegmentTest, ShouldStartWithAnEmptyExtentTable) {
    shmx_segment_t seg;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &seg));
    const shmx_segment_header_t *h = reinterpret_cast<const shmx_segment_header_t *>(seg.base);
    EXPECT_EQ(0u, __atomic_load_n(&h->extent_count, __ATOMIC_ACQUIRE));
    const uint8_t *table = reinterpret_cast<const uint8_t *>(h->extents);
    for (size_t i = 0; i < sizeof(h->extents); i++) ASSERT_EQ(0, table[i]) << "byte " << i;
    shmx_segment_close(&seg);
}

TEST_F(SegmentTest, ShouldAttachWhateverAPeerWroteIntoTheExtentTable) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    // The table is a hint that changes while the host runs: attach neither copies nor checks it.
    int fd = SealedCopy(host, [](shmx_segment_header_t *h) {
        __atomic_store_n(&h->extent_count, 0xFFFFFFFFu, __ATOMIC_RELEASE);
        memset(h->extents, 0xA5, sizeof(h->extents));
    });
    ASSERT_EQ(0, shmx_segment_attach_fd(fd, kSecond, &guest));
    EXPECT_EQ(0, memcmp(&host.layout, &guest.layout, sizeof(host.layout)));
    shmx_segment_close(&guest);
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldFormatFreeChannelsOpenRingsAndAFullPool) {
    shmx_segment_t seg;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &seg));
    for (uint32_t i = 0; i < cfg_.max_channels; i++) {
        shmx_channel_ctl_t *ch = shmx_segment_channel(&seg, i);
        ASSERT_NE(nullptr, ch);
        EXPECT_EQ(reinterpret_cast<uint8_t *>(ch), seg.base + seg.layout.channels_offset + i * seg.layout.channel_stride);
        EXPECT_EQ(uint32_t{SHMX_CHANNEL_FREE}, __atomic_load_n(&ch->state, __ATOMIC_ACQUIRE));
        EXPECT_EQ(0u, __atomic_load_n(&ch->epoch, __ATOMIC_ACQUIRE));
        for (int r = 0; r < 2; r++) {
            shmx_ring_ctl_t *rc = shmx_segment_ring_ctl(&seg, i, r);
            ASSERT_NE(nullptr, rc);
            EXPECT_EQ(reinterpret_cast<uint8_t *>(ch) + SHMX_CHANNEL_RING_CTL_OFFSET(r), reinterpret_cast<uint8_t *>(rc));
            EXPECT_EQ(__atomic_load_n(&rc->tail, __ATOMIC_ACQUIRE), __atomic_load_n(&rc->head, __ATOMIC_ACQUIRE));
            EXPECT_EQ(0u, __atomic_load_n(&rc->closed, __ATOMIC_ACQUIRE));
            EXPECT_EQ(reinterpret_cast<uint8_t *>(ch) + SHMX_CHANNEL_RING_DATA_OFFSET(r, cfg_.ring_bytes),
                      shmx_segment_ring_data(&seg, i, r));
        }
    }
    EXPECT_EQ(nullptr, shmx_segment_channel(&seg, cfg_.max_channels));
    EXPECT_EQ(nullptr, shmx_segment_ring_ctl(&seg, 0, 2));
    EXPECT_EQ(nullptr, shmx_segment_ring_data(&seg, cfg_.max_channels, 0));

    shmx_pool_t pool;
    shmx_pool_init(&pool, seg.base, &seg.layout, &seg.config, 0);
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool, &st);
    for (uint32_t c = 0; c < cfg_.class_count; c++) {
        EXPECT_EQ(cfg_.class_slots[c], st.free_slots[c]);
        EXPECT_EQ(0u, st.claimed_slots[c] + st.sent_slots[c]);
    }
    shmx_segment_close(&seg);
}

TEST_F(SegmentTest, ShouldRejectBadLabelsAndConfigs) {
    shmx_segment_t seg;
    for (const char *bad : {"", "a/b", "a b", "..\n", "\xc3\xa9"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(-SHMX_EINVAL, shmx_segment_create(&cfg_, bad, &seg));
    }
    EXPECT_EQ(-SHMX_EINVAL, shmx_segment_create(&cfg_, nullptr, &seg));
    EXPECT_EQ(-SHMX_EINVAL, shmx_segment_create(&cfg_, std::string(65, 'a').c_str(), &seg));
    ASSERT_EQ(0, shmx_segment_create(&cfg_, std::string(64, 'a').c_str(), &seg));
    shmx_segment_close(&seg);
    ASSERT_EQ(0, shmx_segment_create(&cfg_, "Az09._-", &seg));
    shmx_segment_close(&seg);

    shmx_config_t bad = cfg_;
    bad.ring_bytes = 5000;
    EXPECT_EQ(-SHMX_ECONFIG, shmx_segment_create(&bad, label_.c_str(), &seg));
    shmx_segment_close(&seg);  // harmless after a failure
}

TEST_F(SegmentTest, ShouldAttachADuplicateFdWithTheSameConfigAndLayout) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    ASSERT_EQ(0, shmx_segment_attach_fd(dup(host.fd), kSecond, &guest));
    EXPECT_EQ(0, memcmp(&host.config, &guest.config, sizeof(host.config)));
    EXPECT_EQ(0, memcmp(&host.layout, &guest.layout, sizeof(host.layout)));
    EXPECT_EQ(host.size, guest.size);
    EXPECT_EQ(0, guest.owner);
    EXPECT_EQ(uint32_t{SHMX_SEGMENT_MEMFD}, guest.mode);
    shmx_segment_close(&guest);
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldShareMemoryThroughASecondMappingAtAnotherAddress) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    ASSERT_EQ(0, shmx_segment_attach_fd(dup(host.fd), kSecond, &guest));
    ASSERT_NE(host.base, guest.base);
    uint8_t *hd = shmx_segment_ring_data(&host, 1, SHMX_RING_GUEST_TO_HOST);
    uint8_t *gd = shmx_segment_ring_data(&guest, 1, SHMX_RING_GUEST_TO_HOST);
    EXPECT_EQ(hd - host.base, gd - guest.base);
    memcpy(gd, "through the guest", 18);
    EXPECT_STREQ("through the guest", reinterpret_cast<const char *>(hd));
    __atomic_store_n(&shmx_segment_channel(&host, 0)->epoch, 7u, __ATOMIC_RELEASE);
    EXPECT_EQ(7u, __atomic_load_n(&shmx_segment_channel(&guest, 0)->epoch, __ATOMIC_ACQUIRE));
    shmx_segment_close(&guest);
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldRejectEveryCorruptedHeaderField) {
    shmx_segment_t host;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    struct Case {
        const char *name;
        std::function<void(shmx_segment_header_t *)> corrupt;
    };
    const std::vector<Case> cases = {
        {"magic", [](shmx_segment_header_t *h) { h->magic ^= 1; }},
        {"layout_version", [](shmx_segment_header_t *h) { h->layout_version = SHMX_LAYOUT_VERSION + 1; }},
        {"header_bytes", [](shmx_segment_header_t *h) { h->header_bytes = 8192; }},
        {"total_bytes larger", [](shmx_segment_header_t *h) { h->total_bytes += 4096; }},
        {"total_bytes smaller", [](shmx_segment_header_t *h) { h->total_bytes -= 4096; }},
        {"config invalid", [](shmx_segment_header_t *h) { h->config.ring_bytes = 4097; }},
        {"config valid but another layout", [](shmx_segment_header_t *h) { h->config.max_channels = 1; }},
        {"config with an unknown mode", [](shmx_segment_header_t *h) { h->config.segment_mode = 9; }},
        {"channels_offset", [](shmx_segment_header_t *h) { h->channels_offset = 0; }},
        {"channel_stride", [](shmx_segment_header_t *h) { h->channel_stride -= 64; }},
        {"pool_offset", [](shmx_segment_header_t *h) { h->pool_offset = 64; }},
        {"class_meta_offset", [](shmx_segment_header_t *h) { h->class_meta_offset[1] += 4096; }},
        {"class_data_offset", [](shmx_segment_header_t *h) { h->class_data_offset[0] = ~0ull; }},
        {"unused class offset", [](shmx_segment_header_t *h) { h->class_data_offset[SHMX_MAX_CLASSES - 1] = 4096; }},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        shmx_segment_t guest;
        EXPECT_EQ(-SHMX_EHEADER, shmx_segment_attach_fd(SealedCopy(host, c.corrupt), kSecond, &guest));
        EXPECT_EQ(nullptr, guest.base);
        EXPECT_EQ(-1, guest.fd);
    }
    // An intact sealed copy attaches: the cases above fail for their field alone.
    shmx_segment_t guest;
    EXPECT_EQ(0, shmx_segment_attach_fd(SealedCopy(host, nullptr), kSecond, &guest));
    shmx_segment_close(&guest);
    // A file longer than the header says.
    EXPECT_EQ(-SHMX_EHEADER, shmx_segment_attach_fd(SealedCopy(host, nullptr, host.size + 4096), kSecond, &guest));
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldRejectAMemfdWithoutAllSeals) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    for (int seals : {0, F_SEAL_SHRINK | F_SEAL_GROW, F_SEAL_SHRINK | F_SEAL_SEAL, F_SEAL_GROW | F_SEAL_SEAL}) {
        SCOPED_TRACE(seals);
        int fd = memfd_create("shmx-test-unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ASSERT_GE(fd, 0);
        CopyInto(fd, host, host.size, nullptr);
        if (seals != 0) {
            ASSERT_EQ(0, fcntl(fd, F_ADD_SEALS, seals));
        }
        EXPECT_EQ(-SHMX_ESEALS, shmx_segment_attach_fd(fd, kSecond, &guest));
    }
    // A memfd created without MFD_ALLOW_SEALING can never be sealed.
    int fd = memfd_create("shmx-test-unsealable", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    CopyInto(fd, host, host.size, nullptr);
    EXPECT_EQ(-SHMX_ESEALS, shmx_segment_attach_fd(fd, kSecond, &guest));
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldRequireAPrivateFileOfThisUserWhenUnsealed) {
    shmx_config_t named = cfg_;
    named.segment_mode = SHMX_SEGMENT_NAMED;
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&named, label_.c_str(), &host));

    int fd = TmpfsFile(0600);
    ASSERT_GE(fd, 0);
    CopyInto(fd, host, host.size, nullptr);
    ASSERT_EQ(0, shmx_segment_attach_fd(dup(fd), kSecond, &guest)) << "a 0600 file of ours is fine";
    EXPECT_EQ(uint32_t{SHMX_SEGMENT_NAMED}, guest.mode);
    shmx_segment_close(&guest);

    for (mode_t mode : {0644, 0640, 0604, 0660, 0700 | 0002}) {
        SCOPED_TRACE(mode);
        ASSERT_EQ(0, fchmod(fd, mode));
        EXPECT_EQ(-SHMX_EPERMS, shmx_segment_attach_fd(dup(fd), kSecond, &guest));
    }
    ASSERT_EQ(0, fchmod(fd, 0600));
    if (geteuid() == 0) {
        ASSERT_EQ(0, fchown(fd, 12345, (gid_t)-1));
        EXPECT_EQ(-SHMX_EPERMS, shmx_segment_attach_fd(dup(fd), kSecond, &guest)) << "owned by another user";
    }
    close(fd);
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldRefuseAMemfdModeSegmentInAnUnsealedFile) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    int fd = TmpfsFile(0600);
    ASSERT_GE(fd, 0);
    CopyInto(fd, host, host.size, nullptr);
    EXPECT_EQ(-SHMX_ESEALS, shmx_segment_attach_fd(fd, kSecond, &guest));
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldRejectFilesThatAreNotSegments) {
    shmx_segment_t guest;
    int p[2];
    ASSERT_EQ(0, pipe(p));
    close(p[1]);
    EXPECT_EQ(-SHMX_EPERMS, shmx_segment_attach_fd(p[0], kSecond, &guest)) << "a pipe";

    int fd = TmpfsFile(0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, ftruncate(fd, SHMX_HEADER_BYTES - 1));
    EXPECT_EQ(-SHMX_EHEADER, shmx_segment_attach_fd(fd, kSecond, &guest)) << "shorter than a header";

    fd = TmpfsFile(0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, ftruncate(fd, 4 * SHMX_HEADER_BYTES));
    EXPECT_EQ(-SHMX_ENOTREADY, shmx_segment_attach_fd(fd, 0, &guest)) << "zeros are never ready";

    EXPECT_EQ(-EBADF, shmx_segment_attach_fd(-1, kSecond, &guest));
}

TEST_F(SegmentTest, ShouldGiveUpOnASegmentThatNeverBecomesReady) {
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    int fd = SealedCopy(host, [](shmx_segment_header_t *h) { __atomic_store_n(&h->ready, 0u, __ATOMIC_RELEASE); });
    EXPECT_EQ(-SHMX_ENOTREADY, shmx_segment_attach_fd(fd, 20 * 1000 * 1000, &guest));
    fd = SealedCopy(host, [](shmx_segment_header_t *h) { __atomic_store_n(&h->ready, 0x12345678u, __ATOMIC_RELEASE); });
    EXPECT_EQ(-SHMX_ENOTREADY, shmx_segment_attach_fd(fd, 0, &guest)) << "only the exact magic counts";
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldWakeAnAttacherSleepingOnReady) {
    shmx_segment_t host;
    ASSERT_EQ(0, shmx_segment_create(&cfg_, label_.c_str(), &host));
    int fd = SealedCopy(host, [](shmx_segment_header_t *h) { __atomic_store_n(&h->ready, 0u, __ATOMIC_RELEASE); });
    auto *hdr = static_cast<shmx_segment_header_t *>(
        mmap(nullptr, SHMX_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ASSERT_NE(MAP_FAILED, static_cast<void *>(hdr));

    int rc = 1;
    shmx_segment_t guest;
    std::thread attacher([&] { rc = shmx_segment_attach_fd(dup(fd), 30 * kSecond, &guest); });
    usleep(50 * 1000);  // let it reach the futex (the result is the same if it has not)
    __atomic_store_n(&hdr->ready, SHMX_READY_MAGIC, __ATOMIC_RELEASE);
    shmx_futex_wake(&hdr->ready, INT32_MAX);
    attacher.join();
    EXPECT_EQ(0, rc);
    if (rc == 0) {
        shmx_segment_close(&guest);
    }
    munmap(hdr, SHMX_HEADER_BYTES);
    close(fd);
    shmx_segment_close(&host);
}

TEST_F(SegmentTest, ShouldCreateANamedFileOfMode0600AtThePerUserPerBootPath) {
    shmx_config_t named = cfg_;
    named.segment_mode = SHMX_SEGMENT_NAMED;
    mode_t old = umask(0);  // the mode must not depend on the caller's umask
    shmx_segment_t seg;
    int rc = shmx_segment_create(&named, label_.c_str(), &seg);
    umask(old);
    ASSERT_EQ(0, rc);
    std::string path = ExpectedNamedPath(label_);
    cleanup_.push_back(path);
    EXPECT_EQ(path, seg.path);
    struct stat st;
    ASSERT_EQ(0, lstat(path.c_str(), &st));
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(0600u, st.st_mode & 07777);
    EXPECT_EQ(geteuid(), st.st_uid);
    EXPECT_EQ((off_t)seg.size, st.st_size);
    EXPECT_TRUE(fcntl(seg.fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(st.st_size, (off_t)(st.st_blocks * 512)) << "every page is allocated";
    shmx_segment_close(&seg);
    EXPECT_NE(0, access(path.c_str(), F_OK)) << "close unlinks the owner's file";
}

TEST_F(SegmentTest, ShouldRefuseAnExistingNameAndLeaveItAlone) {
    shmx_config_t named = cfg_;
    named.segment_mode = SHMX_SEGMENT_NAMED;
    shmx_segment_t first, second;
    ASSERT_EQ(0, shmx_segment_create(&named, label_.c_str(), &first));
    cleanup_.push_back(first.path);
    EXPECT_EQ(-EEXIST, shmx_segment_create(&named, label_.c_str(), &second));
    EXPECT_EQ(0, access(first.path, F_OK)) << "the failed create must not remove the existing file";
    shmx_segment_close(&first);

    // A symlink planted at the name is refused, not followed.
    std::string path = ExpectedNamedPath(label_);
    std::string target = "/dev/shm/shmx-test-target-" + std::to_string(getpid());
    cleanup_.push_back(target);
    ASSERT_EQ(0, symlink(target.c_str(), path.c_str()));
    EXPECT_EQ(-EEXIST, shmx_segment_create(&named, label_.c_str(), &second));
    EXPECT_NE(0, access(target.c_str(), F_OK)) << "nothing was created through the link";
    unlink(path.c_str());
}

TEST_F(SegmentTest, ShouldAttachANamedSegmentByPath) {
    shmx_config_t named = cfg_;
    named.segment_mode = SHMX_SEGMENT_NAMED;
    shmx_segment_t host, guest;
    ASSERT_EQ(0, shmx_segment_create(&named, label_.c_str(), &host));
    cleanup_.push_back(host.path);
    ASSERT_EQ(0, shmx_segment_attach_path(host.path, kSecond, &guest));
    EXPECT_EQ(0, memcmp(&host.layout, &guest.layout, sizeof(host.layout)));
    EXPECT_EQ(uint32_t{SHMX_SEGMENT_NAMED}, guest.mode);
    EXPECT_EQ(0, guest.owner);
    memcpy(shmx_segment_ring_data(&guest, 0, 0), "named", 6);
    EXPECT_STREQ("named", reinterpret_cast<const char *>(shmx_segment_ring_data(&host, 0, 0)));
    shmx_segment_close(&guest);
    EXPECT_EQ(0, access(host.path, F_OK)) << "a guest's close leaves the file";

    std::string link = "/dev/shm/shmx-test-link-" + std::to_string(getpid());
    cleanup_.push_back(link);
    ASSERT_EQ(0, symlink(host.path, link.c_str()));
    EXPECT_EQ(-ELOOP, shmx_segment_attach_path(link.c_str(), kSecond, &guest));

    ASSERT_EQ(0, chmod(host.path, 0644));
    EXPECT_EQ(-SHMX_EPERMS, shmx_segment_attach_path(host.path, kSecond, &guest));
    shmx_segment_close(&host);
    EXPECT_EQ(-ENOENT, shmx_segment_attach_path(ExpectedNamedPath(label_).c_str(), kSecond, &guest));
}

TEST_F(SegmentTest, ShouldRefuseASegmentLargerThanMemoryUpFront) {
    shmx_config_t huge = cfg_;
    huge.class_count = 1;
    huge.class_size[0] = 1u << 30;
    huge.class_slots[0] = 1000;  // ~1000 GiB, under the 1 TiB limit
    huge.max_payload = 1024;
    huge.window_bytes = 1u << 30;
    huge.pool_max_bytes = 1000ull << 30;
    uint64_t bytes = shmx_config_segment_bytes(&huge);
    ASSERT_GT(bytes, 0u);
    struct sysinfo si;
    ASSERT_EQ(0, sysinfo(&si));
    if ((uint64_t)(si.totalram + si.totalswap) * si.mem_unit >= bytes)
        GTEST_SKIP() << "this machine could hold the segment; the test must not fill its memory";
    shmx_segment_t seg;
    EXPECT_EQ(-ENOMEM, shmx_segment_create(&huge, label_.c_str(), &seg));
    EXPECT_EQ(nullptr, seg.base);
}

TEST_F(SegmentTest, ShouldReportNoSpaceOnATinyTmpfs) {
    shmx_config_t named;
    shmx_config_default(&named);  // about 11 MiB, on a 256 KiB tmpfs
    named.segment_mode = SHMX_SEGMENT_NAMED;
    std::string label = label_;
    constexpr int32_t kSkip = INT32_MIN + 1;
    int32_t rc = InChild([&]() -> int32_t {
        uid_t uid = geteuid();
        gid_t gid = getegid();
        if (unshare(uid == 0 ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS) != 0) return kSkip;
        if (uid != 0) {
            // Map ourselves so that files we create keep our uid.
            char map[64];
            int fd = open("/proc/self/setgroups", O_WRONLY);
            if (fd >= 0) {
                if (write(fd, "deny", 4) != 4) return kSkip;
                close(fd);
            }
            snprintf(map, sizeof(map), "%u %u 1", uid, uid);
            fd = open("/proc/self/uid_map", O_WRONLY);
            if (fd < 0 || write(fd, map, strlen(map)) < 0) return kSkip;
            close(fd);
            snprintf(map, sizeof(map), "%u %u 1", gid, gid);
            fd = open("/proc/self/gid_map", O_WRONLY);
            if (fd < 0 || write(fd, map, strlen(map)) < 0) return kSkip;
            close(fd);
        }
        // Private first, so the tiny tmpfs never shows up outside this child.
        if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return kSkip;
        if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=256k,mode=1777") != 0) return kSkip;
        shmx_segment_t seg;
        int r = shmx_segment_create(&named, label.c_str(), &seg);
        if (r == 0) shmx_segment_close(&seg);
        return r;
    });
    if (rc == kSkip) GTEST_SKIP() << "no mount namespace to mount a tiny tmpfs in";
    EXPECT_EQ(-ENOSPC, rc);
}

TEST_F(SegmentTest, ShouldReportTooBigUnderAFileSizeLimit) {
    int32_t rc = InChild([&]() -> int32_t {
        signal(SIGXFSZ, SIG_IGN);  // the error code, not the signal, is what we check
        struct rlimit lim = {1024 * 1024, 1024 * 1024};
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return INT32_MIN + 1;
        shmx_config_t big;
        shmx_config_default(&big);  // about 11 MiB
        shmx_segment_t seg;
        int r = shmx_segment_create(&big, label_.c_str(), &seg);
        if (r == 0) shmx_segment_close(&seg);
        return r;
    });
    EXPECT_EQ(-EFBIG, rc);
}

}  // namespace
