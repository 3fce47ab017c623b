/*
 * Channel tests: a host-side and a guest-side channel over one segment in one
 * process (and a forked guest), sending every size class both ways, the
 * claim/commit/abort and receive/release rules, batches, copies, pool
 * backpressure, corrupted frames, close and hang-up; then the same over the
 * uds transport on a socketpair. Ends with an informal throughput print.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "private_headers.h"
#include "test_pattern.h"

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kWait = 5000 * kMs; /* generous bound for anything that must happen */

/* Counts of the whole pool. */
struct PoolCounts {
    uint32_t free = 0, claimed = 0, sent = 0, total = 0;
};

class ChannelTest : public ::testing::Test {
  protected:
    void SetUp() override { shmx_config_default(&cfg_); }

    void TearDown() override {
        shmx_channel_free(host_);
        shmx_channel_free(guest_);
        if (seg_open_) shmx_segment_close(&seg_);
    }

    /* Segment with cfg_, entry 0 made ACTIVE, both sides opened; the sockets (or -1) go to the channels. */
    void Open(int host_sock = -1, int guest_sock = -1) {
        ASSERT_EQ(0, shmx_segment_create(&cfg_, unique_label("chtest").c_str(), &seg_));
        seg_open_ = true;
        shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
        __atomic_store_n(word<uint32_t>(&shmx_segment_channel(&seg_, 0)->state), (uint32_t)SHMX_CHANNEL_ACTIVE, __ATOMIC_RELEASE);
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 1, 0, host_sock, &host_));
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 0, 0, guest_sock, &guest_));
    }

    PoolCounts Counts() {
        shmx_pool_stats_t st;
        shmx_pool_stats(&pool_, &st);
        PoolCounts c;
        for (uint32_t i = 0; i < st.class_count; i++) {
            c.free += st.free_slots[i];
            c.claimed += st.claimed_slots[i];
            c.sent += st.sent_slots[i];
            c.total += st.total_slots[i];
        }
        return c;
    }

    void ExpectPoolIdle() {
        PoolCounts c = Counts();
        EXPECT_EQ(c.total, c.free);
        EXPECT_EQ(0u, c.claimed);
        EXPECT_EQ(0u, c.sent);
    }

    /* The sizes every transport must carry: around the inline limit and the class sizes, up to the maximum. */
    std::vector<uint32_t> Sizes() const {
        uint32_t im = cfg_.inline_max;
        return {0, 1, im - 1, im, im + 1, 4096, 16384, 16385, 131073, cfg_.max_payload};
    }

    shmx_config_t cfg_{};
    shmx_segment_t seg_{};
    bool seg_open_ = false;
    shmx_pool_t pool_{};
    shmx_channel_t *host_ = nullptr;
    shmx_channel_t *guest_ = nullptr;
};

/* Send @len pattern bytes (seed @seed) and check the received view byte for byte. */
void SendAndCheck(shmx_channel_t *tx, shmx_channel_t *rx, uint32_t len, uint32_t seed, int64_t want_id) {
    std::vector<uint8_t> p = pattern(seed, len);
    ASSERT_EQ(want_id, shmx_channel_send(tx, SHMX_TYPE_APPLICATION + 1, SHMX_FLAG_MORE, 0, p.data(), len, kWait));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(rx, &m, kWait)) << "len " << len;
    EXPECT_EQ(len, m.length);
    EXPECT_EQ(SHMX_TYPE_APPLICATION + 1, m.type);
    EXPECT_EQ(SHMX_FLAG_MORE, m.flags);
    EXPECT_EQ(static_cast<uint64_t>(want_id), m.id);
    EXPECT_EQ(-1, first_mismatch(m.data, seed, len)) << "len " << len;
    EXPECT_EQ(0, shmx_channel_release(rx, &m));
}

TEST_F(ChannelTest, ShouldCarryEverySizeBothWaysWithSequentialIds) {
    Open();
    int64_t id = 1;
    for (uint32_t len : Sizes()) {
        SendAndCheck(host_, guest_, len, len + 1, id);
        SendAndCheck(guest_, host_, len, len + 2, id);
        id++;
    }
    ExpectPoolIdle();
}

/* The host opens an entry it has just formatted from its own truth: whatever a peer wrote into the
 * entry meanwhile (positions, epoch, state) is never read back. */
TEST_F(ChannelTest, HostShouldOpenFromItsOwnTruthWhateverThePeerWroteIntoTheEntry) {
    ASSERT_EQ(0, shmx_segment_create(&cfg_, unique_label("chtruth").c_str(), &seg_));
    seg_open_ = true;
    shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
    shmx_channel_ctl_t *entry = shmx_segment_channel(&seg_, 0);
    for (int r = SHMX_RING_HOST_TO_GUEST; r <= SHMX_RING_GUEST_TO_HOST; r++) {
        shmx_ring_ctl_t *ctl = shmx_segment_ring_ctl(&seg_, 0, r);
        __atomic_store_n(word<uint64_t>(&ctl->tail), 0xdead0000beefull, __ATOMIC_RELEASE);
        __atomic_store_n(word<uint64_t>(&ctl->head), 3ull, __ATOMIC_RELEASE);
    }
    __atomic_store_n(word<uint32_t>(&entry->epoch), 77u, __ATOMIC_RELEASE);
    __atomic_store_n(word<uint32_t>(&entry->state), (uint32_t)SHMX_CHANNEL_FREE, __ATOMIC_RELEASE);

    ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 1, 5, -1, &host_)) << "positions are the host's own: 0";
    EXPECT_EQ(5u, shmx_channel_epoch(host_)) << "the epoch is the host's record, not the entry's word";
    shmx_channel_t *guest = nullptr;
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_channel_open_shm(&seg_, &pool_, 0, 0, 5, -1, &guest))
        << "a guest validates the published positions it starts from";

    /* The host's first record lands at offset 0 of its ring, where its own tail says. */
    uint8_t payload[16] = {1, 2, 3};
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, payload, sizeof payload, 0));
    const uint8_t *data = shmx_segment_ring_data(&seg_, 0, SHMX_RING_HOST_TO_GUEST);
    uint64_t header;
    memcpy(&header, data, sizeof header);
    EXPECT_NE(0u, header);
}

/* Adaptive spinning: waits that spin in vain halve the next budget (down to a floor); a wait a
 * spin serves restores it; the busy-spin strategy never adapts. */
TEST_F(ChannelTest, ReceiveShouldCutItsSpinAfterWaitsThatSleptAndRestoreItWhenASpinIsServed) {
    Open();
    shmx_channel_set_idle(guest_, 20000, 0);
    shmx_message_t m;
    EXPECT_EQ(20000u, shmx_channel_spin_budget(guest_));
    for (uint32_t i = 1; i <= 3; i++) {
        ASSERT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 15 * kMs)); /* far longer than 20000 polls */
        EXPECT_EQ(20000u >> i, shmx_channel_spin_budget(guest_)) << "after " << i << " waits that slept";
    }
    for (int i = 0; i < 10; i++) ASSERT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 5 * kMs));
    EXPECT_EQ(64u, shmx_channel_spin_budget(guest_)) << "the floor";

    /* A budget still far longer than the sender's delay once cut: the spin serves the wait. */
    shmx_channel_set_idle(guest_, 1u << 30, 0);
    ASSERT_GT(shmx_channel_spin_budget(guest_), 1u << 16);
    std::thread sender([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        uint8_t b[8] = {0};
        EXPECT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, sizeof b, kMs * 1000));
    });
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 10000 * kMs));
    sender.join();
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_EQ(1u << 30, shmx_channel_spin_budget(guest_)) << "restored by a wait the spin served";

    shmx_channel_set_idle(guest_, UINT32_MAX, 0);
    ASSERT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 1 * kMs));
    EXPECT_EQ(UINT32_MAX, shmx_channel_spin_budget(guest_)) << "busy spinning never adapts";
}

TEST_F(ChannelTest, ShouldUseAnExplicitIdWithoutAdvancingTheSequence) {
    Open();
    uint8_t b = 7;
    EXPECT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    EXPECT_EQ(77, shmx_channel_send(host_, SHMX_TYPE_RESPONSE, 0, 77, &b, 1, 0));
    EXPECT_EQ(2, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    uint64_t want[] = {1, 77, 2};
    for (uint64_t w : want) {
        shmx_message_t m;
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
        EXPECT_EQ(w, m.id);
        EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    }
}

TEST_F(ChannelTest, ShouldRejectPayloadsAboveTheMaximumAndBadFlags) {
    Open();
    void *p;
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_claim(host_, cfg_.max_payload + 1, 0, &p));
    /* A send above max_payload fragments (stream_test); above max_message it is refused. */
    std::vector<uint8_t> big((size_t)cfg_.max_message + 1);
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, big.data(), cfg_.max_message + 1, 0));
    EXPECT_EQ(-SHMX_EFLAGS, shmx_channel_send(host_, SHMX_TYPE_DATA, 0x80, 0, big.data(), 10, 0));
    EXPECT_EQ(cfg_.max_payload, shmx_channel_max_payload(host_));
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldEnforceTheClaimCommitSequence) {
    Open();
    void *p;
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_abort(host_));
    ASSERT_EQ(0, shmx_channel_claim(host_, 10, 0, &p));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_claim(host_, 10, 0, &p));
    std::memcpy(p, pattern(3, 10).data(), 10);
    EXPECT_EQ(1, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    /* A commit with reserved flags sends nothing and drops the claim. */
    ASSERT_EQ(0, shmx_channel_claim(host_, 20000, 0, &p));
    EXPECT_EQ(-SHMX_EFLAGS, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0x02, 0));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_abort(host_));
    ExpectPoolIdle();
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(-1, first_mismatch(m.data, 3, 10));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 0));
}

TEST_F(ChannelTest, ShouldClaimSmallPayloadsInTheRingAndLargeOnesInASlot) {
    Open();
    void *p;
    ASSERT_EQ(0, shmx_channel_claim(host_, cfg_.inline_max, 0, &p));
    uint8_t *ring = shmx_segment_ring_data(&seg_, 0, SHMX_RING_HOST_TO_GUEST);
    EXPECT_GE(static_cast<uint8_t *>(p), ring);
    EXPECT_LE(static_cast<uint8_t *>(p) + cfg_.inline_max, ring + cfg_.ring_bytes);
    EXPECT_EQ(0u, Counts().claimed);
    EXPECT_EQ(0, shmx_channel_abort(host_));
    ASSERT_EQ(0, shmx_channel_claim(host_, cfg_.inline_max + 1, 0, &p));
    EXPECT_EQ(1u, Counts().claimed);
    void *base;
    size_t len;
    ASSERT_EQ(0, shmx_channel_region(host_, 0, &base, &len));
    EXPECT_GE(static_cast<uint8_t *>(p), static_cast<uint8_t *>(base));
    EXPECT_LE(static_cast<uint8_t *>(p) + cfg_.inline_max + 1, static_cast<uint8_t *>(base) + len);
    EXPECT_EQ(-SHMX_EINVAL, shmx_channel_region(host_, 1, &base, &len));
    EXPECT_EQ(0, shmx_channel_abort(host_));
    ExpectPoolIdle();
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(SHMX_TRANSPORT_SHM, shmx_channel_transport(host_));
    EXPECT_EQ(0u, shmx_channel_index(guest_));
}

TEST_F(ChannelTest, ShouldHoldViewsUntilReleasedInReceiveOrder) {
    Open();
    const uint32_t lens[] = {100, 20000, 5};
    for (uint32_t i = 0; i < 3; i++) {
        auto p = pattern(i, lens[i]);
        ASSERT_EQ(i + 1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), lens[i], 0));
    }
    shmx_message_t m[3];
    for (uint32_t i = 0; i < 3; i++) ASSERT_EQ(0, shmx_channel_receive(guest_, &m[i], 0));
    EXPECT_EQ(1u, Counts().sent);
    /* Every view stays valid while later ones are taken. */
    for (uint32_t i = 0; i < 3; i++) EXPECT_EQ(-1, first_mismatch(m[i].data, i, lens[i]));
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &m[1]));
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &m[2]));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[0]));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[1]));
    EXPECT_EQ(0u, Counts().sent); /* the slot returned at its release, not later */
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &m[1]));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[2]));
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &m[2]));
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldReturnHeldSlotsWhenTheChannelIsFreed) {
    Open();
    auto p = pattern(1, 30000);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 30000, 0));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    void *claim;
    ASSERT_EQ(0, shmx_channel_claim(guest_, 40000, 0, &claim));
    EXPECT_EQ(1u, Counts().sent);
    EXPECT_EQ(1u, Counts().claimed);
    shmx_channel_free(guest_);
    guest_ = nullptr;
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldReceiveABatchWaitingOnlyForTheFirst) {
    Open();
    shmx_message_t m[8];
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive_batch(guest_, m, 8, 0));
    for (uint32_t i = 0; i < 5; i++) {
        auto p = pattern(i, 10 + i * 5000);
        ASSERT_EQ(i + 1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 10 + i * 5000, 0));
    }
    ASSERT_EQ(3, shmx_channel_receive_batch(guest_, m, 3, 0));
    ASSERT_EQ(2, shmx_channel_receive_batch(guest_, m + 3, 8, 0));
    for (uint32_t i = 0; i < 5; i++) {
        EXPECT_EQ(i + 1, m[i].id);
        EXPECT_EQ(-1, first_mismatch(m[i].data, i, 10 + i * 5000));
        EXPECT_EQ(0, shmx_channel_release(guest_, &m[i]));
    }
    /* A waiting batch wakes for a message sent meanwhile. */
    std::thread later([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        uint8_t b = 1;
        shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, kWait);
    });
    EXPECT_EQ(1, shmx_channel_receive_batch(guest_, m, 8, kWait));
    later.join();
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[0]));
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldKeepTheMessageWhenTheCopyBufferIsTooSmall) {
    Open();
    for (uint32_t len : {100u, 20000u}) {
        auto p = pattern(len, len);
        ASSERT_GT(shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), len, 0), 0);
        std::vector<uint8_t> dst(len);
        shmx_message_t meta{};
        EXPECT_EQ(-SHMX_ESHORT, shmx_channel_receive_copy(guest_, dst.data(), len - 1, &meta, 0));
        EXPECT_EQ(len, meta.length);
        EXPECT_EQ(-SHMX_ESHORT, shmx_channel_receive_copy(guest_, dst.data(), 0, nullptr, 0));
        meta = shmx_message_t{};
        ASSERT_EQ(len, shmx_channel_receive_copy(guest_, dst.data(), len, &meta, 0));
        EXPECT_EQ(len, meta.length);
        EXPECT_EQ(dst.data(), meta.data);
        EXPECT_EQ(SHMX_TYPE_DATA, meta.type);
        EXPECT_EQ(-1, first_mismatch(dst.data(), len, len));
    }
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldKeepAShortCopiedMessageAcrossTheRingsWrap) {
    Open();
    /* 1000-byte records step past the end of the ring: one of them follows a padding record. */
    auto p = pattern(6, 1000);
    std::vector<uint8_t> dst(1000);
    uint32_t wraps = 0;
    for (int i = 0; i < 3 * static_cast<int>(cfg_.ring_bytes / 1000u); i++) {
        uint64_t before = host_->tx.tail;
        ASSERT_GT(shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 1000, 0), 0);
        if ((before & (cfg_.ring_bytes - 1)) > ((host_->tx.tail - 1) & (cfg_.ring_bytes - 1))) wraps++;
        ASSERT_EQ(-SHMX_ESHORT, shmx_channel_receive_copy(guest_, dst.data(), 999, nullptr, 0));
        ASSERT_EQ(1000, shmx_channel_receive_copy(guest_, dst.data(), dst.size(), nullptr, 0));
        ASSERT_EQ(-1, first_mismatch(dst.data(), 6, 1000));
    }
    EXPECT_GE(wraps, 2u);
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
}

TEST_F(ChannelTest, ShouldCopyBehindHeldViewsWithoutReleasingThem) {
    Open();
    for (uint32_t i = 0; i < 3; i++) {
        auto p = pattern(i, 50);
        ASSERT_GT(shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 50, 0), 0);
    }
    shmx_message_t held;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &held, 0));
    uint8_t dst[50];
    ASSERT_EQ(50, shmx_channel_receive_copy(guest_, dst, sizeof dst, nullptr, 0));
    EXPECT_EQ(-1, first_mismatch(dst, 1, 50));
    EXPECT_EQ(-1, first_mismatch(held.data, 0, 50)); /* still intact: its space was not given back */
    uint64_t head = guest_->rx.head;
    EXPECT_EQ(0, shmx_channel_release(guest_, &held));
    EXPECT_GT(guest_->rx.head, head);
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(-1, first_mismatch(m.data, 2, 50));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
}

/* A pool of two 16 KiB slots: the third large message must wait for a release. */
TEST_F(ChannelTest, ShouldBlockTheSenderUntilTheReceiverReleasesASlot) {
    cfg_.class_count = 1;
    cfg_.class_size[0] = 16384;
    cfg_.class_slots[0] = 2;
    cfg_.max_payload = 16384;
    Open();
    auto p = pattern(9, 16384);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 16384, 0));
    ASSERT_EQ(2, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 16384, 0));
    EXPECT_EQ(-SHMX_EWOULDBLOCK, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 16384, 0));
    EXPECT_EQ(-SHMX_EWOULDBLOCK, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 16384, 5 * kMs));
    shmx_message_t m[2];
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m[0], 0));
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m[1], 0));

    std::atomic<int> sent{0};
    std::thread sender([&] {
        for (int i = 0; i < 4; i++) {
            if (shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 16384, kWait) > 0) sent++;
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_EQ(0, sent.load()); /* no slot is free: nothing can have been sent */
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[0]));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[1]));
    /* Receive the four as they come, releasing each. */
    for (int i = 0; i < 4; i++) {
        shmx_message_t r;
        ASSERT_EQ(0, shmx_channel_receive(guest_, &r, kWait));
        EXPECT_EQ(static_cast<uint64_t>(3 + i), r.id);
        EXPECT_EQ(-1, first_mismatch(r.data, 9, 16384));
        EXPECT_EQ(0, shmx_channel_release(guest_, &r));
    }
    sender.join();
    EXPECT_EQ(4, sent.load());
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldReportACorruptedFrameAndGoOn) {
    Open();
    for (uint32_t len : {64u, 20000u}) {
        void *p;
        ASSERT_EQ(0, shmx_channel_claim(host_, len, 0, &p));
        std::memcpy(p, pattern(1, len).data(), len);
        ASSERT_GT(shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0), 0);
        static_cast<uint8_t *>(p)[len / 2] ^= 0x10; /* a torn write after publication */
        auto q = pattern(2, len);
        ASSERT_GT(shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, q.data(), len, 0), 0);

        shmx_message_t m;
        EXPECT_EQ(-SHMX_ECRC, shmx_channel_receive(guest_, &m, 0));
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
        EXPECT_EQ(-1, first_mismatch(m.data, 2, len));
        EXPECT_EQ(0, shmx_channel_release(guest_, &m));
        ExpectPoolIdle(); /* the bad frame's slot went back too */
    }
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
}

TEST_F(ChannelTest, ShouldDropABadFrameBehindHeldViewsAndReleaseItsSpaceWithThem) {
    Open();
    auto a = pattern(1, 40);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, a.data(), 40, 0));
    void *p;
    ASSERT_EQ(0, shmx_channel_claim(host_, 40, 0, &p));
    std::memcpy(p, a.data(), 40);
    ASSERT_EQ(2, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    static_cast<uint8_t *>(p)[0] ^= 1;
    ASSERT_EQ(3, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, a.data(), 40, 0));

    shmx_message_t m1, m3;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m1, 0));
    EXPECT_EQ(-SHMX_ECRC, shmx_channel_receive(guest_, &m3, 0));
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m3, 0));
    EXPECT_EQ(3u, m3.id);
    EXPECT_EQ(-1, first_mismatch(m1.data, 1, 40)); /* the bad record's release did not free m1's space */
    EXPECT_EQ(0, shmx_channel_release(guest_, &m1));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m3));
    EXPECT_EQ(guest_->rx.head, guest_->rx.read);
}

TEST_F(ChannelTest, ShouldStopABatchBeforeABadFrameAndReportItNext) {
    Open();
    auto a = pattern(1, 40);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, a.data(), 40, 0));
    void *p;
    ASSERT_EQ(0, shmx_channel_claim(host_, 40, 0, &p));
    std::memcpy(p, a.data(), 40);
    ASSERT_EQ(2, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    static_cast<uint8_t *>(p)[39] ^= 1;
    ASSERT_EQ(3, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, a.data(), 40, 0));
    shmx_message_t m[4];
    ASSERT_EQ(1, shmx_channel_receive_batch(guest_, m, 4, 0));
    EXPECT_EQ(-SHMX_ECRC, shmx_channel_receive_batch(guest_, m + 1, 3, 0));
    ASSERT_EQ(1, shmx_channel_receive_batch(guest_, m + 1, 3, 0));
    EXPECT_EQ(3u, m[1].id);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[0]));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[1]));
}

TEST_F(ChannelTest, ShouldDropARecordWithAForgedSlotReferenceAndGoOn) {
    Open();
    auto a = pattern(4, 30000);
    void *p;
    ASSERT_EQ(0, shmx_channel_claim(host_, 30000, 0, &p));
    uint8_t *body = host_->claim_body;
    std::memcpy(p, a.data(), 30000);
    ASSERT_EQ(1, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    shmx_slot_ref_t ref;
    std::memcpy(&ref, body + SHMX_FRAME_HEADER_SIZE, sizeof ref);
    ref.generation += 5; /* stale */
    std::memcpy(body + SHMX_FRAME_HEADER_SIZE, &ref, sizeof ref);
    ASSERT_EQ(2, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, a.data(), 30000, 0));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EBADSLOT, shmx_channel_receive(guest_, &m, 0));
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(2u, m.id);
    EXPECT_EQ(-1, first_mismatch(m.data, 4, 30000));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    /* The forged record's real slot is left SENT to the guest: the host reclaims it by owner. */
    EXPECT_EQ(1u, Counts().sent);
    EXPECT_EQ(1u, shmx_pool_reclaim_owner(&pool_, 0));
    ExpectPoolIdle();
}

TEST_F(ChannelTest, ShouldReportRingCorruptionWithoutConsumingAnything) {
    Open();
    uint8_t b = 1;
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    /* The record header (offset 0 of the ring data) claims a record crossing the end. */
    uint64_t *hdr = reinterpret_cast<uint64_t *>(shmx_segment_ring_data(&seg_, 0, SHMX_RING_HOST_TO_GUEST));
    uint64_t good = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
    __atomic_store_n(hdr, (good & ~0xFFFFFFFFull) | (cfg_.ring_bytes + 8u), __ATOMIC_RELEASE);
    shmx_message_t m;
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_channel_receive(guest_, &m, 0));
    __atomic_store_n(hdr, good, __ATOMIC_RELEASE);
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(ChannelTest, ShouldDropARecordTooShortForAFrameHeader) {
    Open();
    /* A peer publishes an inline record of 8 bytes at offset 0: no room for a frame header. */
    uint8_t *ring = shmx_segment_ring_data(&seg_, 0, SHMX_RING_HOST_TO_GUEST);
    std::memset(ring + 8, 0x55, 8);
    __atomic_store_n(reinterpret_cast<uint64_t *>(ring), (uint64_t)SHMX_RECORD_INLINE << 32 | 8u, __ATOMIC_RELEASE);
    std::vector<uint8_t> dst(64);
    shmx_message_t meta;
    EXPECT_EQ(-SHMX_ETRUNC, shmx_channel_receive_copy(guest_, dst.data(), dst.size(), &meta, 0))
        << "not -SHMX_ESHORT, which means the caller's buffer is too small";
    /* Dropped: the channel goes on from the next record (the host's tail never saw it). */
    host_->tx.tail = 16;
    host_->tx.head_cache = 16;
    uint8_t b = 3;
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(3, *static_cast<const uint8_t *>(m.data));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(ChannelTest, ShouldDeliverWhatWasPublishedBeforeCloseThenReportClosed) {
    Open();
    uint8_t b = 1;
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    ASSERT_EQ(2, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    void *p;
    ASSERT_EQ(0, shmx_channel_claim(host_, 20000, 0, &p));
    EXPECT_EQ(0, shmx_channel_close(host_));
    EXPECT_EQ(0, shmx_channel_close(host_)); /* idempotent */
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(guest_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    ExpectPoolIdle();
    shmx_message_t m;
    for (uint64_t id = 1; id <= 2; id++) {
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m, 0));
        EXPECT_EQ(id, m.id);
        EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    }
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive(host_, &m, kWait));
}

TEST_F(ChannelTest, ShouldWakeABlockedReceiverOnClose) {
    Open();
    auto rx = std::async(std::launch::async, [&] {
        shmx_message_t m;
        return shmx_channel_receive(guest_, &m, -1);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    shmx_channel_close(host_);
    ASSERT_EQ(std::future_status::ready, rx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(-SHMX_ECLOSED, rx.get());
}

TEST_F(ChannelTest, ShouldWakeASenderBlockedOnAFullRingOnClose) {
    Open();
    uint8_t b[512] = {};
    int n = 0;
    while (shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, sizeof b, 0) > 0) n++;
    ASSERT_GT(n, 0);
    auto tx = std::async(std::launch::async, [&] { return shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, sizeof b, -1); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    shmx_channel_close(guest_);
    ASSERT_EQ(std::future_status::ready, tx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(-SHMX_ECLOSED, tx.get());
}

TEST_F(ChannelTest, ShouldWakeASenderBlockedOnAnEmptyPoolOnClose) {
    cfg_.class_count = 1;
    cfg_.class_size[0] = 16384;
    cfg_.class_slots[0] = 1;
    cfg_.max_payload = 16384;
    Open();
    std::vector<uint8_t> b(16384);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b.data(), 16384, 0));
    auto tx = std::async(std::launch::async,
                         [&] { return shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b.data(), 16384, -1); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    shmx_channel_close(guest_);
    ASSERT_EQ(std::future_status::ready, tx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(-SHMX_ECLOSED, tx.get());
}

TEST_F(ChannelTest, ShouldReportAHungUpPeerOnceTheRingIsDrained) {
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    Open(sv[0], sv[1]);
    EXPECT_EQ(1, shmx_channel_peer_alive(guest_));
    EXPECT_EQ(1, shmx_channel_peer_alive(host_));
    uint8_t b = 5;
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    /* The host dies: its socket closes, its rings stay open. */
    shmx_channel_destroy(host_);
    host_ = nullptr;
    EXPECT_EQ(0, shmx_channel_peer_alive(guest_));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_EQ(-SHMX_EHOSTGONE, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(-SHMX_EHOSTGONE, shmx_channel_receive(guest_, &m, -1));
}

TEST_F(ChannelTest, ShouldNoticeAHungUpHostWhilePollingWithoutWaiting) {
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    Open(sv[0], sv[1]);
    shmx_channel_destroy(host_);
    host_ = nullptr;
    shmx_message_t m;
    int rc = -SHMX_EEMPTY;
    for (int i = 0; i < 1000 && rc == -SHMX_EEMPTY; i++) rc = shmx_channel_receive(guest_, &m, 0);
    EXPECT_EQ(-SHMX_EHOSTGONE, rc);
}

TEST_F(ChannelTest, ShouldWakeAReceiverSleepingOnTheFutex) {
    Open();
    shmx_channel_set_idle(guest_, 0, 0); /* straight to sleep: the sender must ring */
    auto rx = std::async(std::launch::async, [&] {
        shmx_message_t m;
        int rc = shmx_channel_receive(guest_, &m, kWait);
        if (rc == 0) {
            rc = first_mismatch(m.data, 8, 100) == -1 ? 0 : -1;
            shmx_channel_release(guest_, &m);
        }
        return rc;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto p = pattern(8, 100);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 100, 0));
    ASSERT_EQ(std::future_status::ready, rx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(0, rx.get());
}

TEST_F(ChannelTest, ShouldReportAHungUpGuestAsClosedOnTheHost) {
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    Open(sv[0], sv[1]);
    /* Fill the ring the guest no longer drains. */
    uint8_t b[512] = {};
    while (shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, sizeof b, 0) > 0) {
    }
    shmx_channel_destroy(guest_);
    guest_ = nullptr;
    shmx_message_t m;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive(host_, &m, kWait));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, sizeof b, kWait));
}

/* The guest runs in a forked child (its own process, the same shared mapping) and echoes everything back. */
TEST_F(ChannelTest, ShouldEchoEverySizeThroughAGuestInAnotherProcess) {
    Open();
    std::vector<uint32_t> sizes = Sizes();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int bad = 0;
        for (size_t i = 0; i < sizes.size(); i++) {
            shmx_message_t m;
            if (shmx_channel_receive(guest_, &m, kWait) != 0) _exit(10);
            if (m.length != sizes[i] || m.id != i + 1 || first_mismatch(m.data, sizes[i], sizes[i]) != -1) bad = 1;
            /* Echo from the view itself: zero-copy in, one copy out. */
            if (shmx_channel_send(guest_, SHMX_TYPE_RESPONSE, 0, m.id, m.data, m.length, kWait) <= 0) _exit(11);
            if (shmx_channel_release(guest_, &m) != 0) _exit(12);
        }
        _exit(bad ? 13 : 0);
    }
    for (size_t i = 0; i < sizes.size(); i++) {
        auto p = pattern(sizes[i], sizes[i]);
        ASSERT_EQ(static_cast<int64_t>(i + 1), shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), sizes[i], kWait));
        shmx_message_t m;
        ASSERT_EQ(0, shmx_channel_receive(host_, &m, kWait)) << "size " << sizes[i];
        EXPECT_EQ(SHMX_TYPE_RESPONSE, m.type);
        EXPECT_EQ(i + 1, m.id);
        EXPECT_EQ(sizes[i], m.length);
        EXPECT_EQ(-1, first_mismatch(m.data, sizes[i], sizes[i]));
        EXPECT_EQ(0, shmx_channel_release(host_, &m));
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(0, WEXITSTATUS(status));
    ExpectPoolIdle();
}

/* ---- uds transport ------------------------------------------------------------ */

class UdsChannelTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv_));
        ASSERT_EQ(0, shmx_channel_open_uds(sv_[0], 1, kMax, &host_));
        ASSERT_EQ(0, shmx_channel_open_uds(sv_[1], 0, kMax, &guest_));
    }
    void TearDown() override {
        shmx_channel_free(host_);
        shmx_channel_free(guest_);
    }

    static constexpr uint32_t kMax = 1024 * 1024;
    int sv_[2] = {-1, -1};
    shmx_channel_t *host_ = nullptr;
    shmx_channel_t *guest_ = nullptr;
};

/* Raw frame bytes as a peer would write them. */
std::vector<uint8_t> raw_frame(uint32_t len, uint32_t seed, uint64_t id) {
    std::vector<uint8_t> f(SHMX_FRAME_HEADER_SIZE + len);
    auto p = pattern(seed, len);
    EXPECT_EQ(static_cast<int>(f.size()), shmx_frame_encode(f.data(), f.size(), SHMX_TYPE_DATA, 0, id, p.data(), len));
    return f;
}

TEST_F(UdsChannelTest, ShouldCarryEverySizeBothWays) {
    uint32_t im = 1024;
    std::vector<uint32_t> sizes = {0, 1, im - 1, im, im + 1, 4096, 16384, 16385, 131073, kMax};
    for (int dir = 0; dir < 2; dir++) {
        shmx_channel_t *tx = dir == 0 ? host_ : guest_;
        shmx_channel_t *rx = dir == 0 ? guest_ : host_;
        /* A sender thread: large frames exceed the socket buffer. */
        std::thread sender([&] {
            for (size_t i = 0; i < sizes.size(); i++) {
                auto p = pattern(sizes[i] + dir, sizes[i]);
                EXPECT_EQ(static_cast<int64_t>(i + 1),
                          shmx_channel_send(tx, SHMX_TYPE_DATA, SHMX_FLAG_MORE, 0, p.data(), sizes[i], kWait));
            }
        });
        for (size_t i = 0; i < sizes.size(); i++) {
            shmx_message_t m;
            ASSERT_EQ(0, shmx_channel_receive(rx, &m, kWait));
            EXPECT_EQ(sizes[i], m.length);
            EXPECT_EQ(i + 1, m.id);
            EXPECT_EQ(SHMX_FLAG_MORE, m.flags);
            EXPECT_EQ(-1, first_mismatch(m.data, sizes[i] + dir, sizes[i]));
            EXPECT_EQ(0, shmx_channel_release(rx, &m));
        }
        sender.join();
    }
    EXPECT_EQ(SHMX_TRANSPORT_UDS, shmx_channel_transport(host_));
    EXPECT_EQ(kMax, shmx_channel_max_payload(host_));
}

TEST_F(UdsChannelTest, ShouldNotBlockPastTheTimeoutOnAPeerThatStopsReading) {
    /* The guest never reads: small frames fill the socket buffer, then a send times out
     * with nothing written (would block), and the channel is still usable. */
    std::vector<uint8_t> small(1000, 7);
    int64_t rc = 0;
    int sent = 0;
    for (; sent < 100000; sent++) {
        rc = shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, small.data(), (uint32_t)small.size(), 20 * kMs);
        if (rc < 0) break;
    }
    ASSERT_EQ(-SHMX_EWOULDBLOCK, rc) << "after " << sent << " frames";
    EXPECT_EQ(1, shmx_channel_peer_alive(host_));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(1u, m.id);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));

    /* A frame larger than what the socket takes goes out in part: the stream can not
     * carry the rest later, so the sender gives up a second after the deadline and closes. */
    std::vector<uint8_t> big(kMax, 9);
    int64_t t0 = shmx_now_ns();
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, big.data(), kMax, 50 * kMs));
    EXPECT_LT(shmx_now_ns() - t0, kWait) << "bounded by the timeout, not by the peer";
    void *p = nullptr;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_claim(host_, 1, 0, &p));
}

TEST_F(UdsChannelTest, ShouldEnforceClaimLimitsAndExplicitIds) {
    void *p;
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_claim(host_, kMax + 1, 0, &p));
    ASSERT_EQ(0, shmx_channel_claim(host_, 3, 0, &p));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_claim(host_, 3, 0, &p));
    EXPECT_EQ(0, shmx_channel_abort(host_));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_commit(host_, SHMX_TYPE_DATA, 0, 0));
    uint8_t b = 1;
    EXPECT_EQ(42, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 42, &b, 1, 0));
    EXPECT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(42u, m.id);
    void *base;
    size_t len;
    ASSERT_EQ(0, shmx_channel_region(guest_, 0, &base, &len));
    EXPECT_GE(static_cast<const uint8_t *>(m.data), static_cast<uint8_t *>(base));
    EXPECT_LE(static_cast<const uint8_t *>(m.data) + m.length, static_cast<uint8_t *>(base) + len);
    EXPECT_EQ(0, shmx_channel_region(guest_, 1, &base, &len));
    EXPECT_EQ(-SHMX_EINVAL, shmx_channel_region(guest_, 2, &base, &len));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(1u, m.id);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(UdsChannelTest, ShouldHoldOneViewAtATime) {
    uint8_t b[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) ASSERT_GT(shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, b, 3, 0), 0);
    shmx_message_t m[4];
    ASSERT_EQ(1, shmx_channel_receive_batch(guest_, m, 4, kWait));
    EXPECT_EQ(-SHMX_ESTATE, shmx_channel_receive(guest_, &m[1], 0));
    shmx_message_t wrong = m[0];
    wrong.end_ += 8;
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &wrong));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m[0]));
    EXPECT_EQ(-SHMX_EORDER, shmx_channel_release(guest_, &m[0]));
    for (uint64_t id = 2; id <= 3; id++) {
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m[1], kWait));
        EXPECT_EQ(id, m[1].id);
        EXPECT_EQ(0, shmx_channel_release(guest_, &m[1]));
    }
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m[1], 0));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m[1], 2 * kMs));
}

TEST_F(UdsChannelTest, ShouldKeepTheMessageWhenTheCopyBufferIsTooSmall) {
    auto p = pattern(5, 300);
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 300, 0));
    ASSERT_EQ(2, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, p.data(), 300, 0));
    std::vector<uint8_t> dst(300);
    shmx_message_t meta{};
    EXPECT_EQ(-SHMX_ESHORT, shmx_channel_receive_copy(guest_, dst.data(), 299, &meta, kWait));
    EXPECT_EQ(300u, meta.length);
    for (uint64_t id = 1; id <= 2; id++) {
        ASSERT_EQ(300, shmx_channel_receive_copy(guest_, dst.data(), dst.size(), &meta, kWait));
        EXPECT_EQ(id, meta.id);
        EXPECT_EQ(-1, first_mismatch(dst.data(), 5, 300));
    }
}

TEST_F(UdsChannelTest, ShouldDropAFrameWithABadCrcAndGoOn) {
    /* The test writes raw bytes as the host: one corrupted frame, then a good one, in one write. */
    auto bad = raw_frame(100, 1, 1);
    bad[SHMX_FRAME_HEADER_SIZE + 50] ^= 4;
    auto good = raw_frame(100, 2, 2);
    bad.insert(bad.end(), good.begin(), good.end());
    ASSERT_EQ(static_cast<ssize_t>(bad.size()), send(sv_[0], bad.data(), bad.size(), 0));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_ECRC, shmx_channel_receive(guest_, &m, kWait));
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(2u, m.id);
    EXPECT_EQ(-1, first_mismatch(m.data, 2, 100));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(UdsChannelTest, ShouldStopTheStreamAfterABadHeader) {
    auto f = raw_frame(10, 1, 1);
    f[0] ^= 0xFF;
    ASSERT_EQ(static_cast<ssize_t>(f.size()), send(sv_[0], f.data(), f.size(), 0));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EMAGIC, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_channel_receive(guest_, &m, kWait));
    /* The peer learns: its stream is shut. */
    EXPECT_EQ(0, shmx_channel_peer_alive(host_));
}

TEST_F(UdsChannelTest, ShouldStopTheStreamAfterALengthAboveTheMaximum) {
    auto f = raw_frame(10, 1, 1);
    uint32_t huge = kMax + 1;
    std::memcpy(f.data() + 8, &huge, 4); /* little-endian host */
    ASSERT_EQ(static_cast<ssize_t>(f.size()), send(sv_[0], f.data(), f.size(), 0));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_channel_receive(guest_, &m, 0));
}

TEST_F(UdsChannelTest, ShouldReassembleAFrameArrivingInPieces) {
    auto f = raw_frame(5000, 3, 9);
    std::thread writer([&] {
        for (size_t off = 0; off < f.size(); off += 700) {
            size_t n = std::min<size_t>(700, f.size() - off);
            send(sv_[0], f.data() + off, n, MSG_NOSIGNAL);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    writer.join();
    EXPECT_EQ(9u, m.id);
    EXPECT_EQ(-1, first_mismatch(m.data, 3, 5000));
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(UdsChannelTest, ShouldReportAPeerThatClosedItsEnd) {
    uint8_t b = 1;
    ASSERT_EQ(1, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, 0));
    EXPECT_EQ(1, shmx_channel_peer_alive(guest_));
    shmx_channel_free(host_); /* no host object: destroyed directly */
    host_ = nullptr;
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait)); /* what was sent arrives first */
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_EQ(-SHMX_EHOSTGONE, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(0, shmx_channel_peer_alive(guest_));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(guest_, SHMX_TYPE_DATA, 0, 0, &b, 1, kWait));
}

TEST_F(UdsChannelTest, ShouldReportAGuestThatClosedItsEndAsClosed) {
    shmx_channel_close(guest_);
    shmx_message_t m;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive(host_, &m, kWait));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive(guest_, &m, kWait)); /* closed here: not "host gone" */
    uint8_t b = 1;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, &b, 1, kWait));
}

TEST_F(UdsChannelTest, ShouldWakeABlockedReceiverAndSenderOnClose) {
    /* The host's receiving thread waits for frames that never come; its sending thread
     * blocks on a frame larger than the socket buffer that the guest never reads. */
    auto rx = std::async(std::launch::async, [&] {
        shmx_message_t m;
        return shmx_channel_receive(host_, &m, -1);
    });
    std::vector<uint8_t> big(kMax);
    auto tx = std::async(std::launch::async,
                         [&] { return shmx_channel_send(host_, SHMX_TYPE_DATA, 0, 0, big.data(), kMax, -1); });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    shmx_channel_close(host_);
    ASSERT_EQ(std::future_status::ready, tx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(-SHMX_ECLOSED, tx.get());
    ASSERT_EQ(std::future_status::ready, rx.wait_for(std::chrono::seconds(5)));
    EXPECT_EQ(-SHMX_ECLOSED, rx.get());
}

/* ---- informal throughput ------------------------------------------------------- */

/* One-way 64-byte messages, sender and receiver threads; printed, never asserted. */
double OneWayRate(shmx_channel_t *tx, shmx_channel_t *rx, double seconds) {
    constexpr uint16_t kStop = SHMX_TYPE_CONTROL;
    std::atomic<uint64_t> received{0};
    std::thread consumer([&] {
        shmx_message_t m[64];
        uint64_t n = 0;
        for (;;) {
            int k = shmx_channel_receive_batch(rx, m, 64, kWait);
            if (k <= 0) break;
            bool stop = false;
            for (int i = 0; i < k; i++) {
                stop |= m[i].type == kStop;
                shmx_channel_release(rx, &m[i]);
            }
            n += static_cast<uint64_t>(k);
            if (stop) break;
        }
        received = n;
    });
    uint8_t payload[64];
    std::memset(payload, 0xAB, sizeof payload);
    auto t0 = std::chrono::steady_clock::now();
    auto until = t0 + std::chrono::duration<double>(seconds);
    uint64_t sent = 0;
    for (;;) {
        for (int i = 0; i < 1024; i++)
            if (shmx_channel_send(tx, SHMX_TYPE_DATA, 0, 0, payload, 64, kWait) > 0) sent++;
        if (std::chrono::steady_clock::now() >= until) break;
    }
    shmx_channel_send(tx, kStop, 0, 0, payload, 64, kWait);
    consumer.join();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(received.load()) / dt;
}

/* Round trips of 64-byte messages; returns the median in nanoseconds. */
double RoundTripNs(shmx_channel_t *host, shmx_channel_t *guest, int count) {
    std::thread echo([&] {
        for (int i = 0; i < count; i++) {
            shmx_message_t m;
            if (shmx_channel_receive(guest, &m, kWait) != 0) return;
            shmx_channel_send(guest, SHMX_TYPE_RESPONSE, 0, m.id, m.data, m.length, kWait);
            shmx_channel_release(guest, &m);
        }
    });
    uint8_t payload[64] = {};
    std::vector<double> rtt;
    rtt.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; i++) {
        auto t0 = std::chrono::steady_clock::now();
        if (shmx_channel_send(host, SHMX_TYPE_DATA, 0, 0, payload, 64, kWait) <= 0) break;
        shmx_message_t m;
        if (shmx_channel_receive(host, &m, kWait) != 0) break;
        shmx_channel_release(host, &m);
        rtt.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    }
    echo.join();
    if (rtt.empty()) return 0;
    std::sort(rtt.begin(), rtt.end());
    return rtt[rtt.size() / 2];
}

TEST_F(ChannelTest, ShouldPrintInformalThroughput) {
    Open();
    double shm_rate = OneWayRate(host_, guest_, 1.0);
    double shm_rtt = RoundTripNs(host_, guest_, 20000);
    int sv[2];
    ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    shmx_channel_t *uh, *ug;
    ASSERT_EQ(0, shmx_channel_open_uds(sv[0], 1, cfg_.max_payload, &uh));
    ASSERT_EQ(0, shmx_channel_open_uds(sv[1], 0, cfg_.max_payload, &ug));
    double uds_rate = OneWayRate(uh, ug, 1.0);
    double uds_rtt = RoundTripNs(uh, ug, 5000);
    shmx_channel_free(uh);
    shmx_channel_free(ug);
    std::printf("[ info     ] 64-byte messages, C to C, two threads (crc32: %s)\n", shmx_crc32_implementation());
    std::printf("[ info     ] shm one-way %.2f M msg/s, round trip p50 %.0f ns\n", shm_rate / 1e6, shm_rtt);
    std::printf("[ info     ] uds one-way %.2f M msg/s, round trip p50 %.0f ns\n", uds_rate / 1e6, uds_rtt);
    ExpectPoolIdle();
}

}  // namespace
