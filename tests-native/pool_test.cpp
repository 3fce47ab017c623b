// The slot pool: allocation, ownership, waiting, reclaim, ABA and corrupted lists.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "private_headers.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr uint32_t kHost = SHMX_OWNER_HOST;

uint32_t Load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void Store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

class PoolTest : public ::testing::Test {
  protected:
    void SetUp() override {
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
        ASSERT_EQ(0, shmx_segment_create(&cfg, "pooltest", &seg_));
        shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
    }

    void TearDown() override { shmx_segment_close(&seg_); }

    int Alloc(uint32_t size, uint32_t owner, int64_t timeout_ns, shmx_slot_ref_t *ref,
              const shmx_idle_t *idle = &kIdle) {
        return shmx_pool_alloc(&pool_, size, owner, shmx_deadline(timeout_ns), idle, ref);
    }

    shmx_slot_meta_t &Meta(uint32_t cls, uint32_t index) { return pool_.cls[cls].meta[index]; }
    uint64_t &Head(uint32_t cls) { return pool_.ctl->free_head[cls][0]; }

    // free + claimed + sent == total for every class, and the free count is what the lists hold.
    void ExpectAccounted(uint32_t expect_free_total = UINT32_MAX) {
        shmx_pool_stats_t st;
        shmx_pool_stats(&pool_, &st);
        ASSERT_EQ(pool_.class_count, st.class_count);
        uint32_t free_total = 0;
        for (uint32_t c = 0; c < st.class_count; c++) {
            SCOPED_TRACE(c);
            EXPECT_EQ(pool_.cls[c].slot_count, st.total_slots[c]);
            EXPECT_EQ(st.total_slots[c], st.free_slots[c] + st.claimed_slots[c] + st.sent_slots[c]);
            uint32_t free_state = 0;
            for (uint32_t i = 0; i < pool_.cls[c].slot_count; i++)
                free_state += Load32(&Meta(c, i).state) == SHMX_SLOT_FREE;
            EXPECT_EQ(free_state, st.free_slots[c]) << "every FREE slot is on the list, and only those";
            free_total += st.free_slots[c];
        }
        if (expect_free_total != UINT32_MAX) {
            EXPECT_EQ(expect_free_total, free_total);
        }
    }

    uint32_t TotalSlots() const {
        uint32_t n = 0;
        for (uint32_t c = 0; c < pool_.class_count; c++) n += pool_.cls[c].slot_count;
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

    static constexpr shmx_idle_t kIdle = {100, 10};
    static constexpr shmx_idle_t kSleepAtOnce = {0, 0};
    shmx_segment_t seg_;
    shmx_pool_t pool_;
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

TEST_F(PoolTest, ShouldDetectAnOutOfRangeLink) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    Store32(&Meta(0, top).next, 1000);
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_ECORRUPT, Alloc(1, kHost, 0, &ref));
    EXPECT_EQ(-SHMX_ECORRUPT, Alloc(1, kHost, 1000 * kMs, &ref)) << "reported, not waited on";
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);
    EXPECT_LE(st.free_slots[0], 4u);
}

TEST_F(PoolTest, ShouldDetectAnOutOfRangeHead) {
    __atomic_store_n(&Head(1), (uint64_t{7} << 32) | 3u, __ATOMIC_RELEASE);  // class 1 has 2 slots
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_ECORRUPT, Alloc(300, kHost, 0, &ref));
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);
    EXPECT_EQ(0u, st.free_slots[1]);
}

TEST_F(PoolTest, ShouldDetectACycleWithBoundedWork) {
    // Class 0: 0 -> 1 -> 2 -> 3; make it 0 -> 1 -> 0 -> ...
    const uint32_t first = static_cast<uint32_t>(Head(0)) - 1;
    const uint32_t second = Load32(&Meta(0, first).next) - 1;
    Store32(&Meta(0, second).next, first + 1);
    shmx_pool_stats_t st;
    shmx_pool_stats(&pool_, &st);  // returns: its walk is bounded
    EXPECT_LE(st.free_slots[0], 4u);

    shmx_slot_ref_t ref;
    int rc = 0, allocs = 0;
    while ((rc = Alloc(1, kHost, 0, &ref)) == 0 && allocs <= 4) allocs++;
    EXPECT_EQ(-SHMX_ECORRUPT, rc);
    EXPECT_EQ(2, allocs) << "the first slot seen twice is the one reported";
}

TEST_F(PoolTest, ShouldDetectASelfLoop) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    Store32(&Meta(0, top).next, top + 1);
    shmx_slot_ref_t ref;
    EXPECT_EQ(0, Alloc(1, kHost, 0, &ref));
    EXPECT_EQ(-SHMX_ECORRUPT, Alloc(1, kHost, 0, &ref));
}

TEST_F(PoolTest, ShouldDetectASlotOnTheListThatIsNotFree) {
    const uint32_t top = static_cast<uint32_t>(Head(0)) - 1;
    Store32(&Meta(0, top).state, SHMX_SLOT_SENT);
    shmx_slot_ref_t ref;
    EXPECT_EQ(-SHMX_ECORRUPT, Alloc(1, kHost, 0, &ref));
    EXPECT_EQ(uint32_t{SHMX_SLOT_SENT}, Load32(&Meta(0, top).state)) << "not taken over";
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

}  // namespace
