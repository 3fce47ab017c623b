// The slot pool: allocation, ownership, waiting, reclaim, ABA and corrupted lists,
// shards, stress over threads, two mappings and processes, and extents (growth
// through the grow hook, lazy mapping through the map hook).
#include <gtest/gtest.h>

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr uint32_t kHost = SHMX_OWNER_HOST;

uint32_t Load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// A pool view's extents grown through its grow hook, as the host does it (host_service.c),
// and mapped through another view's map hook, as a guest does it (guest.c), without sockets.
struct Grower {
    std::mutex mu;
    shmx_pool_t *host = nullptr;
    std::vector<shmx_extent_t> extents;
    uint32_t max_extents = 0;
    std::atomic<int> calls{0};

    // Hook: add an extent of @cls if it is still empty and the cap allows (as the host).
    static void Grow(void *arg, uint32_t cls) {
        Grower *g = static_cast<Grower *>(arg);
        g->calls.fetch_add(1);
        std::lock_guard<std::mutex> lock(g->mu);
        g->GrowLocked(cls);
    }

    int GrowLocked(uint32_t cls) {
        if (extents.size() >= max_extents || !shmx_pool_class_empty(host, cls)) return 0;
        shmx_extent_t e;
        uint32_t first = shmx_pool_class_end(host, cls);
        int rc = shmx_extent_create(cls, host->cls[cls].slot_size, first, host->cls[cls].chunk_slots, &e);
        if (rc != 0) return rc;
        rc = shmx_pool_add_extent(host, cls, first, e.count, e.base, e.bytes);
        if (rc != 0) return rc;
        extents.push_back(e);
        return shmx_pool_push_extent(host, cls, first) == 0 ? 1 : -1;
    }

    ~Grower() {
        for (shmx_extent_t &e : extents) shmx_extent_close(&e);
    }
};

struct Mapper {
    std::mutex mu;
    Grower *grower = nullptr;
    shmx_pool_t *guest = nullptr;
    std::vector<shmx_extent_t> mapped;
    std::atomic<int> calls{0};

    // Hook: map, in order, every extent the grower made that this view lacks (as a guest).
    static int Map(void *arg, uint32_t cls, uint32_t index) {
        Mapper *m = static_cast<Mapper *>(arg);
        m->calls.fetch_add(1);
        std::lock_guard<std::mutex> lock(m->mu);
        std::lock_guard<std::mutex> glock(m->grower->mu);
        while (m->mapped.size() < m->grower->extents.size()) {
            const shmx_extent_t &src = m->grower->extents[m->mapped.size()];
            shmx_extent_t e;
            if (shmx_extent_attach(dup(src.fd), src.bytes, &e) != 0) return -1;
            if (shmx_pool_add_extent(m->guest, src.cls, src.first, src.count, e.base, e.bytes) != 0) return -1;
            m->mapped.push_back(e);
        }
        return index < shmx_pool_class_end(m->guest, cls) ? 0 : -1;
    }

    ~Mapper() {
        for (shmx_extent_t &e : mapped) shmx_extent_close(&e);
    }
};

class PoolTest : public ::testing::Test {
  protected:
    void SetUp() override {
        seg_.fd = -1;
        // Tests that look at list heads must know which shard a free lands on: they run
        // pinned to CPU 0 (shard 0, where every slot starts). Threaded tests unpin.
        ASSERT_EQ(0, sched_getaffinity(0, sizeof(all_cpus_), &all_cpus_));
        if (!CPU_ISSET(0, &all_cpus_)) GTEST_SKIP() << "CPU 0 is not ours to pin to (the shard tests need it)";
        PinTo(0);
        shmx_config_t cfg;
        shmx_config_default(&cfg);
        cfg.max_channels = 4;
        cfg.ring_bytes = 4096;
        cfg.inline_max = 256;
        cfg.class_count = 3;
        cfg.class_size[0] = 256;
        cfg.class_slots[0] = 4;
        cfg.class_size[1] = 1024;
        cfg.class_slots[1] = 2;
        cfg.class_size[2] = 4096;
        cfg.class_slots[2] = 1;
        cfg.max_payload = 4096;
        cfg.extent_bytes = 4096;  // extents of 16, 4 and 1 slots
        ASSERT_EQ(0, shmx_segment_create(&cfg, "pooltest", &seg_));
        shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
    }

    void TearDown() override {
        Unpin();
        shmx_pool_fini(&pool_);  // the ledger's memory, if a test enabled one
        shmx_segment_close(&seg_);
    }

    static void PinTo(int cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
    }

    // Run on every CPU we were given again (threads created after this inherit it).
    void Unpin() { sched_setaffinity(0, sizeof(all_cpus_), &all_cpus_); }

    // A CPU of ours whose shard is not 0, or -1.
    int CpuOfAnotherShard() const {
        for (int cpu = 1; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &all_cpus_) && cpu % SHMX_POOL_SHARDS != 0) return cpu;
        return -1;
    }

    int Alloc(uint32_t size, uint32_t owner, int64_t timeout_ns, shmx_slot_ref_t *ref,
              const shmx_idle_t *idle = &kIdle) {
        return AllocIn(&pool_, size, owner, timeout_ns, ref, idle);
    }

    static int AllocIn(shmx_pool_t *pool, uint32_t size, uint32_t owner, int64_t timeout_ns, shmx_slot_ref_t *ref,
                       const shmx_idle_t *idle = &kIdle) {
        return shmx_pool_alloc(pool, size, owner, shmx_deadline(timeout_ns), idle, ref);
    }

    // Metadata of any slot this view has mapped (segment or extent).
    shmx_slot_meta_t &Meta(uint32_t cls, uint32_t index) {
        const shmx_pool_class_t &k = pool_.cls[cls];
        if (index < k.slot_count) return k.meta[index];
        for (uint32_t j = 0; j < k.chunk_count; j++)
            if (index - k.chunk[j].first < k.chunk[j].count) return k.chunk[j].meta[index - k.chunk[j].first];
        ADD_FAILURE() << "no slot " << cls << "/" << index;
        return k.meta[0];
    }
    uint64_t &Head(uint32_t cls, uint32_t shard = 0) { return pool_.ctl->free_head[cls][shard][0]; }
    uint32_t ClassSlots(uint32_t cls) const { return shmx_pool_class_end(const_cast<shmx_pool_t *>(&pool_), cls); }

    // free + claimed + sent == total for every class, and the free count is what the lists hold.
    void ExpectAccounted(uint32_t expect_free_total = UINT32_MAX) {
        shmx_pool_stats_t st;
        shmx_pool_stats(&pool_, &st);
        ASSERT_EQ(pool_.class_count, st.class_count);
        uint32_t free_total = 0;
        for (uint32_t c = 0; c < st.class_count; c++) {
            SCOPED_TRACE(c);
            EXPECT_EQ(ClassSlots(c), st.total_slots[c]);
            EXPECT_EQ(st.total_slots[c], st.free_slots[c] + st.claimed_slots[c] + st.sent_slots[c]);
            uint32_t free_state = 0;
            for (uint32_t i = 0; i < ClassSlots(c); i++) free_state += Load32(&Meta(c, i).state) == SHMX_SLOT_FREE;
            EXPECT_EQ(free_state, st.free_slots[c]) << "every FREE slot is on a list, and only those";
            free_total += st.free_slots[c];
        }
        if (expect_free_total != UINT32_MAX) {
            EXPECT_EQ(expect_free_total, free_total);
        }
    }

    // What the host's ledger says of a slot: {generation, holder} (0 if nothing).
    uint64_t Word(uint32_t cls, uint32_t index) {
        const shmx_pool_class_t &k = pool_.cls[cls];
        if (index < k.slot_count) return __atomic_load_n(&k.ledger[index].word, __ATOMIC_ACQUIRE);
        for (uint32_t j = 0; j < k.chunk_count; j++)
            if (index - k.chunk[j].first < k.chunk[j].count)
                return __atomic_load_n(&k.chunk[j].ledger[index - k.chunk[j].first].word, __ATOMIC_ACQUIRE);
        ADD_FAILURE() << "no slot " << cls << "/" << index;
        return 0;
    }

    // A guest's allocation handed to the host, as the guest does it (alloc, then send).
    shmx_slot_ref_t FromGuest(uint32_t guest, uint32_t size = 1) {
        shmx_slot_ref_t ref{};
        EXPECT_EQ(0, Alloc(size, guest, 0, &ref));
        EXPECT_EQ(0, shmx_pool_send(&pool_, &ref, guest, kHost));
        return ref;
    }

    int Take(const shmx_slot_ref_t &ref) {
        void *data;
        uint32_t size;
        return shmx_pool_take(&pool_, &ref, kHost, &data, &size);
    }

    shmx_pool_faults_t Faults() const {
        shmx_pool_faults_t f;
        shmx_pool_faults(&pool_, &f);
        return f;
    }

    // No slot twice among @refs.
    static void ExpectDistinct(const std::vector<shmx_slot_ref_t> &refs) {
        for (size_t i = 0; i < refs.size(); i++)
            for (size_t j = i + 1; j < refs.size(); j++)
                EXPECT_FALSE(refs[i].cls == refs[j].cls && refs[i].index == refs[j].index)
                    << "slot " << refs[i].cls << "/" << refs[i].index << " handed out twice";
    }

    uint32_t TotalSlots() const {
        uint32_t n = 0;
        for (uint32_t c = 0; c < pool_.class_count; c++) n += ClassSlots(c);
        return n;
    }

    // Take every slot of every class for @owner.
    std::vector<shmx_slot_ref_t> Exhaust(uint32_t owner = kHost) {
        std::vector<shmx_slot_ref_t> refs;
        shmx_slot_ref_t r;
        while (Alloc(1, owner, 0, &r) == 0) refs.push_back(r);
        EXPECT_EQ(TotalSlots(), refs.size());
        return refs;
    }

    /* A guest's view: the segment mapped a second time with its own pool, whose map hook
     * maps the extents @g made (@m ties them together; all three outlive the view). */
    void AttachGuest(Grower *g, shmx_segment_t *second, shmx_pool_t *guest, Mapper *m) {
        ASSERT_EQ(0, shmx_segment_attach_fd(dup(seg_.fd), 1000 * kMs, second));
        shmx_pool_init(guest, second->base, &second->layout, &second->config, 0);
        m->grower = g;
        m->guest = guest;
        guest->hook_arg = m;
        guest->map = Mapper::Map;
    }

    void InstallGrower(Grower *g, uint32_t max_extents) {
        g->host = &pool_;
        g->max_extents = max_extents;
        pool_.hook_arg = g;
        pool_.grow = Grower::Grow;
    }

    static constexpr shmx_idle_t kIdle = {100, 10};
    static constexpr shmx_idle_t kSleepAtOnce = {0, 0};
    cpu_set_t all_cpus_;
    shmx_segment_t seg_{};
    shmx_pool_t pool_{};
};

TEST_F(PoolTest, ShouldRoundTripAllocAndFree) {
    ExpectAccounted(TotalSlots());
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(100, kHost, 0, &ref));
    EXPECT_EQ(0u, ref.cls);
    EXPECT_LT(ref.index, 4u);
    EXPECT_EQ(0u, ref.reserved);
    shmx_slot_meta_t &m = Meta(ref.cls, ref.index);
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&m.state));
    EXPECT_EQ(kHost, Load32(&m.owner));
    EXPECT_EQ(ref.generation, Load32(&m.generation));

    void *data = nullptr;
    uint32_t size = 0;
    ASSERT_EQ(0, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_CLAIMED, kHost, &data, &size));
    EXPECT_EQ(256u, size);
    EXPECT_EQ(seg_.base + seg_.layout.class_data_offset[0] + ref.index * 256u, data);
    memset(data, 0xAB, size);
    ExpectAccounted(TotalSlots() - 1);

    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(uint32_t{SHMX_SLOT_FREE}, Load32(&m.state));
    EXPECT_EQ(uint32_t{SHMX_OWNER_NONE}, Load32(&m.owner));
    EXPECT_EQ(ref.generation + 1, Load32(&m.generation));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldPickTheSmallestFittingClass) {
    struct {
        uint32_t size, cls;
    } cases[] = {{0, 0}, {1, 0}, {256, 0}, {257, 1}, {1024, 1}, {1025, 2}, {4096, 2}};
    for (auto c : cases) {
        SCOPED_TRACE(c.size);
        shmx_slot_ref_t ref;
        ASSERT_EQ(0, Alloc(c.size, kHost, 0, &ref));
        EXPECT_EQ(c.cls, ref.cls);
        ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    }
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_ETOOBIG, Alloc(4097, kHost, 0, &ref));
    EXPECT_EQ(-SHMX_EINVAL, Alloc(1, SHMX_OWNER_NONE, 0, &ref));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldFallBackToALargerClassWhenOneIsEmpty) {
    std::vector<uint32_t> classes;
    shmx_slot_ref_t ref;
    while (Alloc(10, kHost, 0, &ref) == 0) classes.push_back(ref.cls);
    EXPECT_EQ((std::vector<uint32_t>{0, 0, 0, 0, 1, 1, 2}), classes) << "smallest first, then larger";
    ExpectAccounted(0);
}

TEST_F(PoolTest, ShouldNeverFallBackToASmallerClass) {
    shmx_slot_ref_t a, b, c;
    ASSERT_EQ(0, Alloc(1000, kHost, 0, &a));
    ASSERT_EQ(0, Alloc(1000, kHost, 0, &b));
    ASSERT_EQ(0, Alloc(1000, kHost, 0, &c));
    EXPECT_EQ(2u, c.cls);
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1000, kHost, 0, &c)) << "class 0 is free but too small";
}

TEST_F(PoolTest, ShouldReturnWouldBlockWhenExhausted) {
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1, kHost, 0, &ref)) << "timeout 0 tries once";
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1, kHost, 5 * kMs, &ref, &kSleepAtOnce)) << "sleeps, then gives up";
    ExpectAccounted(0);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &refs[0], kHost));
    EXPECT_EQ(0, Alloc(1, kHost, 0, &ref));
}

TEST_F(PoolTest, ShouldWakeAWaitingAllocWhenAnotherThreadFrees) {
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    shmx_slot_ref_t got{};
    int rc = 1;
    std::thread waiter([&] { rc = Alloc(1, 1, 30000 * kMs, &got, &kSleepAtOnce); });
    usleep(50 * 1000);  // let it sleep on the futex (the outcome is the same if it has not yet)
    ASSERT_EQ(0, shmx_pool_free(&pool_, &refs[5], kHost));
    waiter.join();
    ASSERT_EQ(0, rc);
    EXPECT_EQ(refs[5].cls, got.cls);
    EXPECT_EQ(refs[5].index, got.index);
    EXPECT_EQ(refs[5].generation + 1, got.generation);
    EXPECT_EQ(1u, Load32(&Meta(got.cls, got.index).owner));
}

TEST_F(PoolTest, ShouldWakeAWaitingAllocWhenAnotherProcessFrees) {
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    int fd = dup(seg_.fd);
    ASSERT_GE(fd, 0);
    pid_t pid = fork();
    if (pid == 0) {
        // Its own mapping of the memfd, at its own address, and its own view of the pool.
        shmx_segment_t guest;
        if (shmx_segment_attach_fd(fd, 1000 * kMs, &guest) != 0) _exit(2);
        shmx_pool_t pool;
        shmx_pool_init(&pool, guest.base, &guest.layout, &guest.config, 0);
        usleep(50 * 1000);
        _exit(shmx_pool_free(&pool, &refs[0], kHost) == 0 ? 0 : 3);
    }
    close(fd);
    ASSERT_GT(pid, 0);
    shmx_slot_ref_t got{};
    int rc = Alloc(1, kHost, 10000 * kMs, &got, &kSleepAtOnce);
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status));
    ASSERT_EQ(0, rc) << "a shared futex wakes across processes";
    EXPECT_EQ(refs[0].index, got.index);
    EXPECT_EQ(refs[0].generation + 1, got.generation);
}

TEST_F(PoolTest, ShouldRejectADoubleFreeAndChangeNothing) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    uint64_t head = Head(ref.cls);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(head, Head(ref.cls)) << "nothing pushed";
    ExpectAccounted(TotalSlots());

    // The same slot handed out again: the old reference must not free the new allocation.
    shmx_slot_ref_t again;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &again));
    ASSERT_EQ(ref.index, again.index);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&Meta(again.cls, again.index).state));
    EXPECT_EQ(0, shmx_pool_free(&pool_, &again, kHost));
}

TEST_F(PoolTest, ShouldRejectConcurrentFreesOfOneReferenceButOne) {
    for (int round = 0; round < 200; round++) {
        shmx_slot_ref_t ref;
        ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
        std::atomic<int> go{0}, wins{0};
        auto freer = [&] {
            while (go.load(std::memory_order_acquire) == 0) {
            }
            if (shmx_pool_free(&pool_, &ref, kHost) == 0) wins.fetch_add(1, std::memory_order_relaxed);
        };
        std::thread a(freer), b(freer);
        go.store(1, std::memory_order_release);
        a.join();
        b.join();
        ASSERT_EQ(1, wins.load()) << "round " << round;
    }
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldRejectAStaleOrForgedGeneration) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    void *data;
    uint32_t size;
    for (uint32_t gen : {ref.generation - 1, ref.generation + 1, 0u}) {
        SCOPED_TRACE(gen);
        shmx_slot_ref_t bad = ref;
        bad.generation = gen;
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &bad, SHMX_SLOT_CLAIMED, kHost, &data, &size));
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(&pool_, &bad, kHost, 1));
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &bad, kHost));
    }
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&Meta(ref.cls, ref.index).state));
    EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
}

TEST_F(PoolTest, ShouldRejectReferencesOutOfRange) {
    void *data;
    uint32_t size;
    const shmx_slot_ref_t bad[] = {{3, 0, 1, 0}, {SHMX_MAX_CLASSES, 0, 1, 0}, {0xFFFFFFFFu, 0, 1, 0},
                                   {0, 4, 1, 0}, {2, 1, 1, 0},                {1, 0xFFFFFFFFu, 1, 0}};
    for (const shmx_slot_ref_t &r : bad) {
        SCOPED_TRACE(testing::Message() << r.cls << "/" << r.index);
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &r, SHMX_SLOT_FREE, SHMX_OWNER_NONE, &data, &size));
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(&pool_, &r, kHost, 1));
        EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &r, kHost));
    }
    // A free slot is nobody's to free.
    const shmx_slot_ref_t idle = {0, 0, 1, 0};
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &idle, SHMX_OWNER_NONE));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &idle, kHost));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldRejectTheWrongOwner) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    void *data;
    uint32_t size;
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, 3));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(&pool_, &ref, 3, 1));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_CLAIMED, 3, &data, &size));
    EXPECT_EQ(kHost, Load32(&Meta(ref.cls, ref.index).owner));

    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, kHost, 1));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, kHost)) << "the sender gave it away";
    EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, 1));
}

TEST_F(PoolTest, ShouldHandASlotToItsReceiverOnSend) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(300, 2, 0, &ref));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, 2, kHost));
    shmx_slot_meta_t &m = Meta(ref.cls, ref.index);
    EXPECT_EQ(uint32_t{SHMX_SLOT_SENT}, Load32(&m.state));
    EXPECT_EQ(kHost, Load32(&m.owner));
    void *data;
    uint32_t size;
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_SENT, kHost, &data, &size));
    EXPECT_EQ(1024u, size);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_CLAIMED, 2, &data, &size));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(&pool_, &ref, kHost, 2)) << "only a CLAIMED slot is sent";
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_send(&pool_, &ref, 2, SHMX_OWNER_NONE));
    ExpectAccounted(TotalSlots() - 1);
    EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldReclaimExactlyTheSlotsOfOneOwner) {
    shmx_slot_ref_t host_claimed, g1_claimed, to_g1, from_g1, g2_claimed;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &host_claimed));
    ASSERT_EQ(0, Alloc(1, 1, 0, &g1_claimed));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &to_g1));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &to_g1, kHost, 1));
    ASSERT_EQ(0, Alloc(2000, 1, 0, &from_g1));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &from_g1, 1, kHost));
    ASSERT_EQ(0, Alloc(1, 2, 0, &g2_claimed));

    EXPECT_EQ(2u, shmx_pool_reclaim_owner(&pool_, 1));
    void *data;
    uint32_t size;
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &g1_claimed, SHMX_SLOT_CLAIMED, 1, &data, &size));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&pool_, &to_g1, SHMX_SLOT_SENT, 1, &data, &size));
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &host_claimed, SHMX_SLOT_CLAIMED, kHost, &data, &size));
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &from_g1, SHMX_SLOT_SENT, kHost, &data, &size));
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &g2_claimed, SHMX_SLOT_CLAIMED, 2, &data, &size));
    ExpectAccounted(TotalSlots() - 3);
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 1)) << "nothing left";
    EXPECT_EQ(2u, shmx_pool_reclaim_owner(&pool_, kHost));
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 2));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldReclaimASlotWhoseOwnerDiedInTheMiddleOfAFree) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, 3, 0, &ref));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, 3, 2));
    // Guest 2 committed its free (the generation CAS) and was killed before the rest.
    Store32(&Meta(ref.cls, ref.index).generation, ref.generation + 1);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, 2)) << "its reference is spent";
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 2));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldBringBackSlotsLostInsideAListOperationWhenRebuiltAlone) {
    // Killed after popping (CLAIMED, no owner yet), killed after marking a free but
    // before pushing it (FREE, on no list), and one slot really held: kept.
    shmx_slot_ref_t popped, unpushed, held;
    ASSERT_EQ(0, Alloc(1, 3, 0, &popped));
    ASSERT_EQ(0, Alloc(2000, 4, 0, &unpushed));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &held));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &held, kHost, 2));
    Store32(&Meta(popped.cls, popped.index).owner, SHMX_OWNER_NONE);
    Store32(&Meta(unpushed.cls, unpushed.index).owner, SHMX_OWNER_NONE);
    Store32(&Meta(unpushed.cls, unpushed.index).state, SHMX_SLOT_FREE);
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 3)) << "an owner scan can not find them";
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 4));

    EXPECT_EQ(2u, shmx_pool_rebuild(&pool_));
    ExpectAccounted(TotalSlots() - 1);
    void *data;
    uint32_t size;
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &held, SHMX_SLOT_SENT, 2, &data, &size)) << "held slots stay";
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &popped, 3)) << "the dead allocation's reference is spent";
    EXPECT_EQ(0u, shmx_pool_rebuild(&pool_)) << "nothing more to bring back";
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 2));
    ExpectAccounted(TotalSlots());
    // Every slot can be allocated again.
    std::vector<shmx_slot_ref_t> all = Exhaust();
    EXPECT_EQ(TotalSlots(), all.size());
}

TEST_F(PoolTest, ShouldRepairScribbledListsWhenRebuiltAlone) {
    Store32(&Meta(0, 2).next, 3);                // a cycle: slot 2 -> slot 2
    __atomic_store_n(&Head(0), (uint64_t)3, __ATOMIC_RELEASE); // the head at it
    __atomic_store_n(&Head(1, 2), (uint64_t)9 << 32 | 0xFFFFFFFu, __ATOMIC_RELEASE); // a wild head
    shmx_pool_rebuild(&pool_);
    ExpectAccounted(TotalSlots());
    std::vector<shmx_slot_ref_t> all = Exhaust();
    EXPECT_EQ(TotalSlots(), all.size());
}

TEST_F(PoolTest, ShouldSkipGenerationZeroWhenItWraps) {
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    Store32(&Meta(ref.cls, ref.index).generation, UINT32_MAX);
    ref.generation = UINT32_MAX;
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(1u, Load32(&Meta(ref.cls, ref.index).generation));
}

TEST_F(PoolTest, ShouldNeverFreeOnBehalfOfNoOwner) {
    // A slot between its claim and its owner store carries SHMX_OWNER_NONE.
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    Store32(&Meta(ref.cls, ref.index).owner, SHMX_OWNER_NONE);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, SHMX_OWNER_NONE));
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, SHMX_OWNER_NONE));
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&Meta(ref.cls, ref.index).state));
}

TEST_F(PoolTest, ShouldKeepExactCountsAfterAMultiThreadedStress) {
    Unpin();
    constexpr int kThreads = 4;
    constexpr int kIterations = 20000;
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::atomic<int> errors{0};
    std::vector<std::vector<shmx_slot_ref_t>> held(kThreads);
    auto worker = [&](int t) {
        std::mt19937 rng(1234 + t);
        const uint32_t me = static_cast<uint32_t>(t);
        std::vector<shmx_slot_ref_t> &mine = held[t];
        for (int i = 0; i < kIterations && std::chrono::steady_clock::now() < stop_at; i++) {
            if (mine.size() < 3 && rng() % 2 == 0) {
                shmx_slot_ref_t ref;
                int rc = Alloc(rng() % 4097, me, 0, &ref);
                if (rc == -SHMX_EWOULDBLOCK) continue;
                void *data;
                uint32_t size;
                if (rc != 0 || shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_CLAIMED, me, &data, &size) != 0) {
                    errors.fetch_add(1);
                    continue;
                }
                memset(data, 0x40 + t, size);  // a slot handed to two threads would show a foreign byte
                if (rng() % 2 == 0 && shmx_pool_send(&pool_, &ref, me, me) != 0) errors.fetch_add(1);
                mine.push_back(ref);
            } else if (!mine.empty()) {
                size_t k = rng() % mine.size();
                shmx_slot_ref_t ref = mine[k];
                mine.erase(mine.begin() + static_cast<long>(k));
                const uint8_t *data = pool_.cls[ref.cls].data + size_t{ref.index} * pool_.cls[ref.cls].slot_size;
                for (uint32_t b = 0; b < pool_.cls[ref.cls].slot_size; b += 61) {
                    if (data[b] != 0x40 + t) {
                        errors.fetch_add(1);
                        break;
                    }
                }
                if (shmx_pool_free(&pool_, &ref, me) != 0) errors.fetch_add(1);
            }
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) threads.emplace_back(worker, t);
    for (std::thread &th : threads) th.join();
    EXPECT_EQ(0, errors.load());

    uint32_t still_held = 0;
    for (const auto &v : held) still_held += static_cast<uint32_t>(v.size());
    ExpectAccounted(TotalSlots() - still_held);
    for (int t = 0; t < kThreads; t++) {
        for (const shmx_slot_ref_t &ref : held[t]) {
            EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, static_cast<uint32_t>(t)));
        }
    }
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldFailAStaleHeadCasAfterOthersCycledTheSameSlot) {
    // The "stopped" thread has read the head and the top slot's link.
    const uint64_t seen = __atomic_load_n(&Head(0), __ATOMIC_ACQUIRE);
    const uint32_t seen_top = static_cast<uint32_t>(seen);
    const uint32_t seen_next = Load32(&Meta(0, seen_top - 1).next);
    // Others pop and push that very slot many times: the top index is the same again.
    for (int i = 0; i < 1000; i++) {
        shmx_slot_ref_t ref;
        ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
        ASSERT_EQ(seen_top - 1, ref.index);
        ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    }
    const uint64_t now = __atomic_load_n(&Head(0), __ATOMIC_ACQUIRE);
    EXPECT_EQ(seen_top, static_cast<uint32_t>(now)) << "same index on top";
    EXPECT_NE(seen >> 32, now >> 32) << "but another tag";
    uint64_t expected = seen;
    const uint64_t desired = (((seen >> 32) + 1) << 32) | seen_next;
    EXPECT_FALSE(__atomic_compare_exchange_n(&Head(0), &expected, desired, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldNotLetAStaleCasInstallASlotThatIsInUse) {
    // Classic ABA: list A -> B -> C. The stopped thread read head A with next B.
    const uint64_t seen = __atomic_load_n(&Head(0), __ATOMIC_ACQUIRE);
    const uint32_t a = static_cast<uint32_t>(seen) - 1;
    const uint32_t next_b = Load32(&Meta(0, a).next);
    // Meanwhile others pop A, pop B, and push A back: list A -> C, B in use.
    shmx_slot_ref_t ra, rb;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ra));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &rb));
    ASSERT_EQ(a, ra.index);
    ASSERT_EQ(next_b - 1, rb.index);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ra, kHost));
    ASSERT_EQ(seen & 0xFFFFFFFFu, __atomic_load_n(&Head(0), __ATOMIC_ACQUIRE) & 0xFFFFFFFFu);
    // Without a tag this CAS would succeed and put the claimed B on the free list.
    uint64_t expected = seen;
    const uint64_t desired = (((seen >> 32) + 1) << 32) | next_b;
    EXPECT_FALSE(__atomic_compare_exchange_n(&Head(0), &expected, desired, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE));
    // The list is intact: B is never handed out while it is held.
    std::vector<shmx_slot_ref_t> refs;
    shmx_slot_ref_t r;
    while (Alloc(1, kHost, 0, &r) == 0) {
        if (r.cls == 0) refs.push_back(r);
    }
    EXPECT_EQ(3u, refs.size());
    for (const shmx_slot_ref_t &x : refs) EXPECT_NE(rb.index, x.index);
}

// ---- scribbled lists: bounded, detected (counted), never a failed allocation ------

TEST_F(PoolTest, ShouldDetectAnOutOfRangeLink) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    Store32(&Meta(0, top).next, 1000);
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref)) << "the top slot is fine: taken, the garbage below it cut off";
    EXPECT_EQ(0u, ref.cls);
    EXPECT_EQ(top, ref.index);
    EXPECT_EQ(1u, Faults().lists_cut);
    EXPECT_EQ(0u, static_cast<uint32_t>(Head(0))) << "the shard is empty now, not garbage";
    // The next allocations fall back to the larger classes, then wait as usual: never a failure.
    std::vector<shmx_slot_ref_t> refs{ref};
    while (Alloc(1, kHost, 0, &ref) == 0) refs.push_back(ref);
    EXPECT_EQ(4u, refs.size()) << "class 0's top, then class 1's 2 and class 2's 1";
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1, kHost, 5 * kMs, &ref, &kSleepAtOnce)) << "waited, not failed";
    EXPECT_EQ(1u, Faults().lists_cut) << "the cut list is empty, not cut again";
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);
    EXPECT_EQ(0u, st.free_slots[0]) << "the 3 slots below the garbage are off every list";
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    EXPECT_EQ(3u, shmx_pool_rebuild(&pool_)) << "until the host, alone, rebuilds the lists";
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldDetectAnOutOfRangeHead) {
    __atomic_store_n(&Head(1), (uint64_t{7} << 32) | 3u, __ATOMIC_RELEASE);  // class 1 has 2 slots
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(300, kHost, 0, &ref)) << "class 1's list is cut; class 2 still fits";
    EXPECT_EQ(2u, ref.cls);
    EXPECT_EQ((uint64_t{8} << 32) | 0u, Head(1)) << "swung to empty from exactly the garbage, tag bumped";
    EXPECT_EQ(1u, Faults().lists_cut);
    shmx_slot_ref_t more;
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(300, kHost, 0, &more));
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);
    EXPECT_EQ(0u, st.free_slots[1]);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(2u, shmx_pool_rebuild(&pool_));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldDetectACycleWithBoundedWork) {
    // Class 0: 0 -> 1 -> 2 -> 3; make it 0 -> 1 -> 0 -> ...
    const uint32_t first = static_cast<uint32_t>(Head(0)) - 1;
    const uint32_t second = Load32(&Meta(0, first).next) - 1;
    Store32(&Meta(0, second).next, first + 1);
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);  // returns: its walk is bounded
    EXPECT_LE(st.free_slots[0], 4u);

    // The two slots of the loop come out once each; then the loop runs through held slots,
    // which are skipped (a bounded number) until the list is cut; then larger classes serve.
    std::vector<shmx_slot_ref_t> refs;
    shmx_slot_ref_t ref;
    while (Alloc(1, kHost, 0, &ref) == 0 && refs.size() <= TotalSlots()) refs.push_back(ref);
    ASSERT_EQ(5u, refs.size()) << "2 of class 0, 2 of class 1, 1 of class 2";
    EXPECT_EQ(first, refs[0].index);
    EXPECT_EQ(second, refs[1].index);
    EXPECT_EQ(1u, refs[2].cls);
    ExpectDistinct(refs);
    EXPECT_GE(Faults().slots_skipped, 1u);
    EXPECT_LE(Faults().slots_skipped, 16u) << "bounded";
    EXPECT_EQ(1u, Faults().lists_cut);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    shmx_pool_rebuild(&pool_);
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldDetectASelfLoop) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    Store32(&Meta(0, top).next, top + 1);
    shmx_slot_ref_t ref, again;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    EXPECT_EQ(top, ref.index);
    EXPECT_EQ(1u, Faults().lists_cut) << "a link to itself is garbage: the list is cut below its top";
    ASSERT_EQ(0, Alloc(1, kHost, 0, &again));
    EXPECT_EQ(1u, again.cls) << "never the same slot again";
    EXPECT_EQ(0u, Faults().slots_skipped);
}

TEST_F(PoolTest, ShouldDetectASlotOnTheListThatIsNotFree) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    const uint32_t below = Load32(&Meta(0, top).next) - 1;
    Store32(&Meta(0, top).state, SHMX_SLOT_SENT);
    Store32(&Meta(0, top).owner, 2);
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref)) << "skipped, and the next slot taken";
    EXPECT_EQ(0u, ref.cls);
    EXPECT_EQ(below, ref.index);
    EXPECT_EQ(uint32_t{SHMX_SLOT_SENT}, Load32(&Meta(0, top).state)) << "not taken over";
    EXPECT_EQ(2u, Load32(&Meta(0, top).owner));
    EXPECT_EQ(1u, Faults().slots_skipped);
    EXPECT_EQ(0u, Faults().lists_cut);
    std::vector<shmx_slot_ref_t> refs{ref};
    while (Alloc(1, kHost, 0, &ref) == 0) refs.push_back(ref);
    EXPECT_EQ(TotalSlots() - 1, refs.size()) << "every other slot, the skipped one never";
    for (const shmx_slot_ref_t &r : refs) EXPECT_FALSE(r.cls == 0 && r.index == top);
}

TEST_F(PoolTest, ShouldNeverHandOutAHeldSlotAPeerPushedBackOnAList) {
    shmx_slot_ref_t held;
    ASSERT_EQ(0, Alloc(1, 1, 0, &held));
    // A peer links the held slot back on top of the list it came from.
    const uint64_t head = Head(0);
    Store32(&Meta(0, held.index).next, static_cast<uint32_t>(head));
    __atomic_store_n(&Head(0), ((head >> 32) + 1) << 32 | (held.index + 1u), __ATOMIC_RELEASE);
    std::vector<shmx_slot_ref_t> refs{held};
    shmx_slot_ref_t ref;
    while (Alloc(1, kHost, 0, &ref) == 0) refs.push_back(ref);
    EXPECT_EQ(TotalSlots(), refs.size()) << "all the others, the held one once";
    ExpectDistinct(refs);
    EXPECT_EQ(1u, Faults().slots_skipped);
    EXPECT_EQ(1u, Load32(&Meta(0, held.index).owner)) << "still its holder's";
}

TEST_F(PoolTest, ShouldKeepAllocatingFromOtherShardsWhileOneHeadIsScribbled) {
    // Class 0 as two lists: shard 0 holds slots 0 -> 1, shard 1 holds 2 -> 3.
    Store32(&Meta(0, 1).next, 0);
    __atomic_store_n(&Head(0, 0), uint64_t{5} << 32 | 1u, __ATOMIC_RELEASE);
    __atomic_store_n(&Head(0, 1), uint64_t{5} << 32 | 3u, __ATOMIC_RELEASE);
    ExpectAccounted(TotalSlots());
    // A peer scribbles shard 0's head (we run on CPU 0: shard 0 is tried first).
    __atomic_store_n(&Head(0, 0), uint64_t{9} << 32 | 0x7FFFFFF0u, __ATOMIC_RELEASE);
    shmx_slot_ref_t a, b, c;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &a));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &b));
    EXPECT_EQ(0u, a.cls);
    EXPECT_EQ(2u, a.index) << "from shard 1";
    EXPECT_EQ(0u, b.cls);
    EXPECT_EQ(3u, b.index);
    EXPECT_EQ(1u, Faults().lists_cut) << "shard 0 cut once, then empty";
    EXPECT_EQ(uint64_t{10} << 32, Head(0, 0));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &c));
    EXPECT_EQ(1u, c.cls) << "class 0 is used up (its shard 0 slots are lost until a rebuild)";
    EXPECT_EQ(1u, Faults().lists_cut);
    // Frees land on shard 0 again and are allocated from there.
    ASSERT_EQ(0, shmx_pool_free(&pool_, &a, kHost));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &a));
    EXPECT_EQ(0u, a.cls);
    EXPECT_EQ(2u, a.index);
    for (const shmx_slot_ref_t &r : {a, b, c}) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    EXPECT_EQ(2u, shmx_pool_rebuild(&pool_));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldGrowInsteadOfFailingWhenTheOnlyListIsScribbled) {
    Grower g;
    InstallGrower(&g, 1);
    __atomic_store_n(&Head(2), uint64_t{3} << 32 | 0xFFFFFFFFu, __ATOMIC_RELEASE);
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(4096, kHost, 0, &ref)) << "class 2's list cut, then grown";
    EXPECT_EQ(2u, ref.cls);
    EXPECT_EQ(1u, ref.index) << "the extent's slot";
    EXPECT_EQ(1, g.calls.load());
    EXPECT_EQ(1u, Faults().lists_cut);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
}

TEST_F(PoolTest, ShouldSurviveGarbageInTheFreedWaitPoint) {
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    Store32(&pool_.ctl->freed.waiters, 0xFFFFFFF0u);
    Store32(&pool_.ctl->freed.seq, 0xDEADBEEFu);
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1, kHost, 5 * kMs, &ref, &kSleepAtOnce));
    for (const shmx_slot_ref_t &r : refs) EXPECT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    ExpectAccounted(TotalSlots());
}

// ---- shards ---------------------------------------------------------------------------

TEST_F(PoolTest, ShouldFreeOntoTheCallingCpusShardAndTakeFromOtherShardsWhenItsOwnIsEmpty) {
    const int cpu = CpuOfAnotherShard();
    if (cpu < 0) GTEST_SKIP() << "no CPU of ours maps to a shard other than 0";
    const uint32_t shard = static_cast<uint32_t>(cpu) % SHMX_POOL_SHARDS;
    PinTo(cpu);
    EXPECT_EQ(0u, static_cast<uint32_t>(Head(0, shard))) << "every slot starts on shard 0";
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref)) << "an empty own shard takes from another";
    EXPECT_EQ(0u, ref.cls);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(ref.index + 1u, static_cast<uint32_t>(Head(0, shard))) << "freed onto this CPU's shard";
    shmx_slot_ref_t again;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &again));
    EXPECT_EQ(ref.index, again.index) << "own shard first";
    ASSERT_EQ(0, shmx_pool_free(&pool_, &again, kHost));
    ExpectAccounted(TotalSlots());

    // A class is empty only when every shard is: all 7 slots come out, from both shards.
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    EXPECT_TRUE(shmx_pool_class_empty(&pool_, 0));
    PinTo(0);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    EXPECT_FALSE(shmx_pool_class_empty(&pool_, 0));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldDetectCorruptionOnEveryShard) {
    for (uint32_t shard = 1; shard < SHMX_POOL_SHARDS; shard++) {
        SCOPED_TRACE(shard);
        __atomic_store_n(&Head(2, shard), (uint64_t{9} << 32) | 1000u, __ATOMIC_RELEASE);
        shmx_slot_ref_t ref, none;
        ASSERT_EQ(0, Alloc(4096, kHost, 0, &ref)) << "shard 0 first (we run on CPU 0)";
        EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(4096, kHost, 0, &none)) << "then the wild head: cut, so empty";
        EXPECT_EQ(shard, Faults().lists_cut);
        EXPECT_EQ(uint64_t{10} << 32, Head(2, shard));
        ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    }
    ExpectAccounted(TotalSlots());
}

// A peer keeps writing garbage into heads and links while threads allocate and free: every
// call returns (bounded), only 0 or EWOULDBLOCK, and no slot is ever held by two at once.
TEST_F(PoolTest, ShouldStayBoundedAndExclusiveWhileAPeerScribblesHeadsAndLinks) {
    Unpin();
    std::atomic<bool> stop{false};
    std::atomic<int> errors{0}, allocs{0};
    std::vector<std::atomic<uint32_t>> holder(TotalSlots());
    auto slot_no = [&](const shmx_slot_ref_t &r) { return r.cls == 0 ? r.index : r.cls == 1 ? 4 + r.index : 6u; };
    auto worker = [&](uint32_t me) {
        std::mt19937 rng(me);
        std::vector<shmx_slot_ref_t> mine;
        while (!stop.load(std::memory_order_relaxed)) {
            if (mine.size() < 2 && rng() % 2 == 0) {
                shmx_slot_ref_t ref;
                int rc = Alloc(rng() % 4097, me, 2 * kMs, &ref);
                if (rc == -SHMX_EWOULDBLOCK) continue;
                if (rc != 0) {
                    errors++;
                    continue;
                }
                allocs++;
                uint32_t none = 0;
                if (!holder[slot_no(ref)].compare_exchange_strong(none, me)) errors++;  // held twice
                mine.push_back(ref);
            } else if (!mine.empty()) {
                shmx_slot_ref_t ref = mine.back();
                mine.pop_back();
                holder[slot_no(ref)].store(0);
                if (shmx_pool_free(&pool_, &ref, me) != 0) errors++;
            }
        }
        for (const shmx_slot_ref_t &ref : mine) {
            holder[slot_no(ref)].store(0);
            if (shmx_pool_free(&pool_, &ref, me) != 0) errors++;
        }
    };
    std::thread scribbler([&] {
        std::mt19937 rng(99);
        for (int i = 0; i < 3000; i++) {
            uint32_t c = rng() % 3, v = rng() % 3 == 0 ? rng() : rng() % 12;
            if (rng() % 2 == 0) __atomic_store_n(&Head(c, rng() % SHMX_POOL_SHARDS), uint64_t{rng()} << 32 | v, __ATOMIC_RELEASE);
            else Store32(&Meta(0, rng() % 4).next, v);
            usleep(100);
        }
        stop = true;
    });
    std::thread a(worker, 1u), b(worker, 2u);
    scribbler.join();
    a.join();
    b.join();
    EXPECT_EQ(0, errors.load());
    EXPECT_GT(allocs.load(), 0);
    EXPECT_GT(Faults().lists_cut + Faults().slots_skipped, 0u) << "the scribbles were met";
    shmx_pool_rebuild(&pool_);  // alone again: every slot back
    ExpectAccounted(TotalSlots());
}

// ---- the host's ledger ---------------------------------------------------------------------

TEST_F(PoolTest, ShouldTakeAReceivedSlotOnceAndRefuseItsForgedDuplicate) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t ref = FromGuest(1);
    ASSERT_EQ(0, Take(ref));
    EXPECT_EQ(1u, shmx_pool_host_held(&pool_));
    // The guest puts the same reference in a second record: the metadata still reads SENT to the host.
    EXPECT_EQ(-SHMX_EBADSLOT, Take(ref)) << "a duplicate of a slot the host holds";
    EXPECT_EQ(1u, Faults().refs_refused);
    // A slot the host allocated itself, made to look sent to the host.
    shmx_slot_ref_t own;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &own));
    Store32(&Meta(own.cls, own.index).state, SHMX_SLOT_SENT);
    EXPECT_EQ(-SHMX_EBADSLOT, Take(own)) << "the host's own claim";
    EXPECT_EQ(2u, Faults().refs_refused);
    EXPECT_EQ(2u, shmx_pool_host_held(&pool_));
    // What the host holds it frees, the scribbled state notwithstanding; once.
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &own, kHost));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &own, kHost));
    EXPECT_EQ(0u, shmx_pool_host_held(&pool_));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldRefuseAReferenceCarryingTheGenerationTheHostSentAGuest) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, kHost, 2));
    EXPECT_EQ(uint64_t{ref.generation} << 32 | 2u, Word(ref.cls, ref.index));
    // Guest 2 hands the slot it was sent straight back, as if it had allocated it.
    Store32(&Meta(ref.cls, ref.index).owner, kHost);
    EXPECT_EQ(-SHMX_EBADSLOT, Take(ref));
    EXPECT_EQ(1u, Faults().refs_refused);
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &ref, kHost)) << "and the host does not free it either";
    EXPECT_EQ(0u, shmx_pool_host_held(&pool_));
    Store32(&Meta(ref.cls, ref.index).owner, 2);
    EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, 2)) << "still guest 2's";
    EXPECT_EQ(0u, Word(ref.cls, ref.index)) << "spent";
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldTakeALegitimateReallocationAfterTheGuestFreed) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, kHost, 2));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &ref, 2));  // in the guest's own view, really; same metadata
    // The guest allocates the same slot again (top of our shard) and sends it to the host.
    shmx_slot_ref_t again = FromGuest(2);
    ASSERT_EQ(ref.index, again.index);
    ASSERT_EQ(ref.generation + 1, again.generation);
    ASSERT_EQ(0, Take(again)) << "a new allocation: a free bumped the generation";
    EXPECT_EQ(1u, shmx_pool_host_held(&pool_));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &again, kHost));
    // Even with a stale word of the guest's left (its free ran where the host's ledger is not).
    ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, kHost, 3));
    Store32(&Meta(ref.cls, ref.index).generation, ref.generation + 1);  // guest 3's free, in its view:
    Store32(&Meta(ref.cls, ref.index).owner, SHMX_OWNER_NONE);        // the generation first, then
    Store32(&Meta(ref.cls, ref.index).state, SHMX_SLOT_FREE);         // the rest; then it pushes it
    const uint64_t head = Head(0);
    Store32(&Meta(ref.cls, ref.index).next, static_cast<uint32_t>(head));
    __atomic_store_n(&Head(0), ((head >> 32) + 1) << 32 | (ref.index + 1u), __ATOMIC_RELEASE);
    EXPECT_EQ(uint64_t{ref.generation} << 32 | 3u, Word(ref.cls, ref.index)) << "stale";
    again = FromGuest(1);
    ASSERT_EQ(ref.index, again.index);
    EXPECT_EQ(0, Take(again));
    EXPECT_EQ(0, shmx_pool_free(&pool_, &again, kHost));
    EXPECT_EQ(0u, Faults().refs_refused);
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldTakeBackAnAllocationAGuestPutBackWithoutAFree) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t sent;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &sent));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &sent, kHost, 1));
    // Guest 1 lists the slot again without a free: its generation stays the one it was sent.
    Store32(&Meta(0, sent.index).state, SHMX_SLOT_FREE);
    Store32(&Meta(0, sent.index).owner, SHMX_OWNER_NONE);
    const uint64_t head = Head(0);
    Store32(&Meta(0, sent.index).next, static_cast<uint32_t>(head));
    __atomic_store_n(&Head(0), ((head >> 32) + 1) << 32 | (sent.index + 1u), __ATOMIC_RELEASE);
    shmx_slot_ref_t mine;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &mine));
    ASSERT_EQ(sent.index, mine.index);
    EXPECT_EQ(sent.generation + 1, mine.generation) << "moved on: guest 1's reference is dead";
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &sent, 1));
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 1)) << "its end takes nothing the host holds";
    void *data;
    uint32_t size;
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &mine, SHMX_SLOT_CLAIMED, kHost, &data, &size));
    EXPECT_EQ(0, shmx_pool_free(&pool_, &mine, kHost));
    shmx_pool_faults_t faults;
    shmx_pool_faults(&pool_, &faults);
    EXPECT_EQ(0u, faults.slots_skipped) << "the host's claim was never given up";
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldReclaimWhatTheHostSentAnEndedGuestWhateverItsOwnerSays) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t a, b, c, held, other;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &a));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &b));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &a, kHost, 3));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &b, kHost, 3));
    ASSERT_EQ(0, Alloc(1, 3, 0, &c));          // guest 3's own claim: the metadata finds it
    ASSERT_EQ(0, Alloc(2000, kHost, 0, &held));  // the host's own
    ASSERT_EQ(0, Alloc(300, 2, 0, &other));    // guest 2's
    // Guest 3 hides what it was sent and makes the host's slot look like its own.
    Store32(&Meta(a.cls, a.index).owner, 2);
    Store32(&Meta(b.cls, b.index).owner, kHost);
    Store32(&Meta(b.cls, b.index).state, SHMX_SLOT_CLAIMED);
    Store32(&Meta(held.cls, held.index).owner, 3);
    EXPECT_EQ(2u, shmx_pool_reclaim_sent(&pool_, 3)) << "what the host sent it, while it may still run";
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 3)) << "then its own claim";
    EXPECT_EQ(0u, Word(a.cls, a.index));
    EXPECT_EQ(0u, Word(b.cls, b.index));
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&Meta(held.cls, held.index).state)) << "the host's slot stays";
    EXPECT_EQ(1u, shmx_pool_host_held(&pool_));
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 3));
    void *data;
    uint32_t size;
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &other, SHMX_SLOT_CLAIMED, 2, &data, &size)) << "guest 2's untouched";
    ASSERT_EQ(0, shmx_pool_free(&pool_, &held, kHost));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &other, 2));
    ExpectAccounted(TotalSlots());
}

TEST_F(PoolTest, ShouldRestoreTheAccountingFromTheLedgerWhenRebuiltAlone) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    shmx_slot_ref_t claimed, taken, guests, f1, f2;
    ASSERT_EQ(0, Alloc(1, kHost, 0, &claimed));
    taken = FromGuest(1, 300);
    ASSERT_EQ(0, Take(taken));
    ASSERT_EQ(0, Alloc(1, 2, 0, &guests));  // a guest's, in the metadata only: it is gone now
    // Guests scribbled on held slots and on free ones (which leaves those off the lists).
    Store32(&Meta(claimed.cls, claimed.index).owner, 1);
    Store32(&Meta(claimed.cls, claimed.index).state, SHMX_SLOT_FREE);
    Store32(&Meta(taken.cls, taken.index).owner, SHMX_OWNER_NONE);
    Store32(&Meta(taken.cls, taken.index).state, SHMX_SLOT_CLAIMED);
    ASSERT_EQ(0, Alloc(1, kHost, 0, &f1));
    ASSERT_EQ(0, Alloc(1, kHost, 0, &f2));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &f1, kHost));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &f2, kHost));
    f1.generation++;
    f2.generation++;
    Store32(&Meta(f1.cls, f1.index).state, SHMX_SLOT_SENT);
    Store32(&Meta(f1.cls, f1.index).owner, kHost);
    Store32(&Meta(f2.cls, f2.index).state, SHMX_SLOT_CLAIMED);
    Store32(&Meta(f2.cls, f2.index).owner, 2);
    Store32(&Meta(2, 0).generation, 77);  // and a generation, of a slot on a list

    shmx_pool_rebuild(&pool_);
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);
    uint32_t listed = 0;
    for (uint32_t c = 0; c < st.class_count; c++) listed += st.free_slots[c];
    EXPECT_EQ(2u, shmx_pool_host_held(&pool_));
    EXPECT_EQ(TotalSlots(), listed + shmx_pool_host_held(&pool_)) << "free + held == total";
    ExpectAccounted(TotalSlots() - 2);
    // The host's slots are as the ledger says, and the host's references to them work.
    EXPECT_EQ(uint32_t{SHMX_SLOT_CLAIMED}, Load32(&Meta(claimed.cls, claimed.index).state));
    EXPECT_EQ(kHost, Load32(&Meta(claimed.cls, claimed.index).owner));
    EXPECT_EQ(claimed.generation, Load32(&Meta(claimed.cls, claimed.index).generation));
    EXPECT_EQ(uint32_t{SHMX_SLOT_SENT}, Load32(&Meta(taken.cls, taken.index).state));
    EXPECT_EQ(kHost, Load32(&Meta(taken.cls, taken.index).owner));
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &guests, 2)) << "the gone guest's reference is spent";
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_free(&pool_, &f1, kHost)) << "so is a forged one";
    ASSERT_EQ(0, shmx_pool_free(&pool_, &claimed, kHost));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &taken, kHost));
    ExpectAccounted(TotalSlots());
    std::vector<shmx_slot_ref_t> all = Exhaust();
    EXPECT_EQ(TotalSlots(), all.size());
}

TEST_F(PoolTest, ShouldKeepALedgerForExtentSlots) {
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    Grower g;
    InstallGrower(&g, 1);
    shmx_slot_ref_t seg_slot, ext;
    ASSERT_EQ(0, Alloc(4096, kHost, 0, &seg_slot));
    ASSERT_EQ(0, Alloc(4096, kHost, 0, &ext)) << "grown";
    ASSERT_EQ(1u, ext.index);
    EXPECT_EQ(uint64_t{ext.generation} << 32 | kHost, Word(2, 1));
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ext, kHost, 1));
    Store32(&Meta(2, 1).owner, kHost);
    EXPECT_EQ(-SHMX_EBADSLOT, Take(ext)) << "refused in an extent too";
    Store32(&Meta(2, 1).owner, 2);
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 1));
    EXPECT_EQ(0u, shmx_pool_reclaim_owner(&pool_, 2));
    ASSERT_EQ(0, shmx_pool_free(&pool_, &seg_slot, kHost));
    ExpectAccounted(TotalSlots());
    shmx_pool_fini(&pool_);
    EXPECT_EQ(-SHMX_ESTATE, shmx_pool_ledger_enable(&pool_)) << "too late once an extent was added";
}

TEST_F(PoolTest, ShouldTakeExactlyOneOfConcurrentDuplicates) {
    Unpin();
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    for (int round = 0; round < 200; round++) {
        shmx_slot_ref_t ref = FromGuest(1, (static_cast<uint32_t>(round) * 37u) % 4097u);
        std::atomic<int> go{0}, wins{0};
        auto taker = [&] {
            while (go.load(std::memory_order_acquire) == 0) {
            }
            if (Take(ref) == 0) wins.fetch_add(1, std::memory_order_relaxed);
        };
        std::thread a(taker), b(taker);
        go.store(1, std::memory_order_release);
        a.join();
        b.join();
        ASSERT_EQ(1, wins.load()) << "round " << round;
        // And of two host frees of what it took, exactly one.
        std::atomic<int> freed{0};
        auto freer = [&] {
            if (shmx_pool_free(&pool_, &ref, kHost) == 0) freed.fetch_add(1, std::memory_order_relaxed);
        };
        std::thread c(freer), d(freer);
        c.join();
        d.join();
        ASSERT_EQ(1, freed.load()) << "round " << round;
    }
    EXPECT_EQ(200u, Faults().refs_refused);
    EXPECT_EQ(0u, shmx_pool_host_held(&pool_));
    ExpectAccounted(TotalSlots());
}

// Host threads and guest threads on one view with a ledger: the host allocates and sends to
// guests, takes what guests send it (each also forged once more), frees; guests free what
// they get, and a reclaimer ends guests now and then. Every legitimate call succeeds, every
// duplicate is refused, and the counts come out exact (TSan runs this too).
TEST_F(PoolTest, ShouldKeepTheLedgerExactWithThreads) {
    Unpin();
    ASSERT_EQ(0, shmx_pool_ledger_enable(&pool_));
    constexpr uint32_t kGuests = 2;
    std::mutex mu;
    std::vector<shmx_slot_ref_t> inbox[kGuests];  // host -> guest
    std::vector<shmx_slot_ref_t> to_host;         // guest -> host
    std::atomic<int> errors{0}, duplicates{0}, taken{0};
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
    auto host = [&](uint32_t seed) {
        std::mt19937 rng(seed);
        while (std::chrono::steady_clock::now() < stop_at) {
            if (rng() % 2 == 0) {
                shmx_slot_ref_t ref;
                int rc = Alloc(rng() % 4097, kHost, kMs, &ref);
                if (rc == -SHMX_EWOULDBLOCK) continue;
                uint32_t g = rng() % kGuests;
                if (rc != 0 || shmx_pool_send(&pool_, &ref, kHost, g) != 0) {
                    errors++;
                    continue;
                }
                std::lock_guard<std::mutex> lock(mu);
                inbox[g].push_back(ref);
            } else {
                shmx_slot_ref_t ref;
                {
                    std::lock_guard<std::mutex> lock(mu);
                    if (to_host.empty()) continue;
                    ref = to_host.back();
                    to_host.pop_back();
                }
                if (Take(ref) != 0) errors++;
                else taken++;
                if (Take(ref) == 0) errors++;  // its duplicate
                else duplicates++;
                if (shmx_pool_free(&pool_, &ref, kHost) != 0) errors++;
            }
        }
    };
    auto guest = [&](uint32_t me) {
        std::mt19937 rng(me + 100);
        while (std::chrono::steady_clock::now() < stop_at) {
            shmx_slot_ref_t ref;
            bool got = false;
            {
                std::lock_guard<std::mutex> lock(mu);
                if (!inbox[me].empty()) {
                    ref = inbox[me].back();
                    inbox[me].pop_back();
                    got = true;
                }
            }
            if (got) {
                if (shmx_pool_free(&pool_, &ref, me) != 0) errors++;
            } else if (Alloc(rng() % 4097, me, kMs, &ref) == 0) {
                if (shmx_pool_send(&pool_, &ref, me, kHost) != 0) errors++;
                std::lock_guard<std::mutex> lock(mu);
                to_host.push_back(ref);
            }
        }
    };
    std::vector<std::thread> threads;
    threads.emplace_back(host, 1u);
    threads.emplace_back(host, 2u);
    for (uint32_t g = 0; g < kGuests; g++) threads.emplace_back(guest, g);
    for (std::thread &t : threads) t.join();
    EXPECT_EQ(0, errors.load());
    EXPECT_GT(taken.load(), 0);
    EXPECT_EQ(taken.load(), duplicates.load());
    // Guests end: what the host sent them and they never freed comes back by the ledger.
    for (uint32_t g = 0; g < kGuests; g++) shmx_pool_reclaim_owner(&pool_, g);
    for (const shmx_slot_ref_t &ref : to_host) EXPECT_EQ(0, shmx_pool_free(&pool_, &ref, kHost));
    EXPECT_EQ(0u, shmx_pool_host_held(&pool_));
    ExpectAccounted(TotalSlots());
}

// ---- stress: threads, two mappings, processes ----------------------------------------

// One worker of the stress tests: random allocations (any size, so every class and the
// fallback to larger ones), waits when the pool is empty, frees; every slot it holds is
// filled with its own byte, so a slot handed to two holders at once shows a foreign byte.
struct StressWorker {
    StressWorker(shmx_pool_t *p, uint32_t o, uint32_t s) : pool(p), owner(o), seed(s) {}

    shmx_pool_t *pool;
    uint32_t owner;
    uint32_t seed;
    int errors = 0;
    std::vector<shmx_slot_ref_t> held;

    void Run(std::chrono::steady_clock::time_point stop_at, uint32_t max_held) {
        std::mt19937 rng(seed);
        const uint8_t mark = static_cast<uint8_t>(0x40 + owner);
        while (std::chrono::steady_clock::now() < stop_at) {
            if (held.size() < max_held && rng() % 2 == 0) {
                uint32_t size = rng() % 4097;
                shmx_slot_ref_t ref;
                // A zero timeout first: if that finds every fitting class empty, the second
                // call must wait for another holder's free.
                int rc = shmx_pool_alloc(pool, size, owner, shmx_deadline(0), &kIdleOf, &ref);
                if (rc == -SHMX_EWOULDBLOCK) rc = shmx_pool_alloc(pool, size, owner, shmx_deadline(20 * kMs), &kIdleOf, &ref);
                if (rc == -SHMX_EWOULDBLOCK) continue;  // all held by others for 20 ms: try again
                void *data;
                uint32_t got;
                if (rc != 0 || shmx_pool_resolve(pool, &ref, SHMX_SLOT_CLAIMED, owner, &data, &got) != 0) {
                    errors++;
                    continue;
                }
                memset(data, mark, got);
                held.push_back(ref);
            } else if (!held.empty()) {
                size_t k = rng() % held.size();
                shmx_slot_ref_t ref = held[k];
                held.erase(held.begin() + static_cast<long>(k));
                void *data;
                uint32_t got;
                if (shmx_pool_resolve(pool, &ref, SHMX_SLOT_CLAIMED, owner, &data, &got) != 0) {
                    errors++;
                    continue;
                }
                const uint8_t *p = static_cast<const uint8_t *>(data);
                for (uint32_t b = 0; b < got; b += 61) {
                    if (p[b] != mark) {
                        errors++;
                        break;
                    }
                }
                if (shmx_pool_free(pool, &ref, owner) != 0) errors++;
            }
        }
        for (const shmx_slot_ref_t &ref : held) errors += shmx_pool_free(pool, &ref, owner) != 0;
        held.clear();
    }

    static constexpr shmx_idle_t kIdleOf = {50, 2};
};

TEST_F(PoolTest, ShouldKeepExactCountsWithThreadsOnTwoMappingsOfOneMemfd) {
    Unpin();
    // The same memfd mapped a second time, at another address, with its own view of the pool.
    shmx_segment_t second;
    ASSERT_EQ(0, shmx_segment_attach_fd(dup(seg_.fd), 1000 * kMs, &second));
    ASSERT_NE(seg_.base, second.base);
    shmx_pool_t other;
    shmx_pool_init(&other, second.base, &second.layout, &second.config, 0);

    constexpr int kThreads = 4;
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    std::vector<StressWorker> w;
    for (int t = 0; t < kThreads; t++)
        w.emplace_back(t % 2 == 0 ? &pool_ : &other, static_cast<uint32_t>(t + 1), 99u + static_cast<uint32_t>(t));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) threads.emplace_back([&, t] { w[t].Run(stop_at, 3); });
    for (std::thread &th : threads) th.join();

    for (const StressWorker &x : w) EXPECT_EQ(0, x.errors) << "owner " << x.owner;
    /* 4 threads holding up to 3 of 7 slots run the pool dry and fall back to larger classes
     * whenever they run at once; how often depends on scheduling (a loaded or sanitized run may
     * barely overlap them), so this test checks the accounting, and waiting and falling back have
     * tests of their own (ShouldWakeAWaitingAlloc..., ShouldFallBackToALargerClassWhenOneIsEmpty). */
    ExpectAccounted(TotalSlots());
    shmx_segment_close(&second);
}

TEST_F(PoolTest, ShouldKeepExactCountsWithProcessesSharingThePool) {
    Unpin();
    constexpr int kChildren = 2;
    std::vector<pid_t> pids;
    for (int i = 0; i < kChildren; i++) {
        int fd = dup(seg_.fd);
        ASSERT_GE(fd, 0);
        pid_t pid = fork();
        if (pid == 0) {
            shmx_segment_t mine;
            if (shmx_segment_attach_fd(fd, 1000 * kMs, &mine) != 0) _exit(100);
            shmx_pool_t pool;
            shmx_pool_init(&pool, mine.base, &mine.layout, &mine.config, 0);
            StressWorker x(&pool, static_cast<uint32_t>(10 + i), 7u + static_cast<uint32_t>(i));
            x.Run(std::chrono::steady_clock::now() + std::chrono::milliseconds(1000), 3);
            _exit(x.errors > 0 ? 1 : 0);
        }
        close(fd);
        ASSERT_GT(pid, 0);
        pids.push_back(pid);
    }
    StressWorker mine(&pool_, 20, 5);
    mine.Run(std::chrono::steady_clock::now() + std::chrono::milliseconds(1000), 3);
    EXPECT_EQ(0, mine.errors);
    for (pid_t pid : pids) {
        int status = 0;
        ASSERT_EQ(pid, waitpid(pid, &status, 0));
        ASSERT_TRUE(WIFEXITED(status));
        EXPECT_NE(1, WEXITSTATUS(status)) << "a child saw a wrong byte or a failed call";
        EXPECT_NE(100, WEXITSTATUS(status));
    }
    /* Whether anyone had to wait depends on scheduling (a loaded machine may never run
     * the processes at once); the wake across processes is its own test above. */
    ExpectAccounted(TotalSlots());
}

// ---- extents ------------------------------------------------------------------------------

TEST_F(PoolTest, ShouldGrowThroughTheHookWhenEveryFittingClassIsEmpty) {
    Grower g;
    InstallGrower(&g, 4);
    std::vector<shmx_slot_ref_t> refs;
    shmx_slot_ref_t ref;
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(0, Alloc(1, kHost, 0, &ref));
        refs.push_back(ref);
    }
    EXPECT_EQ(0, g.calls.load()) << "larger classes still had slots";
    ASSERT_EQ(0, Alloc(2000, kHost, 0, &ref));
    refs.push_back(ref);
    EXPECT_EQ(0, g.calls.load());

    // Class 2 (4096) is empty now: a 4096-byte allocation asks for an extent of class 2.
    ASSERT_EQ(0, Alloc(4096, kHost, 0, &ref)) << "grown on the spot, so a zero timeout is enough";
    EXPECT_EQ(1, g.calls.load());
    ASSERT_EQ(1u, g.extents.size());
    EXPECT_EQ(2u, ref.cls);
    EXPECT_EQ(1u, ref.index) << "extent indexes continue the class's";
    EXPECT_EQ(1u, g.extents[0].count) << "extent_bytes 4096 holds one 4096-byte slot";
    void *data;
    uint32_t size;
    ASSERT_EQ(0, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_CLAIMED, kHost, &data, &size));
    shmx_extent_layout_t lay;
    ASSERT_EQ(0, shmx_extent_layout(4096, 1, &lay));
    EXPECT_EQ(g.extents[0].base + lay.data_offset, data) << "the slot lives in the extent";
    memset(data, 0x5A, size);
    void *rbase;
    size_t rlen;
    ASSERT_EQ(0, shmx_pool_region(&pool_, 0, &rbase, &rlen));
    EXPECT_EQ(g.extents[0].base, rbase);
    EXPECT_EQ(g.extents[0].bytes, rlen);
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_region(&pool_, 1, &rbase, &rlen));
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_region(&pool_, -1, &rbase, &rlen));
    refs.push_back(ref);

    // Extent slots send, resolve, free and reclaim like the segment's.
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ref, kHost, 3));
    EXPECT_EQ(0, shmx_pool_resolve(&pool_, &ref, SHMX_SLOT_SENT, 3, &data, &size));
    ExpectAccounted(TotalSlots() - 6);
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 3));
    refs.pop_back();
    ExpectAccounted(TotalSlots() - 5);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    ExpectAccounted(TotalSlots());
    EXPECT_EQ(8u, TotalSlots());
}

TEST_F(PoolTest, ShouldGrowTheSmallestFittingClassOnlyUpToItsCap) {
    Grower g;
    InstallGrower(&g, 1);
    std::vector<shmx_slot_ref_t> refs = Exhaust();
    // Everything taken, then one extent of the smallest fitting class (0: 16 slots), used up.
    ASSERT_EQ(1u, g.extents.size());
    EXPECT_EQ(0u, g.extents[0].cls);
    EXPECT_EQ(16u, g.extents[0].count);
    EXPECT_EQ(4u, g.extents[0].first);
    g.max_extents = 2;
    shmx_slot_ref_t ref;
    ASSERT_EQ(0, Alloc(300, kHost, 0, &ref)) << "class 1 is the smallest that fits 300 bytes";
    refs.push_back(ref);
    EXPECT_EQ(1u, ref.cls);
    EXPECT_EQ(2u, ref.index);
    ASSERT_EQ(2u, g.extents.size());
    EXPECT_EQ(4u, g.extents[1].count);
    // At the cap nothing grows: an allocation waits for a free, and gives up at its deadline.
    while (Alloc(300, kHost, 0, &ref) == 0) refs.push_back(ref);
    EXPECT_EQ(-SHMX_EWOULDBLOCK, Alloc(1, kHost, 5 * kMs, &ref, &kSleepAtOnce));
    EXPECT_EQ(2u, g.extents.size());
    ExpectAccounted(0);
    // ... and gets a slot as soon as one is freed.
    shmx_slot_ref_t got{};
    int rc = 1;
    std::thread waiter([&] { rc = Alloc(1, 1, 30000 * kMs, &got, &kSleepAtOnce); });
    usleep(20 * 1000);
    ASSERT_EQ(0, shmx_pool_free(&pool_, &refs[10], kHost));
    waiter.join();
    ASSERT_EQ(0, rc);
    EXPECT_EQ(refs[10].index, got.index);
    refs[10] = got;
    ASSERT_EQ(0, shmx_pool_free(&pool_, &refs[10], 1));
    refs.erase(refs.begin() + 10);
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    ExpectAccounted(TotalSlots());
    EXPECT_EQ(7u + 16u + 4u, TotalSlots());
}

TEST_F(PoolTest, ShouldRefuseExtentsThatDoNotContinueTheirClass) {
    shmx_extent_t e;
    ASSERT_EQ(0, shmx_extent_create(0, 256, 4, 16, &e));
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 5, 16, e.base, e.bytes)) << "a gap";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 3, 16, e.base, e.bytes)) << "an overlap";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 4, 17, e.base, e.bytes)) << "more than a full one";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 4, 16, e.base, e.bytes - 1)) << "wrong size";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 3, 4, 16, e.base, e.bytes)) << "no such class";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 4, 0, e.base, e.bytes)) << "empty";
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_push_extent(&pool_, 0, 4)) << "not added";
    shmx_extent_t shorter;
    ASSERT_EQ(0, shmx_extent_create(0, 256, 4, 3, &shorter));
    ASSERT_EQ(0, shmx_pool_add_extent(&pool_, 0, 4, 3, shorter.base, shorter.bytes)) << "a short last one";
    EXPECT_EQ(7u, ClassSlots(0));
    EXPECT_EQ(-SHMX_EINVAL, shmx_pool_add_extent(&pool_, 0, 7, 16, e.base, e.bytes)) << "nothing after it";
    ASSERT_EQ(0, shmx_pool_push_extent(&pool_, 0, 4));
    ExpectAccounted(TotalSlots());
    shmx_extent_close(&e);
    shmx_extent_close(&shorter);
}

TEST_F(PoolTest, ShouldMapAnExtentWhenALookupFirstMeetsOneOfItsSlots) {
    Grower g;
    InstallGrower(&g, 4);
    shmx_segment_t second;
    shmx_pool_t guest;
    Mapper m;
    ASSERT_NO_FATAL_FAILURE(AttachGuest(&g, &second, &guest, &m));

    std::vector<shmx_slot_ref_t> refs = Exhaust();  // grows class 0 once, takes all
    shmx_slot_ref_t ext = refs.back();
    ASSERT_GE(ext.index, 4u);
    void *data;
    uint32_t size;
    ASSERT_EQ(0, shmx_pool_resolve(&pool_, &ext, SHMX_SLOT_CLAIMED, kHost, &data, &size));
    memset(data, 0xC3, size);
    ASSERT_EQ(0, shmx_pool_send(&pool_, &ext, kHost, 1));

    EXPECT_EQ(0, m.calls.load()) << "nothing mapped before it is needed";
    void *seen;
    ASSERT_EQ(0, shmx_pool_resolve(&guest, &ext, SHMX_SLOT_SENT, 1, &seen, &size));
    EXPECT_EQ(1, m.calls.load());
    EXPECT_NE(data, seen) << "its own mapping";
    for (uint32_t b = 0; b < size; b++) ASSERT_EQ(0xC3, static_cast<const uint8_t *>(seen)[b]) << b;
    ASSERT_EQ(0, shmx_pool_resolve(&guest, &refs[4], SHMX_SLOT_CLAIMED, kHost, &seen, &size));
    EXPECT_EQ(1, m.calls.load()) << "mapped once";
    const shmx_slot_ref_t beyond = {0, ClassSlots(0), 1, 0};
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_pool_resolve(&guest, &beyond, SHMX_SLOT_FREE, SHMX_OWNER_NONE, &seen, &size));
    EXPECT_EQ(2, m.calls.load()) << "an index past everything asks, is told no, and is refused";

    // The guest frees what it was sent; the host's view sees it on a list.
    ASSERT_EQ(0, shmx_pool_free(&guest, &ext, 1));
    refs.pop_back();
    for (const shmx_slot_ref_t &r : refs) ASSERT_EQ(0, shmx_pool_free(&pool_, &r, kHost));
    ExpectAccounted(TotalSlots());
    shmx_segment_close(&second);
}

TEST_F(PoolTest, ShouldKeepExactCountsWhileThreadsGrowThePoolAndMapItLazily) {
    Unpin();
    Grower g;
    InstallGrower(&g, 6);
    shmx_segment_t second;
    shmx_pool_t guest;
    Mapper m;
    ASSERT_NO_FATAL_FAILURE(AttachGuest(&g, &second, &guest, &m));
    // The guest's grow hook asks the grower directly (the host's service thread, in real life).
    struct Ask {
        static void Grow(void *arg, uint32_t cls) { Grower::Grow(static_cast<Mapper *>(arg)->grower, cls); }
    };
    guest.grow = Ask::Grow;

    constexpr int kThreads = 4;
    const auto stop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    std::vector<StressWorker> w;
    for (int t = 0; t < kThreads; t++)
        w.emplace_back(t % 2 == 0 ? &pool_ : &guest, static_cast<uint32_t>(t + 1), 31u + static_cast<uint32_t>(t));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) threads.emplace_back([&, t] { w[t].Run(stop_at, 8); });
    for (std::thread &th : threads) th.join();
    for (const StressWorker &x : w) EXPECT_EQ(0, x.errors) << "owner " << x.owner;
    EXPECT_GT(g.extents.size(), 0u) << "32 slots wanted of 7: the pool grew";
    EXPECT_LE(g.extents.size(), 6u);
    ExpectAccounted(TotalSlots());
    shmx_segment_close(&second);
}

}  // namespace
