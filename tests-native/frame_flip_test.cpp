// RELIABILITY.md D6 beyond single flips (frame_test.cpp has those): 1 to 6
// random bit flips anywhere in a frame, and reads that race a writer rewriting
// the frame in place. The frame's CRC-32 covers header and payload; a random
// error pattern passes it with probability 2^-32, so at the counts below a miss
// is astronomically unlikely (about 5e-5 over a whole run), and if one happens
// the test prints the exact case instead of only failing.
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

constexpr size_t kHeader = SHMX_FRAME_HEADER_SIZE;

class FrameFlipTest : public ::testing::Test {
  protected:
    // Version @k of the racing test's frame: its length and payload follow from k alone,
    // so the reader can rebuild exactly what the writer published.
    static std::vector<unsigned char> versionOf(uint64_t k) {
        std::minstd_rand rng(static_cast<uint32_t>(k * 2654435761u + 1));
        size_t len = rng() % (kMaxRacingPayload + 1);
        std::vector<unsigned char> payload(len);
        for (auto &b : payload) b = static_cast<unsigned char>(rng());
        std::vector<unsigned char> frame(kHeader + len);
        int n = shmx_frame_encode(frame.data(), frame.size(), SHMX_TYPE_DATA, 0, k, payload.data(),
                                  static_cast<uint32_t>(len));
        EXPECT_EQ(static_cast<int>(frame.size()), n);
        return frame;
    }

    static constexpr size_t kMaxRacingPayload = 256;
};

TEST_F(FrameFlipTest, shouldRejectEveryFrameWithOneToSixRandomBitFlips) {
    constexpr int kTrials = 200000;
    constexpr int kTrialsPerFrame = 50; // a fresh frame (length, payload, header fields) this often
    std::mt19937_64 rng(0x5EEDF1A5ull);  // deterministic: a failure replays exactly
    std::vector<unsigned char> payload, frame;
    int per_count[7] = {};
    int missed = 0;
    for (int t = 0; t < kTrials; t++) {
        if (t % kTrialsPerFrame == 0) {
            size_t len = rng() % 4097; // 0..4096
            payload.resize(len);
            for (auto &b : payload) b = static_cast<unsigned char>(rng());
            frame.resize(kHeader + len);
            uint16_t type = static_cast<uint16_t>(rng());
            uint8_t flags = static_cast<uint8_t>(rng() & SHMX_FLAGS_KNOWN);
            ASSERT_EQ(static_cast<int>(frame.size()), shmx_frame_encode(frame.data(), frame.size(), type, flags, rng(),
                                                                         payload.data(), static_cast<uint32_t>(len)));
            shmx_frame_t ok;
            ASSERT_EQ(0, shmx_frame_decode(frame.data(), frame.size(), &ok));
        }
        // 1..6 distinct bit positions over header and payload.
        int flips = 1 + static_cast<int>(rng() % 6);
        size_t bits = frame.size() * 8;
        size_t pos[6];
        for (int i = 0; i < flips; i++) {
            bool again;
            do {
                pos[i] = rng() % bits;
                again = std::find(pos, pos + i, pos[i]) != pos + i;
            } while (again);
            frame[pos[i] / 8] ^= static_cast<unsigned char>(1u << (pos[i] % 8));
        }
        shmx_frame_t out;
        int rc = shmx_frame_decode(frame.data(), frame.size(), &out);
        per_count[flips]++;
        if (rc == 0) {
            missed++;
            std::printf("[ miss     ] trial %d: frame of %zu bytes, %d flips accepted at bits", t, frame.size(), flips);
            for (int i = 0; i < flips; i++) std::printf(" %zu", pos[i]);
            std::printf("\n");
        }
        for (int i = 0; i < flips; i++) frame[pos[i] / 8] ^= static_cast<unsigned char>(1u << (pos[i] % 8));
    }
    std::printf("[ measure  ] %d trials (1..6 flips: %d %d %d %d %d %d), %d accepted\n", kTrials, per_count[1],
                per_count[2], per_count[3], per_count[4], per_count[5], per_count[6], missed);
    EXPECT_EQ(missed, 0) << "a flipped frame passed the CRC (cases printed above)";
}

// A writer rewrites one frame in a shared buffer, version after version, without any lock:
// forwards, backwards or payload-first, in chunks of 1 to 16 bytes. A reader copies the buffer
// and decodes its copy. Every frame it accepts must be, byte for byte, one of the versions.
//
// The race is deliberate. Both sides touch the shared bytes only through relaxed __atomic
// byte loads and stores, so it is not a data race in the C++ sense (no UB, and ThreadSanitizer
// stays quiet) while giving no ordering at all: exactly what a reader of a peer's memory gets.
TEST_F(FrameFlipTest, shouldNeverAcceptATornFrameWhileAWriterRewritesIt) {
    constexpr size_t kBuf = kHeader + kMaxRacingPayload;
    alignas(64) static unsigned char shared[kBuf];
    {
        std::vector<unsigned char> v0 = versionOf(0);
        for (size_t i = 0; i < v0.size(); i++) __atomic_store_n(&shared[i], v0[i], __ATOMIC_RELAXED);
    }
    std::atomic<uint64_t> published{0}; // versions fully written so far (k < published+1 may be seen)
    std::atomic<bool> stop{false};

    std::thread writer([&] {
        std::minstd_rand rng(7);
        for (uint64_t k = 1; !stop.load(std::memory_order_relaxed); k++) {
            std::vector<unsigned char> v = versionOf(k);
            // Relaxed: the reader only compares k against this bound after the fact, never orders by it.
            published.store(k, std::memory_order_relaxed); // k may now be partly visible
            size_t n = v.size();
            int mode = static_cast<int>(rng() % 3);
            size_t i = 0;
            while (i < n) {
                size_t chunk = std::min<size_t>(1 + rng() % 16, n - i);
                for (size_t j = 0; j < chunk; j++) {
                    size_t at = mode == 0 ? i + j                           // forwards
                                : mode == 1 ? n - 1 - (i + j)                // backwards
                                            : (i + j + kHeader) % n;         // payload first, header last
                    __atomic_store_n(&shared[at], v[at], __ATOMIC_RELAXED);
                }
                i += chunk;
            }
            if (k % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200)); // a quiet spell
        }
    });

    uint64_t reads = 0, accepted = 0, rejected = 0, bad = 0;
    std::set<uint64_t> seen;
    unsigned char copy[kBuf];
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < end && reads < 2000000) {
        for (size_t i = 0; i < kBuf; i++) copy[i] = __atomic_load_n(&shared[i], __ATOMIC_RELAXED);
        uint64_t bound = published.load(std::memory_order_relaxed) + 1;
        reads++;
        shmx_frame_t f;
        if (shmx_frame_decode(copy, sizeof copy, &f) != 0) {
            rejected++;
            continue;
        }
        accepted++;
        seen.insert(f.id);
        std::vector<unsigned char> want = versionOf(f.id);
        if (f.id > bound || want.size() != kHeader + f.length || std::memcmp(want.data(), copy, want.size()) != 0) {
            if (bad++ < 5)
                std::printf("[ torn     ] read %llu accepted id %llu (length %u) that is not that version\n",
                            (unsigned long long)reads, (unsigned long long)f.id, f.length);
        }
    }
    stop = true;
    writer.join();
    std::printf("[ measure  ] %llu reads: %llu accepted (%zu distinct versions), %llu rejected, writer at %llu\n",
                (unsigned long long)reads, (unsigned long long)accepted, seen.size(), (unsigned long long)rejected,
                (unsigned long long)published.load());
    EXPECT_EQ(bad, 0u) << "a torn frame was delivered";
    EXPECT_GT(accepted, 0u) << "the reader never saw a whole frame: nothing was checked";
}

} // namespace
