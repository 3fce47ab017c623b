/*
 * Concurrency through the public API: one host serving many guests at once,
 * one channel per sending thread, and a slow consumer that must not stall
 * the others (flow control keeps it from taking the shared pool).
 */
#include <unistd.h>

#include <atomic>
#include <chrono>
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
#include "test_process.h"

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kWait = 20000 * kMs; /* generous bound for anything that must happen */
constexpr uint32_t kMiB = 1024u * 1024u;

class ConcurrencyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = unique_label("conc");
    }

    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        shmx_host_destroy(host_);
    }

    /* A host with @n guests connected (over shm) and accepted; host channels in accept order.
     * Guests that stall on purpose are never expelled (liveness_ms 0): these tests are about
     * flow control, and a slow sanitizer run may stall them past any timeout. */
    void Connect(int n) {
        shmx_config_t cfg;
        shmx_config_default(&cfg);
        cfg.liveness_ms = 0;
        ASSERT_EQ(0, shmx_host_create(name_.c_str(), &cfg, &host_));
        guests_.resize(n, nullptr);
        for (int i = 0; i < n; i++) {
            auto g = std::async(std::launch::async, [&] {
                shmx_guest_t *out = nullptr;
                int rc = shmx_guest_connect(name_.c_str(), SHMX_TRANSPORT_SHM, kWait, &out);
                return rc == 0 ? out : nullptr;
            });
            shmx_channel_t *ch = nullptr;
            ASSERT_EQ(0, shmx_host_accept(host_, kWait, &ch));
            host_channels_.push_back(ch);
            guests_[i] = g.get();
            ASSERT_NE(nullptr, guests_[i]);
        }
    }

    uint32_t FreeSlots() {
        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        uint32_t n = 0;
        for (uint32_t c = 0; c < st.class_count; c++) n += st.free_slots[c];
        return n;
    }

    /* Bytes of the slots not on a free list. */
    uint64_t HeldBytes() {
        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        const shmx_config_t *cfg = shmx_host_config(host_);
        uint64_t n = 0;
        for (uint32_t c = 0; c < st.class_count; c++)
            n += (uint64_t)(st.total_slots[c] - st.free_slots[c]) * cfg->class_size[c];
        return n;
    }

    uint32_t TotalSlots() {
        shmx_pool_stats_t st;
        shmx_pool_stats(shmx_host_pool(host_), &st);
        uint32_t n = 0;
        for (uint32_t c = 0; c < st.class_count; c++) n += st.total_slots[c];
        return n;
    }

    PrivateRuntimeDir runtime_; /* made before SetUp, removed after TearDown */
    std::string name_;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::vector<shmx_channel_t *> host_channels_;
};

/* Receive @count whole messages on @ch and check each against pattern(seed + k). Returns how many were right. */
int receive_all(shmx_channel_t *ch, int count, uint32_t seed, size_t len) {
    void *buf = nullptr;
    size_t cap = 0;
    int good = 0;
    for (int k = 0; k < count; k++) {
        int64_t n = shmx_channel_receive_message(ch, &buf, &cap, nullptr, kWait);
        if (n != (int64_t)len) break;
        std::vector<uint8_t> want = pattern(seed + k, len);
        if (memcmp(buf, want.data(), len) == 0) good++;
    }
    free(buf);
    return good;
}

TEST_F(ConcurrencyTest, ShouldServeEveryGuestWhileOneConsumerStalls) {
    const int guests = 4, count = 12;
    const size_t len = 3 * kMiB + 17; /* fragments, through the shared pool */
    Connect(guests);
    /* The host sends to every guest from its own thread; guest 0 does not read until the end. */
    std::vector<std::future<int>> senders;
    for (int g = 0; g < guests; g++) {
        senders.push_back(std::async(std::launch::async, [&, g] {
            int sent = 0;
            for (int k = 0; k < count; k++) {
                std::vector<uint8_t> msg = pattern(100u * g + k, len);
                if (shmx_channel_send(host_channels_[g], 400, 0, 0, msg.data(), (uint32_t)len, kWait) > 0) sent++;
            }
            return sent;
        }));
    }
    std::vector<std::future<int>> readers;
    for (int g = 1; g < guests; g++)
        readers.push_back(std::async(std::launch::async, [&, g] {
            return receive_all(shmx_guest_channel(guests_[g]), count, 100u * g, len);
        }));
    for (auto &r : readers) EXPECT_EQ(count, r.get()) << "a busy guest was held up by the stalled one";
    for (int g = 1; g < guests; g++) EXPECT_EQ(count, senders[g].get());
    /* The stalled guest holds at most its window of the pool, so others were never short. */
    EXPECT_LE(HeldBytes(), shmx_host_config(host_)->window_bytes);
    EXPECT_GT(HeldBytes(), 0u) << "the stalled guest's sender did get its window's worth out";
    /* Then it reads: every message arrives, nothing was dropped. */
    EXPECT_EQ(count, receive_all(shmx_guest_channel(guests_[0]), count, 0, len));
    EXPECT_EQ(count, senders[0].get());
    EXPECT_EQ(TotalSlots(), FreeSlots()) << "every slot came back";
}

TEST_F(ConcurrencyTest, ShouldTakeConcurrentSendsFromManyThreadsOneChannelEach) {
    const int threads = 6, count = 300;
    Connect(threads);
    /* One guest connection (and so one channel) per sending thread, all in this process. */
    std::vector<std::future<int>> senders;
    for (int t = 0; t < threads; t++) {
        senders.push_back(std::async(std::launch::async, [&, t] {
            shmx_channel_t *ch = shmx_guest_channel(guests_[t]);
            int sent = 0;
            for (int k = 0; k < count; k++) {
                size_t len = (size_t)((k * 977 + t * 131) % 70000); /* inline and slots of two classes */
                std::vector<uint8_t> msg = pattern(1000u * t + k, len);
                if (shmx_channel_send(ch, 401, 0, 0, msg.data(), (uint32_t)len, kWait) > 0) sent++;
            }
            return sent;
        }));
    }
    std::vector<std::future<int>> receivers;
    for (int t = 0; t < threads; t++) {
        receivers.push_back(std::async(std::launch::async, [&, t] {
            int good = 0;
            for (int k = 0; k < count; k++) {
                shmx_message_t m;
                if (shmx_channel_receive(host_channels_[t], &m, kWait) != 0) break;
                size_t len = (size_t)((k * 977 + t * 131) % 70000);
                std::vector<uint8_t> want = pattern(1000u * t + k, len);
                if (m.length == len && (len == 0 || memcmp(m.data, want.data(), len) == 0)) good++;
                shmx_channel_release(host_channels_[t], &m);
            }
            return good;
        }));
    }
    for (int t = 0; t < threads; t++) {
        EXPECT_EQ(count, senders[t].get());
        EXPECT_EQ(count, receivers[t].get()) << "thread " << t;
    }
    EXPECT_EQ(TotalSlots(), FreeSlots());
}

}  // namespace
