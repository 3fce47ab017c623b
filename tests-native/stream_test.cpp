/*
 * Messages of any size: fragments and reassembly from 0 bytes to the 64 MiB
 * maximum across every class boundary (every byte checked), the streaming
 * writer and reader, the flow-control window, fragment sequence violations,
 * and the same over the uds transport.
 */
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
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
constexpr int64_t kWait = 10000 * kMs; /* generous bound for anything that must happen */
constexpr uint32_t kMiB = 1024u * 1024u;

class StreamTest : public ::testing::Test {
  protected:
    void SetUp() override { shmx_config_default(&cfg_); }

    void TearDown() override {
        shmx_channel_free(host_);
        shmx_channel_free(guest_);
        if (seg_open_) shmx_segment_close(&seg_);
        free(buf_);
    }

    /* A segment with cfg_ and both ends of channel 0 in this process. */
    void OpenShm() {
        ASSERT_EQ(0, shmx_segment_create(&cfg_, unique_label("streamtest").c_str(), &seg_));
        seg_open_ = true;
        shmx_pool_init(&pool_, seg_.base, &seg_.layout, &seg_.config, 0);
        __atomic_store_n(word<uint32_t>(&shmx_segment_channel(&seg_, 0)->state), (uint32_t)SHMX_CHANNEL_ACTIVE,
                         __ATOMIC_RELEASE);
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 1, 0, -1, &host_));
        ASSERT_EQ(0, shmx_channel_open_shm(&seg_, &pool_, 0, 0, 0, -1, &guest_));
    }

    /* Both ends of a uds channel over a socketpair. */
    void OpenUds() {
        int sv[2];
        ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_EQ(0, shmx_channel_open_uds(sv[0], 1, cfg_.max_payload, &host_));
        ASSERT_EQ(0, shmx_channel_open_uds(sv[1], 0, cfg_.max_payload, &guest_));
    }

    uint32_t FreeSlots() {
        shmx_pool_stats_t st;
        shmx_pool_stats(&pool_, &st);
        uint32_t n = 0;
        for (uint32_t c = 0; c < st.class_count; c++) n += st.free_slots[c];
        return n;
    }

    uint32_t TotalSlots() {
        shmx_pool_stats_t st;
        shmx_pool_stats(&pool_, &st);
        uint32_t n = 0;
        for (uint32_t c = 0; c < st.class_count; c++) n += st.total_slots[c];
        return n;
    }

    /* Host sends @len pattern bytes while the guest receives the whole message; checks every byte. */
    void ExpectWholeMessage(uint32_t len, uint32_t seed) {
        std::vector<uint8_t> src = pattern(seed, len);
        auto sender = std::async(std::launch::async, [&] {
            return shmx_channel_send(host_, 300, 0, 0, src.data(), len, kWait);
        });
        shmx_message_t meta{};
        int64_t got = shmx_channel_receive_message(guest_, &buf_, &cap_, &meta, kWait);
        int64_t id = sender.get();
        ASSERT_GT(id, 0) << "len " << len << ": " << shmx_strerror((int)id);
        ASSERT_EQ((int64_t)len, got) << "len " << len << ": " << shmx_strerror((int)got);
        EXPECT_EQ(300, meta.type);
        EXPECT_EQ((uint64_t)id, meta.id);
        EXPECT_EQ(len, meta.length);
        EXPECT_EQ(-1, first_mismatch(buf_, seed, len)) << "len " << len;
    }

    std::vector<uint32_t> Sizes() const {
        std::vector<uint32_t> v = {0, 1, cfg_.inline_max, cfg_.inline_max + 1};
        for (uint32_t c = 0; c < cfg_.class_count; c++) {
            uint32_t s = cfg_.class_size[c];
            v.insert(v.end(), {s - 1, s, s + 1});
        }
        v.insert(v.end(), {cfg_.max_payload - 1, cfg_.max_payload, cfg_.max_payload + 1, 2 * cfg_.max_payload,
                           2 * cfg_.max_payload + 3, 10 * kMiB, cfg_.max_message - 1, cfg_.max_message});
        return v;
    }

    shmx_config_t cfg_{};
    shmx_segment_t seg_{};
    bool seg_open_ = false;
    shmx_pool_t pool_{};
    shmx_channel_t *host_ = nullptr;
    shmx_channel_t *guest_ = nullptr;
    void *buf_ = nullptr;
    size_t cap_ = 0;
};

TEST_F(StreamTest, ShouldCarryMessagesOfEverySizeUpToTheMaximum) {
    OpenShm();
    ASSERT_GE(cfg_.max_message, 64u * kMiB);
    uint32_t seed = 1;
    for (uint32_t len : Sizes()) ExpectWholeMessage(len, seed++);
    EXPECT_EQ(TotalSlots(), FreeSlots()) << "every slot returned";
}

TEST_F(StreamTest, ShouldFlagEveryFragmentButTheLastWithMore) {
    OpenShm();
    uint32_t len = 2 * cfg_.max_payload + 5;
    std::vector<uint8_t> src = pattern(7, len);
    auto sender = std::async(std::launch::async, [&] { return shmx_channel_send(host_, 301, 0, 0, src.data(), len, kWait); });
    uint64_t total = 0;
    int frames = 0;
    std::vector<uint32_t> lengths;
    for (;;) {
        shmx_message_t m;
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
        for (uint32_t i = 0; i < m.length; i++) ASSERT_EQ(pattern_byte(7, total + i), ((const uint8_t *)m.data)[i]);
        total += m.length;
        frames++;
        lengths.push_back(m.length);
        bool more = (m.flags & SHMX_FLAG_MORE) != 0;
        EXPECT_LE(m.length, cfg_.max_payload);
        ASSERT_EQ(0, shmx_channel_release(guest_, &m));
        if (!more) break;
    }
    int64_t id = sender.get();
    EXPECT_GT(id, 0);
    EXPECT_EQ(len, total);
    EXPECT_EQ(3, frames);
    /* A whole send knows its length: full frames, then exactly the rest. */
    EXPECT_EQ((std::vector<uint32_t>{cfg_.max_payload, cfg_.max_payload, 5u}), lengths);
}

TEST_F(StreamTest, ShouldStreamThroughWriterAndReaderInOddChunks) {
    OpenShm();
    const size_t len = 3 * cfg_.max_payload + 12345;
    std::vector<uint8_t> src = pattern(11, len);
    auto sender = std::async(std::launch::async, [&]() -> int64_t {
        shmx_writer_t w;
        int rc = shmx_writer_begin(&w, host_, 302, 0);
        if (rc != 0) return rc;
        size_t done = 0;
        size_t chunk = 1;
        while (done < len) {
            /* Alternate copying writes and zero-copy reserve/advance. */
            size_t n = std::min(chunk, len - done);
            if (chunk % 2 == 0) {
                int64_t w_rc = shmx_writer_write(&w, src.data() + done, n, kWait);
                if (w_rc < 0) return w_rc;
            } else {
                void *dst;
                size_t room;
                rc = shmx_writer_reserve(&w, &dst, &room, kWait);
                if (rc != 0) return rc;
                n = std::min(n, room);
                memcpy(dst, src.data() + done, n);
                if ((rc = shmx_writer_advance(&w, n)) != 0) return rc;
            }
            done += n;
            chunk = chunk * 3 + 1;
            if (chunk > 700000) chunk = 2;
        }
        return shmx_writer_finish(&w, kWait);
    });
    shmx_reader_t r;
    ASSERT_EQ(0, shmx_reader_begin(&r, guest_, kWait));
    EXPECT_EQ(302, r.type);
    std::vector<uint8_t> got;
    std::vector<uint8_t> chunk(99991);
    for (;;) {
        int64_t n = shmx_reader_read(&r, chunk.data(), chunk.size(), kWait);
        ASSERT_GE(n, 0) << shmx_strerror((int)n);
        if (n == 0) break;
        got.insert(got.end(), chunk.begin(), chunk.begin() + n);
    }
    EXPECT_EQ(0, shmx_reader_end(&r, kWait));
    int64_t id = sender.get();
    ASSERT_GT(id, 0) << shmx_strerror((int)id);
    EXPECT_EQ((uint64_t)id, r.id);
    ASSERT_EQ(len, got.size());
    EXPECT_EQ(-1, first_mismatch(got.data(), 11, len));
    EXPECT_EQ(TotalSlots(), FreeSlots());
}

TEST_F(StreamTest, ShouldSendAnEmptyMessageAsOneEmptyFrame) {
    OpenShm();
    shmx_writer_t w;
    ASSERT_EQ(0, shmx_writer_begin(&w, host_, 303, 0));
    ASSERT_GT(shmx_writer_finish(&w, kWait), 0);
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(0u, m.length);
    EXPECT_EQ(0, m.flags);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(StreamTest, ShouldKeepTheSlotsInFlightWithinTheWindow) {
    /* Messages that fill a middle class exactly; a window of the largest class holds a few of them. */
    ASSERT_GE(cfg_.class_count, 2u);
    uint32_t slot = cfg_.class_size[1];
    cfg_.window_bytes = cfg_.class_size[cfg_.class_count - 1];
    uint32_t fit = cfg_.window_bytes / slot;
    ASSERT_GT(cfg_.class_slots[1], fit) << "the pool must not be what stops the sender";
    OpenShm();
    std::vector<uint8_t> src = pattern(3, slot);
    uint32_t sent = 0;
    while (shmx_channel_send(host_, 304, 0, 0, src.data(), slot, 0) > 0) sent++;
    EXPECT_EQ(fit, sent) << "the window stopped the sender";
    EXPECT_GT(FreeSlots(), 0u);
    /* Releasing one lets exactly one more through. */
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    ASSERT_EQ(0, shmx_channel_release(guest_, &m));
    EXPECT_GT(shmx_channel_send(host_, 304, 0, 0, src.data(), slot, 0), 0);
    EXPECT_EQ(-SHMX_EWOULDBLOCK, shmx_channel_send(host_, 304, 0, 0, src.data(), slot, 0));
}

TEST_F(StreamTest, ShouldWaitForTheReceiverInsteadOfExhaustingThePool) {
    cfg_.window_bytes = 2 * cfg_.class_size[cfg_.class_count - 1];
    OpenShm();
    uint32_t len = 20 * cfg_.max_payload;
    std::vector<uint8_t> src = pattern(5, len);
    auto sender = std::async(std::launch::async, [&] { return shmx_channel_send(host_, 305, 0, 0, src.data(), len, kWait); });
    /* A slow reader: while the sender waits, its slots never exceed the window. */
    shmx_reader_t r;
    ASSERT_EQ(0, shmx_reader_begin(&r, guest_, kWait));
    uint64_t read = 0;
    uint32_t min_free = UINT32_MAX;
    for (;;) {
        const void *src_view;
        size_t avail;
        int rc = shmx_reader_next(&r, &src_view, &avail, kWait);
        ASSERT_GE(rc, 0) << shmx_strerror(rc);
        if (rc == 0) break;
        for (size_t i = 0; i < avail; i += 4096)
            ASSERT_EQ(pattern_byte(5, read + i), ((const uint8_t *)src_view)[i]);
        ASSERT_EQ(0, shmx_reader_consume(&r, avail));
        read += avail;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        min_free = std::min(min_free, FreeSlots());
    }
    EXPECT_EQ(0, shmx_reader_end(&r, kWait));
    EXPECT_GT(sender.get(), 0);
    EXPECT_EQ(len, read);
    uint32_t window_slots = cfg_.window_bytes / cfg_.class_size[cfg_.class_count - 1];
    EXPECT_GE(min_free + window_slots + 1, TotalSlots()) << "more than the window was in flight";
}

TEST_F(StreamTest, ShouldRefuseAMessageAboveTheMaximumBeforeSendingAnything) {
    cfg_.max_message = 3 * cfg_.max_payload;
    OpenShm();
    std::vector<uint8_t> src(cfg_.max_message + 1);
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_send(host_, 306, 0, 0, src.data(), (uint32_t)src.size(), kWait));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(-SHMX_EFLAGS, shmx_channel_send(host_, 306, SHMX_FLAG_MORE, 0, src.data(), cfg_.max_payload + 1, kWait));
}

TEST_F(StreamTest, ShouldSkipTheRestOfAMessageTooLongForTheReceiver) {
    OpenShm();
    guest_->max_message = 2 * cfg_.max_payload; /* a receiver configured smaller than its sender */
    uint32_t len = 3 * cfg_.max_payload;
    std::vector<uint8_t> src = pattern(9, len);
    auto sender = std::async(std::launch::async, [&] {
        int64_t a = shmx_channel_send(host_, 307, 0, 0, src.data(), len, kWait);
        int64_t b = shmx_channel_send(host_, 308, 0, 0, src.data(), 100, kWait);
        return a > 0 && b > 0;
    });
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_channel_receive_message(guest_, &buf_, &cap_, nullptr, kWait));
    shmx_message_t meta{};
    EXPECT_EQ(100, shmx_channel_receive_message(guest_, &buf_, &cap_, &meta, kWait));
    EXPECT_EQ(308, meta.type);
    EXPECT_TRUE(sender.get());
}

TEST_F(StreamTest, ShouldReportAFragmentOfAnotherMessage) {
    OpenShm();
    uint8_t b[16] = {1, 2, 3};
    ASSERT_GT(shmx_channel_send(host_, 309, SHMX_FLAG_MORE, 50, b, sizeof b, kWait), 0);
    ASSERT_GT(shmx_channel_send(host_, 309, 0, 51, b, sizeof b, kWait), 0);
    ASSERT_GT(shmx_channel_send(host_, 310, 0, 52, b, sizeof b, kWait), 0);
    EXPECT_EQ(-SHMX_EFRAGMENT, shmx_channel_receive_message(guest_, &buf_, &cap_, nullptr, kWait));
    shmx_message_t meta{};
    EXPECT_EQ((int64_t)sizeof b, shmx_channel_receive_message(guest_, &buf_, &cap_, &meta, kWait));
    EXPECT_EQ(52u, meta.id) << "the next message is intact";
}

TEST_F(StreamTest, ShouldRejectAnEmptyFragmentFlaggedMore) {
    OpenShm();
    ASSERT_GT(shmx_channel_send(host_, 311, SHMX_FLAG_MORE, 60, nullptr, 0, kWait), 0);
    shmx_reader_t r;
    EXPECT_EQ(-SHMX_EFRAGMENT, shmx_reader_begin(&r, guest_, kWait));
    ASSERT_GT(shmx_channel_send(host_, 311, SHMX_FLAG_MORE, 61, nullptr, 0, kWait), 0);
    EXPECT_EQ(-SHMX_EFRAGMENT, shmx_channel_receive_message(guest_, &buf_, &cap_, nullptr, kWait));
}

TEST_F(StreamTest, ShouldDropTheRestWhenTheReaderEndsEarly) {
    OpenShm();
    uint32_t len = 4 * cfg_.max_payload;
    std::vector<uint8_t> src = pattern(13, len);
    auto sender = std::async(std::launch::async, [&] {
        return shmx_channel_send(host_, 312, 0, 0, src.data(), len, kWait) > 0 &&
               shmx_channel_send(host_, 313, 0, 0, src.data(), 10, kWait) > 0;
    });
    shmx_reader_t r;
    ASSERT_EQ(0, shmx_reader_begin(&r, guest_, kWait));
    uint8_t first[100];
    ASSERT_EQ(100, shmx_reader_read(&r, first, sizeof first, kWait));
    EXPECT_EQ(-1, first_mismatch(first, 13, sizeof first));
    EXPECT_EQ(0, shmx_reader_end(&r, kWait));
    shmx_message_t meta{};
    EXPECT_EQ(10, shmx_channel_receive_message(guest_, &buf_, &cap_, &meta, kWait));
    EXPECT_EQ(313, meta.type);
    EXPECT_TRUE(sender.get());
    EXPECT_EQ(TotalSlots(), FreeSlots());
}

TEST_F(StreamTest, ShouldCloseTheChannelWhenAStartedMessageIsAborted) {
    OpenShm();
    shmx_writer_t w;
    ASSERT_EQ(0, shmx_writer_begin(&w, host_, 314, 0));
    std::vector<uint8_t> src = pattern(17, cfg_.max_payload + 1);
    ASSERT_EQ((int64_t)src.size(), shmx_writer_write(&w, src.data(), src.size(), kWait));
    EXPECT_EQ(0, shmx_writer_abort(&w));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_channel_receive_message(guest_, &buf_, &cap_, nullptr, kWait))
        << "the receiver never takes the first fragment for a whole message";
}

TEST_F(StreamTest, ShouldWithdrawAnUnsentMessageWithoutATrace) {
    OpenShm();
    shmx_writer_t w;
    ASSERT_EQ(0, shmx_writer_begin(&w, host_, 315, 0));
    uint8_t b[10] = {0};
    ASSERT_EQ(10, shmx_writer_write(&w, b, sizeof b, kWait));
    EXPECT_EQ(0, shmx_writer_abort(&w));
    shmx_message_t m;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_channel_receive(guest_, &m, 0));
    EXPECT_EQ(TotalSlots(), FreeSlots()) << "the claimed slot went back";
    EXPECT_GT(shmx_channel_send(host_, 316, 0, 0, b, sizeof b, kWait), 0) << "the channel stays usable";
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(316, m.type);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(StreamTest, ShouldCommitOnlyWhatWasFilled) {
    OpenShm();
    for (uint32_t claim : {cfg_.inline_max, cfg_.max_payload}) {
        void *dst;
        ASSERT_EQ(0, shmx_channel_claim(host_, claim, kWait, &dst));
        memset(dst, 0xAB, claim);
        ASSERT_EQ(-SHMX_EINVAL, shmx_channel_commit_len(host_, claim + 1, 317, 0, 0));
        ASSERT_GT(shmx_channel_commit_len(host_, 5, 317, 0, 0), 0);
        shmx_message_t m;
        ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait)) << "claim " << claim;
        EXPECT_EQ(5u, m.length);
        EXPECT_EQ(0xAB, ((const uint8_t *)m.data)[4]);
        ASSERT_EQ(0, shmx_channel_release(guest_, &m));
    }
    /* The ring still parses after a shrunk inline record: the next one lands right behind it. */
    uint8_t b[3] = {1, 2, 3};
    ASSERT_GT(shmx_channel_send(host_, 318, 0, 0, b, sizeof b, kWait), 0);
    shmx_message_t m;
    ASSERT_EQ(0, shmx_channel_receive(guest_, &m, kWait));
    EXPECT_EQ(3u, m.length);
    EXPECT_EQ(0, shmx_channel_release(guest_, &m));
}

TEST_F(StreamTest, ShouldCarryFragmentsOverTheUnixSocketToo) {
    OpenUds();
    uint32_t seed = 40;
    for (uint32_t len : {0u, 1u, cfg_.max_payload, cfg_.max_payload + 1, 5 * cfg_.max_payload + 77})
        ExpectWholeMessage(len, seed++);
}

}  // namespace
