// Pool extents between a real host and real guests (native/host_service.c,
// native/extent.c, native/guest.c): the host grows its pool when a class is
// empty, a guest process asks it to, the bytes written in an extent slot by
// one side are read by the other, growth stops at pool_max_bytes, guests that
// come later get every extent, a dead guest's extent slots come back, and
// forged requests or announcements hurt nobody.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

extern "C" {
#include "doorbell.h"
}

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;
constexpr uint32_t kHost = SHMX_OWNER_HOST;
constexpr uint32_t kSmall = 4096;   // class 0: 2 slots in the segment, 4 per extent
constexpr uint32_t kLarge = 65536;  // class 1: 1 slot in the segment, 1 per extent
constexpr uint64_t kSegmentPool = 2 * kSmall + kLarge;

uint8_t PatternByte(uint32_t k, uint32_t seed) { return static_cast<uint8_t>(k * 7u + seed * 13u + (k >> 9)); }

void Fill(void *data, uint32_t size, uint32_t seed) {
    uint8_t *p = static_cast<uint8_t *>(data);
    for (uint32_t k = 0; k < size; k++) p[k] = PatternByte(k, seed);
}

bool Check(const void *data, uint32_t size, uint32_t seed) {
    const uint8_t *p = static_cast<const uint8_t *>(data);
    for (uint32_t k = 0; k < size; k++)
        if (p[k] != PatternByte(k, seed)) return false;
    return true;
}

uint32_t SeedOf(const shmx_slot_ref_t &r) { return r.cls * 1000u + r.index * 3u + r.generation; }

// Whole-struct pipe messages between a test and its child.
template <typename T>
bool Put(int fd, const T &v) {
    return write(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v);
}

template <typename T>
bool Get(int fd, T *v) {
    size_t got = 0;
    while (got < sizeof *v) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20000) != 1) return false;
        ssize_t n = read(fd, reinterpret_cast<char *>(v) + got, sizeof *v - got);
        if (n <= 0) return false;
        got += static_cast<size_t>(n);
    }
    return true;
}

int CountOpenFds() {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d) != nullptr) n++;
    closedir(d);
    return n;
}


class ExtentTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        static std::atomic<int> counter{0};
        name_ = "ext-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 4;
        cfg_.ring_bytes = 4096;
        cfg_.inline_max = 256;
        cfg_.class_count = 2;
        cfg_.class_size[0] = kSmall;
        cfg_.class_slots[0] = 2;
        cfg_.class_size[1] = kLarge;
        cfg_.class_slots[1] = 1;
        cfg_.class_size[2] = 0;
        cfg_.class_slots[2] = 0;
        cfg_.max_payload = kLarge;
        cfg_.max_message = kLarge;
        cfg_.window_bytes = kLarge;
        cfg_.extent_bytes = 4 * kSmall;
        cfg_.pool_max_bytes = kSegmentPool + 8 * kSmall + 2 * kLarge;  // room for 2 small and 2 large extents
    }

    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        shmx_host_destroy(host_);
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        pool_ = shmx_host_pool(host_);
    }

    shmx_channel_t *Accept() {
        shmx_channel_t *ch = nullptr;
        int rc = shmx_host_accept(host_, 10 * kSecond, &ch);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        return ch;
    }

    // An in-process guest (its own mapping, its own pool view) and the host's side of its channel.
    shmx_guest_t *ConnectGuest(shmx_channel_t **host_side) {
        std::atomic<int> rc{1};
        shmx_guest_t *g = nullptr;
        std::thread t([&] { rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g); });
        *host_side = Accept();
        t.join();
        EXPECT_EQ(rc.load(), 0) << shmx_strerror(rc.load());
        if (g) guests_.push_back(g);
        return g;
    }

    static shmx_pool_t *GuestPool(shmx_guest_t *g) { return shmx_guest_channel(g)->pool; }
    static uint32_t GuestOwner(shmx_guest_t *g) { return shmx_guest_channel(g)->self_owner; }

    // Allocate from the host's pool as the host and fill the slot with its pattern.
    shmx_slot_ref_t HostAlloc(uint32_t size, int64_t timeout_ns = 0) {
        shmx_slot_ref_t ref{};
        int rc = shmx_pool_alloc(pool_, size, kHost, shmx_deadline(timeout_ns), &kIdle, &ref);
        EXPECT_EQ(rc, 0) << shmx_strerror(rc);
        void *data;
        uint32_t got;
        if (rc == 0 && shmx_pool_resolve(pool_, &ref, SHMX_SLOT_CLAIMED, kHost, &data, &got) == 0)
            Fill(data, got, SeedOf(ref));
        return ref;
    }

    uint32_t HeaderExtentCount() {
        const shmx_segment_header_t *h = reinterpret_cast<const shmx_segment_header_t *>(shmx_host_segment(host_)->base);
        return __atomic_load_n(&h->extent_count, __ATOMIC_ACQUIRE);
    }

    // Every slot the host knows is FREE and on a list, and the counts match the totals.
    void ExpectPoolAllFree() {
        shmx_pool_stats_t st;
        shmx_pool_stats(pool_, &st);
        for (uint32_t c = 0; c < st.class_count; c++) {
            EXPECT_EQ(st.free_slots[c], st.total_slots[c]) << "class " << c;
            EXPECT_EQ(st.claimed_slots[c] + st.sent_slots[c], 0u) << "class " << c;
            EXPECT_EQ(st.total_slots[c], shmx_pool_class_end(pool_, c)) << "class " << c;
        }
    }

    // Wait (bounded) until @pred holds.
    static bool Eventually(const std::function<bool()> &pred) {
        for (int i = 0; i < 500; i++) {
            if (pred()) return true;
            usleep(10 * 1000);
        }
        return pred();
    }

    static constexpr shmx_idle_t kIdle = {100, 10};
    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    shmx_pool_t *pool_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::string name_;
    PrivateRuntimeDir runtime_; /* made before SetUp, removed after TearDown */
};

TEST_F(ExtentTest, ShouldGrowTheHostsPoolBySealedExtentsWhenAClassIsEmpty) {
    CreateHost();
    const uint64_t segment = shmx_host_mapped_bytes(host_);
    std::vector<shmx_slot_ref_t> refs = {HostAlloc(kSmall), HostAlloc(kSmall), HostAlloc(kSmall)};
    EXPECT_EQ(1u, refs[2].cls) << "the fallback to the larger class comes first";
    EXPECT_EQ(0u, shmx_host_extent_count(host_));

    refs.push_back(HostAlloc(kSmall));  // every fitting class empty: the host grows class 0 on the spot
    EXPECT_EQ(0u, refs[3].cls);
    EXPECT_EQ(2u, refs[3].index) << "extent slots continue the class's indexes";
    ASSERT_EQ(1u, shmx_host_extent_count(host_));

    shmx_host_t *h = host_;
    const shmx_extent_t &e = h->extents[0];
    shmx_extent_layout_t lay;
    ASSERT_EQ(0, shmx_extent_layout(kSmall, 4, &lay));
    EXPECT_EQ(lay.total_bytes, e.bytes);
    EXPECT_EQ(segment + e.bytes, shmx_host_mapped_bytes(host_));
    EXPECT_EQ(shmx_host_segment(host_)->size, segment) << "the segment itself never changes";

    // Sealed before its fd could leave the host; close-on-exec; shrinking and growing refused.
    int seals = fcntl(e.fd, F_GET_SEALS);
    EXPECT_EQ(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    EXPECT_TRUE(fcntl(e.fd, F_GETFD) & FD_CLOEXEC);
    EXPECT_NE(0, ftruncate(e.fd, 4096));
    EXPECT_EQ(EPERM, errno);
    EXPECT_NE(0, ftruncate(e.fd, (off_t)e.bytes * 2));

    // Announced in the header.
    ASSERT_EQ(1u, HeaderExtentCount());
    const shmx_segment_header_t *hdr = reinterpret_cast<const shmx_segment_header_t *>(shmx_host_segment(host_)->base);
    EXPECT_EQ(0u, hdr->extents[0].cls);
    EXPECT_EQ(2u, hdr->extents[0].first_index);
    EXPECT_EQ(4u, hdr->extents[0].slot_count);
    EXPECT_EQ(e.bytes, hdr->extents[0].bytes);
    void *base;
    size_t len;
    ASSERT_EQ(0, shmx_pool_region(pool_, 0, &base, &len));
    EXPECT_EQ(e.base, base);
    EXPECT_EQ(e.bytes, len);

    // The slot holds what was written into it, and frees like any other.
    void *data;
    uint32_t size;
    ASSERT_EQ(0, shmx_pool_resolve(pool_, &refs[3], SHMX_SLOT_CLAIMED, kHost, &data, &size));
    EXPECT_EQ(e.base + lay.data_offset, data);
    EXPECT_TRUE(Check(data, size, SeedOf(refs[3])));
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(pool_, &r, kHost));
    ExpectPoolAllFree();
    shmx_pool_stats_t st;
    shmx_pool_stats(pool_, &st);
    EXPECT_EQ(6u, st.total_slots[0]);
}

TEST_F(ExtentTest, ShouldStopGrowingAtPoolMaxAndMakeAllocationsWaitForAFree) {
    cfg_.pool_max_bytes = kSegmentPool + 4 * kSmall + kSmall - 64;  // one extent of class 0, not one slot more
    CreateHost();
    std::vector<shmx_slot_ref_t> refs;
    for (int i = 0; i < 7; i++) refs.push_back(HostAlloc(kSmall));  // 2 + 1 (fallback) + 4 (extent)
    EXPECT_EQ(1u, shmx_host_extent_count(host_));
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_EWOULDBLOCK, shmx_pool_alloc(pool_, kSmall, kHost, shmx_deadline(20 * kMs), &kIdle, &ref))
        << "at the cap: backpressure, not growth";
    EXPECT_EQ(1u, shmx_host_extent_count(host_));
    EXPECT_EQ(-SHMX_EWOULDBLOCK, shmx_pool_alloc(pool_, kLarge, kHost, shmx_deadline(0), &kIdle, &ref))
        << "a 64 KiB extent would pass the cap too";
    EXPECT_EQ(1u, shmx_host_extent_count(host_));

    std::atomic<int> rc{1};
    shmx_slot_ref_t got{};
    const shmx_idle_t sleep_at_once = {0, 0};
    std::thread waiter([&] { rc = shmx_pool_alloc(pool_, kSmall, 2, shmx_deadline(30 * kSecond), &sleep_at_once, &got); });
    usleep(20 * 1000);
    ASSERT_EQ(0, shmx_pool_free(pool_, &refs[5], kHost));
    waiter.join();
    ASSERT_EQ(0, rc.load()) << "the freed extent slot went to the waiter";
    EXPECT_EQ(refs[5].index, got.index);
    ASSERT_EQ(0, shmx_pool_free(pool_, &got, 2));
    refs.erase(refs.begin() + 5);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(pool_, &r, kHost));
    ExpectPoolAllFree();
    EXPECT_EQ(1u, shmx_host_extent_count(host_));
}

// The guest process exhausts the pool and allocates more: its grow request makes the
// host's service thread add an extent. It writes extent slots and sends them to the host,
// which checks every byte; then the host grows another class and sends the guest slots the
// guest has never seen, which it maps on first reference and checks.
TEST_F(ExtentTest, ShouldLetAGuestProcessGrowThePoolAndShareExtentBytesBothWays) {
    CreateHost();
    // The host holds the large slot, so that the guest's small allocations have no larger
    // class to fall back to: its third one finds every fitting class empty.
    shmx_slot_ref_t large = HostAlloc(kLarge);
    int to_host[2], to_guest[2];
    ASSERT_EQ(0, pipe(to_host));
    ASSERT_EQ(0, pipe(to_guest));
    constexpr int kFromGuest = 6;  // 2 in the segment, 4 in an extent the guest asks for
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(to_host[0]);
        close(to_guest[1]);
        shmx_guest_t *g = nullptr;
        if (shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) _exit(2);
        shmx_pool_t *pool = GuestPool(g);
        const uint32_t me = GuestOwner(g);
        const uint64_t before = shmx_guest_mapped_bytes(g);
        for (int i = 0; i < kFromGuest; i++) {
            shmx_slot_ref_t ref;
            // Exactly the small class: a fallback to the large slot would not be an extent.
            if (shmx_pool_alloc(pool, kSmall, me, shmx_deadline(10 * kSecond), &kIdle, &ref) != 0) _exit(3);
            void *data;
            uint32_t size;
            if (shmx_pool_resolve(pool, &ref, SHMX_SLOT_CLAIMED, me, &data, &size) != 0) _exit(4);
            Fill(data, size, SeedOf(ref));
            if (shmx_pool_send(pool, &ref, me, kHost) != 0 || !Put(to_host[1], ref)) _exit(5);
        }
        if (!Put(to_host[1], shmx_guest_mapped_bytes(g) - before)) _exit(6);
        shmx_slot_ref_t ref;
        while (Get(to_guest[0], &ref) && ref.cls != UINT32_MAX) {
            void *data;
            uint32_t size;
            if (shmx_pool_resolve(pool, &ref, SHMX_SLOT_SENT, me, &data, &size) != 0) _exit(7);
            if (!Check(data, size, SeedOf(ref))) _exit(8);
            if (shmx_pool_free(pool, &ref, me) != 0) _exit(9);
        }
        if (!Put(to_host[1], shmx_guest_mapped_bytes(g) - before)) _exit(10);
        shmx_guest_close(g);
        _exit(0);
    }
    close(to_host[1]);
    close(to_guest[0]);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    const uint32_t guest = shmx_channel_index(ch);

    // Every slot first (the guest holds them all until then), then every byte of each.
    std::vector<shmx_slot_ref_t> from_guest(kFromGuest);
    for (int i = 0; i < kFromGuest; i++) ASSERT_TRUE(Get(to_host[0], &from_guest[i])) << "guest slot " << i;
    int small_class = 0, in_extent = 0;
    for (const shmx_slot_ref_t &ref : from_guest) {
        void *data;
        uint32_t size;
        ASSERT_EQ(0, shmx_pool_resolve(pool_, &ref, SHMX_SLOT_SENT, kHost, &data, &size)) << ref.index;
        EXPECT_TRUE(Check(data, size, SeedOf(ref))) << "bytes the guest wrote, slot " << ref.index;
        small_class += ref.cls == 0;
        in_extent += ref.index >= cfg_.class_slots[ref.cls];
        ASSERT_EQ(0, shmx_pool_free(pool_, &ref, kHost));
    }
    EXPECT_EQ(kFromGuest, small_class);
    EXPECT_EQ(4, in_extent) << "the guest's request grew class 0 by one extent";
    uint64_t guest_extent_bytes = 0;
    ASSERT_TRUE(Get(to_host[0], &guest_extent_bytes));
    EXPECT_EQ(host_->extents[0].bytes, guest_extent_bytes) << "the guest mapped the extent it used";

    // Class 1 grows from the host's side (its one slot held): an extent the guest never saw.
    shmx_slot_ref_t second = HostAlloc(kLarge);
    EXPECT_EQ(1u, second.cls);
    EXPECT_EQ(1u, second.index);
    ASSERT_EQ(2u, shmx_host_extent_count(host_));
    for (shmx_slot_ref_t ref : {large, second}) {
        ASSERT_EQ(0, shmx_pool_send(pool_, &ref, kHost, guest));
        ASSERT_TRUE(Put(to_guest[1], ref));
    }
    ASSERT_TRUE(Put(to_guest[1], shmx_slot_ref_t{UINT32_MAX, 0, 0, 0}));
    ASSERT_TRUE(Get(to_host[0], &guest_extent_bytes));
    EXPECT_EQ(host_->extents[0].bytes + host_->extents[1].bytes, guest_extent_bytes)
        << "mapped on first reference";
    int status = WaitChild(pid, 30000);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status)) << "the guest failed at step " << WEXITSTATUS(status);
    close(to_host[0]);
    close(to_guest[1]);
    shmx_channel_free(ch);
    ExpectPoolAllFree();
}

TEST_F(ExtentTest, ShouldAnnounceEveryExtentToAGuestThatConnectsLater) {
    CreateHost();
    std::vector<shmx_slot_ref_t> refs;
    for (int i = 0; i < 7; i++) refs.push_back(HostAlloc(kSmall));  // 3 + one extent of class 0
    refs.push_back(HostAlloc(kLarge));                                 // one extent of class 1
    ASSERT_EQ(2u, shmx_host_extent_count(host_));

    shmx_channel_t *ch = nullptr;
    shmx_guest_t *g = ConnectGuest(&ch);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(shmx_host_segment(host_)->size, shmx_guest_mapped_bytes(g)) << "nothing mapped before it is used";
    const uint32_t guest = GuestOwner(g);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_send(pool_, &r, kHost, guest));
    for (const shmx_slot_ref_t &r : refs) {
        void *data;
        uint32_t size;
        ASSERT_EQ(0, shmx_pool_resolve(GuestPool(g), &r, SHMX_SLOT_SENT, guest, &data, &size))
            << r.cls << "/" << r.index;
        EXPECT_TRUE(Check(data, size, SeedOf(r)));
        ASSERT_EQ(0, shmx_pool_free(GuestPool(g), &r, guest));
    }
    EXPECT_EQ(shmx_host_mapped_bytes(host_), shmx_guest_mapped_bytes(g)) << "both extents mapped";
    void *base;
    size_t len;
    EXPECT_EQ(0, shmx_pool_region(GuestPool(g), 1, &base, &len));
    EXPECT_EQ(host_->extents[1].bytes, len);
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_region(GuestPool(g), 2, &base, &len));
    ExpectPoolAllFree();
    shmx_channel_free(ch);
}

TEST_F(ExtentTest, ShouldRefuseAnIndexBeyondEveryAnnouncedExtentWithoutBlocking) {
    CreateHost();
    shmx_channel_t *ch = nullptr;
    shmx_guest_t *g = ConnectGuest(&ch);
    ASSERT_NE(g, nullptr);
    const shmx_slot_ref_t beyond = {0, 1000, 1, 0};
    void *data;
    uint32_t size;
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(GuestPool(g), &beyond, SHMX_SLOT_FREE, SHMX_OWNER_NONE, &data, &size));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(GuestPool(g), &beyond, GuestOwner(g)));
    // A peer claims in the header that extents exist: the guest waits a bounded time for
    // their announcements, then refuses the index all the same.
    shmx_segment_header_t *hdr = reinterpret_cast<shmx_segment_header_t *>(shmx_host_segment(host_)->base);
    __atomic_store_n(&hdr->extent_count, 50u, __ATOMIC_RELEASE);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(GuestPool(g), &beyond, GuestOwner(g), kHost));
    __atomic_store_n(&hdr->extent_count, 0u, __ATOMIC_RELEASE);
    // The guest still grows and maps real extents afterwards.
    std::vector<shmx_slot_ref_t> refs;
    for (int i = 0; i < 4; i++) refs.push_back(HostAlloc(kSmall));
    ASSERT_EQ(1u, shmx_host_extent_count(host_));
    ASSERT_EQ(0, shmx_pool_send(pool_, &refs[3], kHost, GuestOwner(g)));
    EXPECT_EQ(0, shmx_pool_resolve(GuestPool(g), &refs[3], SHMX_SLOT_SENT, GuestOwner(g), &data, &size));
    EXPECT_TRUE(Check(data, size, SeedOf(refs[3])));
    shmx_channel_free(ch);
}

TEST_F(ExtentTest, ShouldReclaimTheExtentSlotsOfAGuestThatDies) {
    CreateHost();
    shmx_slot_ref_t large = HostAlloc(kLarge);  // no larger class to fall back to: class 0 must grow
    int ready[2];
    ASSERT_EQ(0, pipe(ready));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        shmx_guest_t *g = nullptr;
        if (shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g) != 0) _exit(2);
        shmx_pool_t *pool = GuestPool(g);
        for (int i = 0; i < 5; i++) {  // the segment's 2, then 3 of an extent (plus one sent to the host)
            shmx_slot_ref_t ref;
            if (shmx_pool_alloc(pool, kSmall, GuestOwner(g), shmx_deadline(10 * kSecond), &kIdle, &ref) != 0) _exit(3);
            if (i == 4 && shmx_pool_send(pool, &ref, GuestOwner(g), kHost) != 0) _exit(4);
        }
        if (!Put(ready[1], 1)) _exit(5);
        pause();  // holds them until killed
        _exit(0);
    }
    close(ready[1]);
    shmx_channel_t *ch = Accept();
    ASSERT_NE(ch, nullptr);
    int one = 0;
    ASSERT_TRUE(Get(ready[0], &one));
    shmx_pool_stats_t st;
    shmx_pool_stats(pool_, &st);
    EXPECT_EQ(4u, st.claimed_slots[0]);
    EXPECT_EQ(1u, st.sent_slots[0]);
    EXPECT_EQ(6u, st.total_slots[0]);
    kill(pid, SIGKILL);
    WaitChild(pid, 10000);
    close(ready[0]);
    // The host frees its side; the dead guest's slots, extent ones included, come back.
    EXPECT_EQ(2u, shmx_pool_reclaim_owner(pool_, kHost)) << "the one slot it sent the host, and ours";
    (void)large;
    shmx_channel_free(ch);
    ExpectPoolAllFree();
    EXPECT_EQ(1u, shmx_host_extent_count(host_));
}

// A client that says hello as a shm guest and then sends anything at all.
int RawShmGuest(const char *path, shmx_host_t *host, shmx_channel_t **host_side) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof a) != 0) return -1;
    shmx_hello_t hello = {SHMX_TRANSPORT_SHM};
    if (shmx_bootstrap_send_hello(fd, &hello) != 0) return -1;
    if (shmx_host_accept(host, 10 * kSecond, host_side) != 0) return -1;
    shmx_welcome_t w;
    int seg_fd = -1;
    if (shmx_bootstrap_recv_welcome(fd, shmx_deadline(10 * kSecond), &w, &seg_fd) != 0) return -1;
    close(seg_fd);
    return fd;
}

ssize_t SendWithFd(int sock, const void *buf, size_t len, int pass) {
    struct iovec iov = {const_cast<void *>(buf), len};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl = {};
    struct msghdr m = {};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass, sizeof pass);
    return sendmsg(sock, &m, MSG_NOSIGNAL);
}

TEST_F(ExtentTest, ShouldIgnoreForgedGrowRequestsAndGarbageAndServeOn) {
    CreateHost();
    shmx_channel_t *raw_side = nullptr;
    int raw = RawShmGuest(shmx_host_socket_path(host_), host_, &raw_side);
    ASSERT_GE(raw, 0);
    // Take every slot without letting the host grow: the classes are empty, the cap allows more.
    shmx_pool_grow_fn grow = pool_->grow;
    pool_->grow = nullptr;
    std::vector<shmx_slot_ref_t> refs;
    shmx_slot_ref_t r;
    while (shmx_pool_alloc(pool_, 1, kHost, shmx_deadline(0), &kIdle, &r) == 0) refs.push_back(r);
    pool_->grow = grow;
    ASSERT_EQ(3u, refs.size());
    const int fds_before = CountOpenFds();

    uint8_t junk[40];
    memset(junk, 0xEE, sizeof junk);
    ASSERT_EQ((ssize_t)sizeof junk, write(raw, junk, sizeof junk)) << "extent-sized garbage";
    usleep(20 * 1000);
    uint8_t grow_msg[SHMX_GROW_BYTES] = {};
    auto make = [&](uint32_t magic, uint16_t version, uint32_t cls, uint32_t tail) {
        memcpy(grow_msg, &magic, 4);
        memcpy(grow_msg + 4, &version, 2);
        memset(grow_msg + 6, 0, 2);
        memcpy(grow_msg + 8, &cls, 4);
        memcpy(grow_msg + 12, &tail, 4);
    };
    make(SHMX_GROW_MAGIC, 1, 99, 0);  // no such class
    ASSERT_EQ((ssize_t)sizeof grow_msg, write(raw, grow_msg, sizeof grow_msg));
    usleep(20 * 1000);
    make(SHMX_GROW_MAGIC, 7, 0, 0);  // unknown version
    ASSERT_EQ((ssize_t)sizeof grow_msg, write(raw, grow_msg, sizeof grow_msg));
    usleep(20 * 1000);
    make(SHMX_GROW_MAGIC, 1, 0, 5);  // reserved bits set
    int memfd = memfd_create("forged", MFD_CLOEXEC);
    ASSERT_GE(memfd, 0);
    ASSERT_EQ((ssize_t)sizeof grow_msg, SendWithFd(raw, grow_msg, sizeof grow_msg, memfd)) << "with an fd";
    close(memfd);
    usleep(20 * 1000);
    for (int i = 0; i < 500; i++) {  // a flood of garbage, bounded work per wake-up
        if (write(raw, junk, sizeof junk) != (ssize_t)sizeof junk) break;
    }
    EXPECT_TRUE(Eventually([&] {
        int queued = -1;
        return ioctl(raw, SIOCOUTQ, &queued) == 0 && queued == 0;
    })) << "the host read everything";
    EXPECT_EQ(0u, shmx_host_extent_count(host_)) << "nothing grew from garbage";
    EXPECT_TRUE(Eventually([&] { return CountOpenFds() == fds_before; })) << "the forged fd was closed";

    // The host is alive and serving: a real guest connects and the pool works.
    shmx_channel_t *ch = nullptr;
    shmx_guest_t *g = ConnectGuest(&ch);
    ASSERT_NE(g, nullptr);
    // A well-formed request, sent in two pieces, is still served for the same raw client.
    make(SHMX_GROW_MAGIC, 1, 0, 0);
    ASSERT_EQ(5, write(raw, grow_msg, 5));
    usleep(20 * 1000);
    ASSERT_EQ((ssize_t)sizeof grow_msg - 5, write(raw, grow_msg + 5, sizeof grow_msg - 5));
    EXPECT_TRUE(Eventually([&] { return shmx_host_extent_count(host_) == 1u; }))
        << "the service thread is alive and grew class 0";
    for (const shmx_slot_ref_t &x : refs) ASSERT_EQ(0, shmx_pool_free(pool_, &x, kHost));
    close(raw);
    shmx_channel_free(raw_side);
    shmx_channel_free(ch);
    ExpectPoolAllFree();
}

// A fake host: a real segment and a real welcome, then the announcements a test makes up.
class FakeHost {
  public:
    explicit FakeHost(const shmx_config_t &cfg, const std::string &name) {
        EXPECT_EQ(0, shmx_segment_create(&cfg, name.c_str(), &seg_));
        shmx_channel_ctl_t *ctl = shmx_segment_channel(&seg_, 0);
        __atomic_store_n(&ctl->epoch, 1u, __ATOMIC_RELAXED);
        __atomic_store_n(&ctl->state, uint32_t{SHMX_CHANNEL_ACTIVE}, __ATOMIC_RELEASE);
        char path[108];
        EXPECT_GT(shmx_socket_path(name.c_str(), path, sizeof path), 0);
        char dir[108];
        EXPECT_GT(shmx_socket_dir(dir, sizeof dir, 1), 0);
        listen_ = shmx_bootstrap_listen(path);
        EXPECT_GE(listen_, 0);
    }
    ~FakeHost() {
        if (sock_ >= 0) close(sock_);
        if (listen_ >= 0) close(listen_);
        shmx_segment_close(&seg_);
    }

    // Accept the guest, read its hello and welcome it to entry 0.
    bool Welcome() {
        struct pollfd p = {listen_, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) return false;
        sock_ = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        shmx_hello_t hello;
        if (sock_ < 0 || shmx_bootstrap_recv_hello(sock_, shmx_deadline(10 * kSecond), &hello) != 0) return false;
        shmx_welcome_t w = {SHMX_TRANSPORT_SHM, 0, 0, 1, seg_.config.max_payload, seg_.size, seg_.config.max_message};
        if (shmx_bootstrap_send_welcome(sock_, &w, seg_.fd) != 0) return false;
        // A guest reads its doorbells right after the welcome.
        int host[2], guest[2];
        if (shmx_doorbell_create(host, guest) != 0) return false;
        bool sent = shmx_bootstrap_send_bells(sock_, guest) == 0;
        for (int fd : {host[0], host[1], guest[0], guest[1]}) close(fd);
        return sent;
    }

    int Announce(const shmx_extent_msg_t &m, int fd) { return shmx_bootstrap_send_extent(sock_, &m, fd); }
    const shmx_segment_t &seg() const { return seg_; }

  private:
    shmx_segment_t seg_{};
    int listen_ = -1;
    int sock_ = -1;
};

// A memfd of @bytes, sealed with @seals (0: none).
int MakeMemfd(uint64_t bytes, int seals) {
    int fd = memfd_create("fake-extent", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) return -1;
    if (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0) return -1;
    return fd;
}

TEST_F(ExtentTest, ShouldRefuseAnnouncementsThatAreNotWhatTheyClaim) {
    shmx_extent_layout_t lay;
    ASSERT_EQ(0, shmx_extent_layout(kSmall, 4, &lay));
    const int all = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    struct Case {
        const char *what;
        shmx_extent_msg_t msg;
        uint64_t file_bytes;
        int seals;
    } cases[] = {
        {"unsealed", {0, 0, 2, 4, lay.total_bytes}, lay.total_bytes, 0},
        {"sealed against growth only", {0, 0, 2, 4, lay.total_bytes}, lay.total_bytes, F_SEAL_GROW},
        {"smaller than announced", {0, 0, 2, 4, lay.total_bytes}, lay.total_bytes - 4096, all},
        {"size not the class's layout", {0, 0, 2, 4, lay.total_bytes + 4096}, lay.total_bytes + 4096, all},
        {"more slots than an extent holds", {0, 0, 2, 5, lay.total_bytes}, lay.total_bytes, all},
        {"a gap before it", {0, 0, 3, 4, lay.total_bytes}, lay.total_bytes, all},
        {"no such class", {0, 7, 2, 4, lay.total_bytes}, lay.total_bytes, all},
        {"out of order", {1, 0, 2, 4, lay.total_bytes}, lay.total_bytes, all},
        {"a good one", {0, 0, 2, 4, lay.total_bytes}, lay.total_bytes, all},
    };
    int n = 0;
    for (const Case &c : cases) {
        SCOPED_TRACE(c.what);
        const std::string name = name_ + "-fake" + std::to_string(n++);
        FakeHost fake(cfg_, name);
        shmx_guest_t *g = nullptr;
        std::atomic<int> rc{1};
        std::thread t([&] { rc = shmx_guest_connect(name.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, &g); });
        ASSERT_TRUE(fake.Welcome());
        t.join();
        ASSERT_EQ(0, rc.load()) << shmx_strerror(rc.load());
        int fd = MakeMemfd(c.file_bytes, c.seals);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(0, fake.Announce(c.msg, fd));
        close(fd);
        const bool good = std::string(c.what) == "a good one";
        // The announced first slot: its metadata is all zero (nobody formatted it), so
        // state FREE, generation 0 and owner 0 match once it is mapped.
        const shmx_slot_ref_t ref = {0, 2, 0, 0};
        void *data;
        uint32_t size;
        int got = shmx_pool_resolve(GuestPool(g), &ref, SHMX_SLOT_FREE, 0, &data, &size);
        if (good) {
            EXPECT_EQ(0, got) << "mapped";
            EXPECT_EQ(fake.seg().size + lay.total_bytes, shmx_guest_mapped_bytes(g));
        } else {
            EXPECT_EQ(-SHMX_EBADSLOT, got);
            EXPECT_EQ(fake.seg().size, shmx_guest_mapped_bytes(g)) << "nothing mapped";
        }
        shmx_guest_close(g);
    }
}

}  // namespace
