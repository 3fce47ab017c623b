// Quarantine (DESIGN.md 3.5, RELIABILITY.md D1): a guest that breaks the
// protocol in shared memory is expelled by the host call that meets the
// violation, reported with the violation's code, counted, and cut off, while
// the other guests go on.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000LL;
constexpr int64_t kSecond = 1000 * kMs;

class QuarantineTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = "qt-" + std::to_string(getpid()) + "-" + std::to_string(counter_++);
        shmx_config_t cfg;
        shmx_config_default(&cfg);
        cfg.max_channels = 4;
        int rc = shmx_host_create(name_.c_str(), &cfg, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(0, shmx_host_set_peer_listener(host_, &QuarantineTest::OnPeer, this));
        shmx_log_set_handler(nullptr, nullptr); /* the expected warnings would only clutter the output */
    }
    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        for (shmx_channel_t *ch : channels_) shmx_channel_free(ch);
        shmx_host_destroy(host_);
        shmx_log_set_default();
    }

    static void OnPeer(void *arg, const shmx_peer_event_t *ev) {
        auto *self = static_cast<QuarantineTest *>(arg);
        std::lock_guard<std::mutex> g(self->mu_);
        self->events_.push_back(*ev);
    }

    // A connected shm guest and the host's channel for it.
    void Connect(shmx_guest_t **g, shmx_channel_t **h) {
        *h = nullptr;
        int accepted = -1;
        std::thread t([&] { accepted = shmx_host_accept(host_, 10 * kSecond, h); });
        int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, 10 * kSecond, g);
        t.join();
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
        ASSERT_EQ(accepted, 0) << shmx_strerror(accepted);
        guests_.push_back(*g);
        channels_.push_back(*h);
    }

    // The events seen so far once one more arrived (or after 2 s).
    std::vector<shmx_peer_event_t> AwaitEvent(size_t count) {
        for (int64_t end = shmx_now_ns() + 2 * kSecond; shmx_now_ns() < end; usleep(1000)) {
            std::lock_guard<std::mutex> g(mu_);
            if (events_.size() >= count) return events_;
        }
        std::lock_guard<std::mutex> g(mu_);
        return events_;
    }

    // One message each way between a healthy guest and the host.
    static void RoundTrip(shmx_channel_t *guest_ch, shmx_channel_t *host_ch) {
        const char ask[] = "still served";
        ASSERT_GT(shmx_channel_send(guest_ch, SHMX_TYPE_DATA, 0, 0, ask, sizeof ask, kSecond), 0);
        char buf[64];
        ASSERT_EQ(shmx_channel_receive_copy(host_ch, buf, sizeof buf, nullptr, kSecond), (int64_t)sizeof ask);
        ASSERT_GT(shmx_channel_send(host_ch, SHMX_TYPE_DATA, 0, 0, buf, sizeof ask, kSecond), 0);
        ASSERT_EQ(shmx_channel_receive_copy(guest_ch, buf, sizeof buf, nullptr, kSecond), (int64_t)sizeof ask);
        EXPECT_STREQ(buf, ask);
    }

    // After a violation: reported once with @code and the guest's own entry, counted, both
    // sides cut off, the bystander still served.
    void ExpectQuarantined(shmx_channel_t *bad_host_ch, shmx_guest_t *bad, int code, shmx_guest_t *good,
                           shmx_channel_t *good_host_ch) {
        std::vector<shmx_peer_event_t> ev = AwaitEvent(1);
        ASSERT_EQ(ev.size(), 1u) << "one event for the violation";
        EXPECT_EQ(ev[0].reason, (uint32_t)SHMX_PEER_VIOLATION);
        EXPECT_EQ(ev[0].violation, code);
        EXPECT_EQ(ev[0].peer, shmx_channel_index(bad_host_ch));
        EXPECT_EQ(ev[0].epoch, shmx_channel_epoch(bad_host_ch));
        EXPECT_EQ(ev[0].pid, getpid());
        EXPECT_EQ(shmx_host_violations(host_), 1u);
        shmx_message_t m;
        EXPECT_EQ(shmx_channel_receive(bad_host_ch, &m, 0), -SHMX_ECLOSED) << "nothing more of it is delivered";
        char byte = 1;
        EXPECT_EQ(shmx_channel_send(shmx_guest_channel(bad), SHMX_TYPE_DATA, 0, 0, &byte, 1, 0), -SHMX_EEXPELLED);
        RoundTrip(shmx_guest_channel(good), good_host_ch);
    }

    PrivateRuntimeDir runtime_;
    static inline int counter_ = 0;
    std::string name_;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::vector<shmx_channel_t *> channels_;
    std::mutex mu_;
    std::vector<shmx_peer_event_t> events_;
};

TEST_F(QuarantineTest, ShouldQuarantineAGuestThatWritesGarbageIntoItsRingWithinOneReceive) {
    shmx_guest_t *bad, *good;
    shmx_channel_t *hb, *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(&bad, &hb));
    ASSERT_NO_FATAL_FAILURE(Connect(&good, &hg));
    // The next record header in the guest-to-host ring: a kind that does not exist.
    shmx_segment_t *seg = shmx_host_segment(host_);
    uint8_t *data = shmx_segment_ring_data(seg, shmx_channel_index(hb), SHMX_RING_GUEST_TO_HOST);
    uint64_t garbage = 0x0000'6363'0000'0040ull; /* body 64, kind 0x6363, reserved 0 */
    __atomic_store_n(reinterpret_cast<uint64_t *>(data), garbage, __ATOMIC_RELEASE);
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(hb, &m, kSecond), -SHMX_ECORRUPT) << "the one call that meets it says what";
    ExpectQuarantined(hb, bad, -SHMX_ECORRUPT, good, hg);
}

TEST_F(QuarantineTest, ShouldQuarantineAGuestThatSendsASlotItDoesNotOwn) {
    shmx_guest_t *bad, *good;
    shmx_channel_t *hb, *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(&bad, &hb));
    ASSERT_NO_FATAL_FAILURE(Connect(&good, &hg));
    // A well-formed record and frame header, pointing at a slot nobody sent to the host.
    shmx_channel_t *gch = shmx_guest_channel(bad);
    void *body;
    ASSERT_EQ(0, shmx_ring_claim(&gch->tx, SHMX_FRAME_HEADER_SIZE + sizeof(shmx_slot_ref_t), SHMX_RECORD_SLOT, &body));
    uint8_t payload[16] = {1, 2, 3};
    ASSERT_GE(shmx_frame_header_encode(body, SHMX_TYPE_DATA, 0, 1, payload, sizeof payload), 0);
    shmx_slot_ref_t forged = {0, 0, 12345, 0};
    memcpy(static_cast<uint8_t *>(body) + SHMX_FRAME_HEADER_SIZE, &forged, sizeof forged);
    ASSERT_EQ(0, shmx_ring_commit(&gch->tx));
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(hb, &m, kSecond), -SHMX_EBADSLOT);
    ExpectQuarantined(hb, bad, -SHMX_EBADSLOT, good, hg);
}

// The host's ledger, not the shared metadata, says which slots it holds: a guest that rewrites the
// metadata of a slot the host is writing so that it reads "sent to the host", and sends a reference
// to it, is refused and quarantined; the host's own claim is unharmed.
TEST_F(QuarantineTest, ShouldQuarantineAGuestThatForgesTheMetadataOfASlotTheHostHolds) {
    shmx_guest_t *bad, *good;
    shmx_channel_t *hb, *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(&bad, &hb));
    ASSERT_NO_FATAL_FAILURE(Connect(&good, &hg));
    void *mine;
    ASSERT_EQ(0, shmx_channel_claim(hg, 60000, kSecond, &mine)); // a slot, far above inline_max
    ASSERT_TRUE(hg->claim_in_slot);
    const shmx_slot_ref_t held = hg->claim_slot;
    uint8_t payload[16] = {4, 5, 6};
    memcpy(mine, payload, sizeof payload);
    shmx_slot_meta_t *meta = &host_->pool.cls[held.cls].meta[held.index];
    __atomic_store_n(reinterpret_cast<uint32_t *>(&meta->state), (uint32_t)SHMX_SLOT_SENT, __ATOMIC_RELEASE);
    __atomic_store_n(reinterpret_cast<uint32_t *>(&meta->owner), SHMX_OWNER_HOST, __ATOMIC_RELEASE);

    shmx_channel_t *gch = shmx_guest_channel(bad);
    void *body;
    ASSERT_EQ(0, shmx_ring_claim(&gch->tx, SHMX_FRAME_HEADER_SIZE + sizeof(shmx_slot_ref_t), SHMX_RECORD_SLOT, &body));
    ASSERT_GE(shmx_frame_header_encode(body, SHMX_TYPE_DATA, 0, 1, mine, sizeof payload), 0); // a valid CRC
    memcpy(static_cast<uint8_t *>(body) + SHMX_FRAME_HEADER_SIZE, &held, sizeof held);
    ASSERT_EQ(0, shmx_ring_commit(&gch->tx));
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(hb, &m, kSecond), -SHMX_EBADSLOT) << "the ledger says the host holds it";
    shmx_pool_faults_t faults;
    shmx_pool_faults(&host_->pool, &faults);
    EXPECT_EQ(faults.refs_refused, 1u);
    EXPECT_EQ(0, memcmp(mine, payload, sizeof payload)) << "the host's claim is untouched";
    ASSERT_EQ(0, shmx_channel_abort(hg)) << "and the host can still give it back";
    ExpectQuarantined(hb, bad, -SHMX_EBADSLOT, good, hg);
}

// A guest that rewrites the state of a slot the host is writing makes the host's commit fail (the
// writer cannot be named), but the host's ledger still says the slot is the host's: it is given back,
// not leaked, however often that happens.
TEST_F(QuarantineTest, ShouldGiveBackItsOwnClaimWhenAGuestScribblesItsStateBeforeTheCommit) {
    shmx_guest_t *good;
    shmx_channel_t *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(&good, &hg));
    const uint32_t before = shmx_pool_host_held(&host_->pool);
    for (int i = 0; i < 3; i++) {
        void *mine;
        ASSERT_EQ(0, shmx_channel_claim(hg, 60000, kSecond, &mine));
        const shmx_slot_ref_t held = hg->claim_slot;
        shmx_slot_meta_t *meta = &host_->pool.cls[held.cls].meta[held.index];
        __atomic_store_n(reinterpret_cast<uint32_t *>(&meta->state), (uint32_t)SHMX_SLOT_SENT, __ATOMIC_RELEASE);
        EXPECT_EQ(shmx_channel_commit(hg, SHMX_TYPE_DATA, 0, 0), -SHMX_EBADSLOT);
        EXPECT_EQ(shmx_pool_host_held(&host_->pool), before) << "the claim was given back, not leaked";
    }
    shmx_pool_stats_t st;
    shmx_pool_stats(&host_->pool, &st);
    for (uint32_t c = 0; c < st.class_count; c++)
        EXPECT_EQ(st.free_slots[c] + st.claimed_slots[c] + st.sent_slots[c], st.total_slots[c]) << "class " << c;
    RoundTrip(shmx_guest_channel(good), hg);
}

TEST_F(QuarantineTest, ShouldQuarantineAGuestThatMovesItsHeadBeyondWhatWasSent) {
    shmx_guest_t *bad, *good;
    shmx_channel_t *hb, *hg;
    ASSERT_NO_FATAL_FAILURE(Connect(&bad, &hb));
    ASSERT_NO_FATAL_FAILURE(Connect(&good, &hg));
    // The guest's consumer head of the host-to-guest ring, far past the host's tail.
    shmx_ring_ctl_t *ctl = shmx_segment_ring_ctl(shmx_host_segment(host_), shmx_channel_index(hb),
                                                 SHMX_RING_HOST_TO_GUEST);
    __atomic_store_n(reinterpret_cast<uint64_t *>(&ctl->head), 1ull << 40, __ATOMIC_RELEASE);
    // The host finds out when it next needs ring space: fill the ring until it must look.
    int rc = 0;
    uint8_t msg[1000] = {0};
    for (int i = 0; i < 1000 && rc >= 0; i++) {
        int64_t id = shmx_channel_send(hb, SHMX_TYPE_DATA, 0, 0, msg, sizeof msg, 0);
        rc = id < 0 ? (int)id : 0;
    }
    EXPECT_EQ(rc, -SHMX_ECORRUPT);
    std::vector<shmx_peer_event_t> ev = AwaitEvent(1);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].reason, (uint32_t)SHMX_PEER_VIOLATION);
    EXPECT_EQ(ev[0].violation, -SHMX_ECORRUPT);
    RoundTrip(shmx_guest_channel(good), hg);
}

TEST_F(QuarantineTest, ShouldGiveTheEntryToANewGuestOnceTheQuarantinedOneLeaves) {
    shmx_guest_t *bad, *next;
    shmx_channel_t *hb, *hn;
    ASSERT_NO_FATAL_FAILURE(Connect(&bad, &hb));
    uint32_t idx = shmx_channel_index(hb), epoch = shmx_channel_epoch(hb);
    uint8_t *data = shmx_segment_ring_data(shmx_host_segment(host_), idx, SHMX_RING_GUEST_TO_HOST);
    __atomic_store_n(reinterpret_cast<uint64_t *>(data), 0xFFFF'FFFF'FFFF'FFFFull, __ATOMIC_RELEASE);
    shmx_message_t m;
    EXPECT_EQ(shmx_channel_receive(hb, &m, kSecond), -SHMX_ECORRUPT);
    // The application frees its side; the entry comes back once the guest has gone too.
    shmx_channel_free(hb);
    channels_.erase(channels_.begin());
    shmx_guest_close(bad);
    guests_.erase(guests_.begin());
    ASSERT_NO_FATAL_FAILURE(Connect(&next, &hn));
    EXPECT_EQ(shmx_channel_index(hn), idx);
    EXPECT_GT(shmx_channel_epoch(hn), epoch);
    shmx_pool_stats_t st;
    shmx_pool_stats(shmx_host_pool(host_), &st);
    for (uint32_t c = 0; c < st.class_count; c++) EXPECT_EQ(st.free_slots[c], st.total_slots[c]) << "class " << c;
}

} // namespace
