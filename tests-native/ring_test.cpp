/*
 * Ring tests: records, padding and wrap-around, usage errors, validation of
 * everything a peer could scribble into shared memory, then a producer and a
 * consumer running at once over one mapping, over two mappings of one memfd,
 * and across processes.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "private_headers.h"

namespace {

constexpr uint32_t kCap = 1024;         /* small ring for the single-threaded tests */
constexpr uint32_t kStreamCap = 65536;  /* the default ring size, for the concurrent tests */
constexpr size_t kCtlBytes = 4096;      /* control page in front of the data area in a memfd */
constexpr size_t kSentOffset = 2048;    /* producer's final count, in the control page */
constexpr int64_t kMs = 1000000;

/* Shared words poked as a peer would (the test plays the hostile side). */
void poke64(void *word, uint64_t v) { __atomic_store_n(static_cast<uint64_t *>(word), v, __ATOMIC_RELEASE); }
uint64_t peek64(void *word) { return __atomic_load_n(static_cast<uint64_t *>(word), __ATOMIC_ACQUIRE); }

void poke_header(uint8_t *data, uint64_t pos, uint32_t body_len, uint16_t kind, uint16_t reserved = 0) {
    shmx_record_header_t h{body_len, kind, reserved};
    std::memcpy(data + (pos & (kCap - 1)), &h, sizeof h);
}

uint64_t rec_bytes(uint32_t body_len) { return (8u + (uint64_t)body_len + 7u) & ~7ull; }

/* Body content: word 0 is the sequence number, the rest derives from it; a partial last word is cut. */
uint64_t body_word(uint64_t seq, size_t i) { return i == 0 ? seq : seq * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull; }

void fill_body(void *body, uint32_t len, uint64_t seq) {
    auto *p = static_cast<uint8_t *>(body);
    size_t i = 0;
    for (; (i + 1) * 8 <= len; i++) {
        uint64_t w = body_word(seq, i);
        std::memcpy(p + i * 8, &w, 8);
    }
    uint64_t w = body_word(seq, i);
    std::memcpy(p + i * 8, &w, len - i * 8);
}

bool body_ok(const void *body, uint32_t len, uint64_t seq) {
    auto *p = static_cast<const uint8_t *>(body);
    size_t i = 0;
    for (; (i + 1) * 8 <= len; i++) {
        uint64_t w = body_word(seq, i);
        if (std::memcmp(p + i * 8, &w, 8) != 0) return false;
    }
    uint64_t w = body_word(seq, i);
    return std::memcmp(p + i * 8, &w, len - i * 8) == 0;
}

struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

/* ---- producer and consumer loops shared by the thread and process tests ---- */

struct StreamSpec {
    shmx_idle_t idle;
    bool fixed64;   /* every body 64 bytes; otherwise 8..256 bytes, varying */
    int64_t run_ns; /* how long the producer keeps sending */
};

uint32_t stream_len(const StreamSpec &s, uint64_t seq) { return s.fixed64 ? 64u : 8u + (uint32_t)(seq * 7919u % 249u); }

/* Sends until run_ns passes, stores the count at kSentOffset, closes. Returns the count or a negative code. */
int64_t produce_stream(uint8_t *base, uint32_t cap, const StreamSpec &s) {
    auto *ctl = reinterpret_cast<shmx_ring_ctl_t *>(base);
    shmx_ring_t r;
    int rc = shmx_ring_attach(&r, ctl, base + kCtlBytes, cap);
    if (rc < 0) return rc;
    int64_t end = shmx_now_ns() + s.run_ns;
    int64_t hard = end + 10000 * kMs;
    uint64_t seq = 1;
    for (;; seq++) {
        if ((seq & 255u) == 0 && shmx_now_ns() >= end) break;
        uint32_t len = stream_len(s, seq);
        void *body;
        while ((rc = shmx_ring_claim(&r, len, SHMX_RECORD_INLINE, &body)) == -SHMX_EWOULDBLOCK) {
            int64_t now = shmx_now_ns();
            if (now >= hard) return -ETIMEDOUT;
            rc = shmx_ring_wait_space(&r, len, std::min(hard, now + 100 * kMs), &s.idle);
            if (rc < 0 && rc != -ETIMEDOUT) return rc;
        }
        if (rc < 0) return rc;
        fill_body(body, len, seq);
        shmx_ring_commit(&r);
    }
    poke64(base + kSentOffset, seq - 1); /* before close, whose release publishes it */
    shmx_ring_close(ctl);
    return (int64_t)(seq - 1);
}

struct ConsumeResult {
    int64_t received; /* messages checked and released */
    int rc;           /* 0: the producer closed and everything was drained */
};

/* Checks every message in order until the ring is closed and drained; closes it on failure too. */
ConsumeResult consume_stream(uint8_t *base, uint32_t cap, const StreamSpec &s) {
    auto *ctl = reinterpret_cast<shmx_ring_ctl_t *>(base);
    shmx_ring_t r;
    ConsumeResult res{0, shmx_ring_attach(&r, ctl, base + kCtlBytes, cap)};
    int64_t hard = shmx_now_ns() + s.run_ns + 10000 * kMs;
    uint64_t expect = 1;
    while (res.rc == 0) {
        shmx_ring_record_t rec;
        int rc = shmx_ring_peek(&r, &rec);
        if (rc == -SHMX_EEMPTY) {
            int64_t now = shmx_now_ns();
            if (now >= hard) res.rc = -ETIMEDOUT;
            else shmx_ring_wait_data(&r, std::min(hard, now + 100 * kMs), &s.idle, nullptr);
            continue;
        }
        if (rc == -SHMX_ECLOSED) break;
        if (rc < 0) {
            res.rc = rc;
            break;
        }
        if (rec.kind != SHMX_RECORD_INLINE || rec.body_len != stream_len(s, expect) ||
            !body_ok(rec.body, rec.body_len, expect)) {
            res.rc = -SHMX_ECORRUPT;
            break;
        }
        res.rc = shmx_ring_release(&r, rec.end);
        expect++;
        res.received++;
    }
    if (res.rc != 0) shmx_ring_close(ctl); /* stop the producer early */
    return res;
}

/* A ring control page and data area in a memfd, mapped once or twice. */
struct SharedRing {
    int fd = -1;
    size_t len = 0;
    uint8_t *a = nullptr;
    uint8_t *b = nullptr;

    int open(uint32_t cap, bool twice) {
        fd = memfd_create("shmx-ring-test", MFD_CLOEXEC);
        if (fd < 0) return -errno;
        len = kCtlBytes + cap;
        if (ftruncate(fd, (off_t)len) != 0) return -errno;
        a = map();
        if (!a) return -errno;
        b = twice ? map() : a;
        if (!b) return -errno;
        shmx_ring_format(reinterpret_cast<shmx_ring_ctl_t *>(a), a + kCtlBytes, cap);
        return 0;
    }
    uint8_t *map() {
        void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        return p == MAP_FAILED ? nullptr : static_cast<uint8_t *>(p);
    }
    ~SharedRing() {
        if (b && b != a) munmap(b, len);
        if (a) munmap(a, len);
        if (fd >= 0) close(fd);
    }
};

void report_rate(const char *what, int64_t msgs, int64_t ns) {
    std::printf("[ informal ] %s: %lld messages in %.2f s = %.2f M messages/s (not a benchmark)\n", what,
                (long long)msgs, (double)ns / 1e9, (double)msgs * 1e3 / (double)ns);
}

}  // namespace

class RingTest : public ::testing::Test {
protected:
    shmx_ring_ctl_t *ctl = nullptr;
    uint8_t *data = nullptr;
    shmx_ring_t prod{};
    shmx_ring_t cons{};
    uint64_t next_seq = 1;

    void SetUp() override {
        /* Exactly kCap bytes of data, so ASan flags any read past the end. */
        ctl = static_cast<shmx_ring_ctl_t *>(std::aligned_alloc(64, sizeof(shmx_ring_ctl_t)));
        data = static_cast<uint8_t *>(std::aligned_alloc(64, kCap));
        ASSERT_NE(nullptr, ctl);
        ASSERT_NE(nullptr, data);
        std::memset(data, 0xEE, kCap); /* format must clear leftovers */
        shmx_ring_format(ctl, data, kCap);
        ASSERT_EQ(0, shmx_ring_attach(&prod, ctl, data, kCap));
        ASSERT_EQ(0, shmx_ring_attach(&cons, ctl, data, kCap));
    }
    void TearDown() override {
        std::free(data);
        std::free(ctl);
    }

    int produce(uint32_t len, uint64_t seq) {
        void *body = nullptr;
        int rc = shmx_ring_claim(&prod, len, SHMX_RECORD_INLINE, &body);
        if (rc < 0) return rc;
        fill_body(body, len, seq);
        return shmx_ring_commit(&prod);
    }

    /* Produce and consume filler records until the producer's tail sits at offset @target. */
    void advance_to(uint32_t target) {
        for (int guard = 0; guard < 64; guard++) {
            uint32_t off = (uint32_t)(prod.tail & (kCap - 1));
            if (off == target) return;
            uint32_t rec = std::min<uint32_t>(off < target ? target - off : kCap - off, kCap / 2);
            ASSERT_EQ(0, produce(rec - 8, 0));
            shmx_ring_record_t out;
            ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
            ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
        }
        FAIL() << "could not reach offset " << target;
    }

    void expect_record(uint32_t len, uint64_t seq, shmx_ring_record_t *out_copy = nullptr) {
        shmx_ring_record_t out;
        ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
        EXPECT_EQ(SHMX_RECORD_INLINE, out.kind);
        ASSERT_EQ(len, out.body_len);
        EXPECT_TRUE(body_ok(out.body, len, seq));
        if (out_copy) *out_copy = out;
    }
};

/* ---------------- records, padding, usage ---------------- */

TEST_F(RingTest, ShouldReportEmptyRingAsEmpty) {
    shmx_ring_record_t out;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_data(&cons, shmx_deadline(0), nullptr, nullptr));
}

TEST_F(RingTest, ShouldRoundTripOneInlineRecordWithBodyIntact) {
    void *body = nullptr;
    ASSERT_EQ(0, shmx_ring_claim(&prod, 37, SHMX_RECORD_INLINE, &body));
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(body) % 8);
    fill_body(body, 37, 42);
    shmx_ring_record_t out;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out)) << "visible before commit";
    ASSERT_EQ(0, shmx_ring_commit(&prod));
    EXPECT_EQ(48u, peek64((void *)&ctl->tail));
    EXPECT_EQ(0, shmx_ring_wait_data(&cons, shmx_deadline(0), nullptr, nullptr));
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(SHMX_RECORD_INLINE, out.kind);
    EXPECT_EQ(37u, out.body_len);
    EXPECT_EQ(data + 8, out.body);
    EXPECT_EQ(48u, out.end);
    EXPECT_TRUE(body_ok(out.body, 37, 42));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
    EXPECT_EQ(48u, peek64((void *)&ctl->head));
}

TEST_F(RingTest, ShouldCarrySlotRecordsAndEmptyBodies) {
    void *body = nullptr;
    ASSERT_EQ(0, shmx_ring_claim(&prod, 40, SHMX_RECORD_SLOT, &body));
    fill_body(body, 40, 7);
    ASSERT_EQ(0, shmx_ring_commit(&prod));
    ASSERT_EQ(0, produce(0, 8));
    shmx_ring_record_t out;
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(SHMX_RECORD_SLOT, out.kind);
    EXPECT_TRUE(body_ok(out.body, 40, 7));
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(0u, out.body_len);
    EXPECT_EQ(56u, out.end);
}

TEST_F(RingTest, ShouldFillUntilWouldBlockThenDrain) {
    uint64_t produced = 0;
    int rc = 0;
    while ((rc = produce(56, next_seq)) == 0) {
        next_seq++;
        produced++;
        ASSERT_LE(produced, kCap / 64) << "more records than fit";
    }
    EXPECT_EQ(-SHMX_EWOULDBLOCK, rc);
    EXPECT_EQ(kCap / 64, produced);
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_space(&prod, 56, shmx_deadline(0), nullptr));

    shmx_ring_record_t out;
    for (uint64_t seq = 1; seq <= produced; seq++) {
        ASSERT_NO_FATAL_FAILURE(expect_record(56, seq, &out));
        if (seq == 1) {
            EXPECT_EQ(-SHMX_EWOULDBLOCK, produce(56, 0)) << "peeked but not released: still held";
            ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
            EXPECT_EQ(0, shmx_ring_wait_space(&prod, 56, shmx_deadline(0), nullptr));
        } else {
            ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
        }
    }
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(0, produce(56, 99));
    ASSERT_NO_FATAL_FAILURE(expect_record(56, 99));
}

TEST_F(RingTest, ShouldWrapWithPaddingAtManyOffsets) {
    Rng rng{0x243F6A8885A308D3ull};
    const uint32_t max_body = shmx_ring_max_body(&prod);
    std::deque<uint32_t> in_flight; /* lengths produced, not yet peeked */
    std::deque<uint64_t> held;      /* ends peeked, not yet released */
    std::set<uint32_t> pad_offsets;
    uint64_t expect_seq = 1;
    uint64_t expect_pos = 0;

    for (int cycle = 0; cycle < 6000; cycle++) {
        for (uint64_t k = rng.next() % 4 + 1; k > 0; k--) {
            uint64_t pick = rng.next() % 10;
            uint32_t len = (uint32_t)(rng.next() % (pick < 5 ? 65 : pick < 9 ? 301 : max_body + 1));
            int rc = produce(len, next_seq);
            if (rc == -SHMX_EWOULDBLOCK) break;
            ASSERT_EQ(0, rc);
            in_flight.push_back(len);
            next_seq++;
        }
        for (uint64_t k = rng.next() % 4 + 1; k > 0; k--) {
            shmx_ring_record_t out;
            int rc = shmx_ring_peek(&cons, &out);
            if (rc == -SHMX_EEMPTY) break;
            ASSERT_EQ(0, rc);
            ASSERT_FALSE(in_flight.empty());
            ASSERT_EQ(in_flight.front(), out.body_len);
            ASSERT_TRUE(body_ok(out.body, out.body_len, expect_seq)) << "seq " << expect_seq;
            uint64_t pos = out.end - rec_bytes(out.body_len);
            ASSERT_EQ(data + (pos & (kCap - 1)) + 8, out.body);
            ASSERT_LE((pos & (kCap - 1)) + rec_bytes(out.body_len), kCap) << "record crosses the end";
            if (pos != expect_pos) {
                /* Padding was skipped: it must have run from expect_pos to the end. */
                uint32_t off = (uint32_t)(expect_pos & (kCap - 1));
                ASSERT_NE(0u, off);
                ASSERT_EQ(kCap - off, pos - expect_pos);
                pad_offsets.insert(off);
            }
            expect_pos = out.end;
            in_flight.pop_front();
            held.push_back(out.end);
            expect_seq++;
        }
        for (uint64_t keep = rng.next() % 3; held.size() > keep; held.pop_front())
            ASSERT_EQ(0, shmx_ring_release(&cons, held.front()));
    }
    EXPECT_GT(expect_seq, 5000u);
    EXPECT_GE(pad_offsets.size(), 40u) << "padding exercised at too few offsets";
}

TEST_F(RingTest, ShouldPlaceRecordExactlyFillingToTheEndWithoutPadding) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 64));
    uint64_t pos = prod.tail;
    ASSERT_EQ(0, produce(56, 5)); /* 64 bytes: exactly up to the end */
    EXPECT_EQ(pos + 64, prod.tail) << "no padding added";
    ASSERT_EQ(0, produce(3, 6)); /* next record at offset 0 */
    shmx_ring_record_t out;
    ASSERT_NO_FATAL_FAILURE(expect_record(56, 5, &out));
    EXPECT_EQ(data + kCap - 56, out.body);
    EXPECT_EQ(pos + 64, out.end);
    ASSERT_NO_FATAL_FAILURE(expect_record(3, 6, &out));
    EXPECT_EQ(data + 8, out.body);
    EXPECT_EQ(pos + 64 + 16, out.end);
}

TEST_F(RingTest, ShouldAcceptMaxBodyAtEveryOffsetAndRejectOneMore) {
    const uint32_t max_body = shmx_ring_max_body(&prod);
    EXPECT_EQ(kCap / 2 - 8, max_body);
    void *body = nullptr;
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_ring_claim(&prod, max_body + 1, SHMX_RECORD_INLINE, &body));
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_ring_claim(&prod, UINT32_MAX, SHMX_RECORD_INLINE, &body));
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_ring_wait_space(&prod, max_body + 1, shmx_deadline(0), nullptr));
    for (uint32_t target : {0u, 8u, 64u, 504u, 512u, 520u, 1000u, 1016u}) {
        SCOPED_TRACE(target);
        ASSERT_NO_FATAL_FAILURE(advance_to(target));
        ASSERT_EQ(0, shmx_ring_wait_space(&prod, max_body, shmx_deadline(0), nullptr));
        ASSERT_EQ(0, produce(max_body, next_seq));
        ASSERT_NO_FATAL_FAILURE(expect_record(max_body, next_seq));
        ASSERT_EQ(0, shmx_ring_release(&cons, cons.read));
        next_seq++;
    }
}

TEST_F(RingTest, ShouldRejectReleaseOutOfOrder) {
    shmx_ring_record_t r1, r2, r3;
    for (uint64_t s = 1; s <= 3; s++) ASSERT_EQ(0, produce(16, s));
    ASSERT_NO_FATAL_FAILURE(expect_record(16, 1, &r1));
    ASSERT_NO_FATAL_FAILURE(expect_record(16, 2, &r2));
    EXPECT_EQ(-SHMX_EORDER, shmx_ring_release(&cons, r2.end + 24)) << "not peeked yet";
    EXPECT_EQ(-SHMX_EORDER, shmx_ring_release(&cons, 0)) << "not past head";
    ASSERT_EQ(0, shmx_ring_release(&cons, r1.end));
    EXPECT_EQ(-SHMX_EORDER, shmx_ring_release(&cons, r1.end)) << "released twice";
    ASSERT_NO_FATAL_FAILURE(expect_record(16, 3, &r3));
    ASSERT_EQ(0, shmx_ring_release(&cons, r3.end)) << "releases 2 and 3 together";
    EXPECT_EQ(-SHMX_EORDER, shmx_ring_release(&cons, r2.end)) << "behind head";
    EXPECT_EQ(r3.end, peek64((void *)&ctl->head));
}

TEST_F(RingTest, ShouldRejectSecondClaimWhileOneIsOpen) {
    void *b1 = nullptr, *b2 = nullptr;
    EXPECT_EQ(-SHMX_ESTATE, shmx_ring_commit(&prod));
    EXPECT_EQ(-SHMX_ESTATE, shmx_ring_abort(&prod));
    ASSERT_EQ(0, shmx_ring_claim(&prod, 8, SHMX_RECORD_INLINE, &b1));
    EXPECT_EQ(-SHMX_ESTATE, shmx_ring_claim(&prod, 8, SHMX_RECORD_INLINE, &b2));
    fill_body(b1, 8, 1);
    ASSERT_EQ(0, shmx_ring_commit(&prod));
    EXPECT_EQ(-SHMX_ESTATE, shmx_ring_commit(&prod));
    ASSERT_NO_FATAL_FAILURE(expect_record(8, 1));
}

TEST_F(RingTest, ShouldRejectPaddingOrUnknownKindFromProducer) {
    void *body = nullptr;
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_claim(&prod, 8, SHMX_RECORD_PAD, &body));
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_claim(&prod, 8, 0, &body));
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_claim(&prod, 8, 77, &body));
}

TEST_F(RingTest, ShouldLeaveNothingVisibleAfterAbort) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 16));
    uint64_t tail = peek64((void *)&ctl->tail);
    void *body = nullptr;
    ASSERT_EQ(0, shmx_ring_claim(&prod, 100, SHMX_RECORD_INLINE, &body)); /* pads to the end */
    EXPECT_EQ(data + 8, body);
    fill_body(body, 100, 1);
    ASSERT_EQ(0, shmx_ring_abort(&prod));
    EXPECT_EQ(tail, peek64((void *)&ctl->tail));
    shmx_ring_record_t out;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    ASSERT_EQ(0, produce(0, 2)); /* fits before the end, where the padding was written */
    ASSERT_EQ(0, produce(20, 3));
    ASSERT_NO_FATAL_FAILURE(expect_record(0, 2, &out));
    EXPECT_EQ(tail + 8, out.end);
    ASSERT_NO_FATAL_FAILURE(expect_record(20, 3));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
}

TEST_F(RingTest, ShouldDrainPublishedRecordsBeforeReportingClosed) {
    ASSERT_EQ(0, produce(10, 1));
    ASSERT_EQ(0, produce(11, 2));
    EXPECT_EQ(0, shmx_ring_is_closed(ctl));
    shmx_ring_close(ctl);
    EXPECT_NE(0, shmx_ring_is_closed(ctl));
    void *body = nullptr;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_ring_claim(&prod, 8, SHMX_RECORD_INLINE, &body));
    EXPECT_EQ(-SHMX_ECLOSED, shmx_ring_wait_space(&prod, 8, shmx_deadline(1000 * kMs), nullptr));
    EXPECT_EQ(0, shmx_ring_wait_data(&cons, shmx_deadline(1000 * kMs), nullptr, nullptr));
    ASSERT_NO_FATAL_FAILURE(expect_record(10, 1));
    ASSERT_NO_FATAL_FAILURE(expect_record(11, 2));
    shmx_ring_record_t out;
    EXPECT_EQ(-SHMX_ECLOSED, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(0, shmx_ring_wait_data(&cons, shmx_deadline(1000 * kMs), nullptr, nullptr)) << "closed counts as ready";
    EXPECT_EQ(0, shmx_ring_release(&cons, cons.read)) << "held records can still be released";
}

TEST_F(RingTest, ShouldWakeBlockedWaitersOnClose) {
    shmx_idle_t sleep_now{0, 0};
    while (produce(56, 0) == 0) {
    }
    int space_rc = 1;
    std::thread t([&] { space_rc = shmx_ring_wait_space(&prod, 56, shmx_deadline(20000 * kMs), &sleep_now); });
    for (int64_t end = shmx_now_ns() + 5000 * kMs;
         __atomic_load_n((uint32_t *)&ctl->space.waiters, __ATOMIC_ACQUIRE) == 0 && shmx_now_ns() < end;)
        std::this_thread::yield();
    shmx_ring_close(ctl);
    t.join();
    EXPECT_EQ(-SHMX_ECLOSED, space_rc);
}

TEST_F(RingTest, ShouldTimeOutWaitingForDataOrSpace) {
    shmx_idle_t idle{100, 2};
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_data(&cons, shmx_deadline(20 * kMs), &idle, nullptr));
    while (produce(56, 0) == 0) {
    }
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_space(&prod, 56, shmx_deadline(20 * kMs), &idle));
    EXPECT_EQ(0u, __atomic_load_n((uint32_t *)&ctl->space.waiters, __ATOMIC_ACQUIRE));
}

/* ---------------- validation of shared values ---------------- */

TEST_F(RingTest, ShouldRejectCorruptPositionsOnAttach) {
    shmx_ring_t r;
    poke64((void *)&ctl->tail, kCap + 8);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_attach(&r, ctl, data, kCap)) << "tail beyond head + capacity";
    poke64((void *)&ctl->tail, 0);
    poke64((void *)&ctl->head, 8);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_attach(&r, ctl, data, kCap)) << "head beyond tail";
    poke64((void *)&ctl->tail, 12);
    poke64((void *)&ctl->head, 4);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_attach(&r, ctl, data, kCap)) << "misaligned";
    poke64((void *)&ctl->tail, kCap + 64);
    poke64((void *)&ctl->head, 64);
    EXPECT_EQ(0, shmx_ring_attach(&r, ctl, data, kCap)) << "exactly full";
    EXPECT_EQ(64u, r.read);
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_attach(&r, ctl, data, 1000)) << "not a power of two";
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_attach(&r, ctl, data, 32)) << "too small";
}

TEST_F(RingTest, ShouldNotTrustTailWhenReading) {
    /* The consumer polls record headers; a tail a peer scribbles on publishes nothing. */
    shmx_ring_record_t out;
    for (uint64_t bad : {(uint64_t)kCap + 8, (uint64_t)kCap * 4, UINT64_MAX - 7, (uint64_t)1 << 63, (uint64_t)8}) {
        poke64((void *)&ctl->tail, bad);
        EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out)) << bad;
        EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_data(&cons, shmx_deadline(0), nullptr, nullptr)) << bad;
    }
    EXPECT_EQ(0u, cons.read);
    poke64((void *)&ctl->tail, 0);
    ASSERT_EQ(0, produce(8, 1));
    ASSERT_NO_FATAL_FAILURE(expect_record(8, 1));
}

TEST_F(RingTest, ShouldRejectRecordOverlappingHeldRecords) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 64));
    ASSERT_EQ(0, produce(56, 1)); /* 64 bytes up to the end, held below */
    shmx_ring_record_t out;
    ASSERT_NO_FATAL_FAILURE(expect_record(56, 1, &out)); /* head kCap - 64, read at offset 0 */
    /* From offset 0 only kCap - 64 bytes are free: more would overwrite the held record. */
    for (uint32_t bad : {kCap - 64u, kCap - 16u, kCap - 8u, UINT32_MAX - 7, UINT32_MAX}) {
        poke_header(data, 0, bad, SHMX_RECORD_INLINE);
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << bad;
    }
    poke_header(data, 0, kCap - 72u, SHMX_RECORD_INLINE);
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out)) << "exactly the free space is fine";
    EXPECT_EQ(kCap - 72u, out.body_len);
}

TEST_F(RingTest, ShouldSeeNothingNewWhenHeldRecordsFillTheRing) {
    while (produce(56, 0) == 0) {
    }
    shmx_ring_record_t out;
    while (shmx_ring_peek(&cons, &out) == 0) {
    }
    EXPECT_EQ((uint64_t)kCap, cons.read - cons.head) << "every byte held";
    /* read has come round to the oldest held record, whose header is still there. */
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_data(&cons, shmx_deadline(0), nullptr, nullptr));
    ASSERT_EQ(0, shmx_ring_release(&cons, cons.read));
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    for (uint32_t i = 0; i < kCap; i++) ASSERT_EQ(0, data[i]) << "released space reads zero, at " << i;
}

TEST_F(RingTest, ShouldShrinkAnOpenClaimAndZeroWhatItGaveUp) {
    void *body = nullptr;
    ASSERT_EQ(0, shmx_ring_claim(&prod, 200, SHMX_RECORD_INLINE, &body));
    std::memset(body, 0xAB, 200);
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_shrink(&prod, 201));
    ASSERT_EQ(0, shmx_ring_shrink(&prod, 20));
    fill_body(body, 20, 77);
    ASSERT_EQ(0, shmx_ring_commit(&prod));
    ASSERT_NO_FATAL_FAILURE(expect_record(20, 77));
    /* The next record starts right behind the shrunk one, where the cut bytes were zeroed. */
    ASSERT_EQ(0, produce(30, 78));
    ASSERT_NO_FATAL_FAILURE(expect_record(30, 78));
    EXPECT_EQ(-SHMX_ESTATE, shmx_ring_shrink(&prod, 0));
}

TEST_F(RingTest, ShouldWaitUntilTheConsumerReleasedAPosition) {
    ASSERT_EQ(0, produce(40, 1));
    ASSERT_EQ(0, produce(40, 2));
    uint64_t first_end = rec_bytes(40), second_end = 2 * rec_bytes(40);
    uint64_t head = 1;
    ASSERT_EQ(0, shmx_ring_released(&prod, &head));
    EXPECT_EQ(0u, head);
    shmx_idle_t idle{100, 0};
    EXPECT_EQ(-ETIMEDOUT, shmx_ring_wait_released(&prod, first_end, shmx_now_ns() + 2 * kMs, &idle));
    EXPECT_EQ(-SHMX_EINVAL, shmx_ring_wait_released(&prod, second_end + 8, shmx_now_ns() + 2 * kMs, &idle));
    auto waiter = std::async(std::launch::async, [&] {
        return shmx_ring_wait_released(&prod, second_end, shmx_now_ns() + 5000 * kMs, &idle);
    });
    shmx_ring_record_t out;
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
    ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out));
    ASSERT_EQ(0, shmx_ring_release(&cons, out.end));
    EXPECT_EQ(0, waiter.get());
    ASSERT_EQ(0, shmx_ring_released(&prod, &head));
    EXPECT_EQ(second_end, head);
    /* A consumer that claims to have released more than was published is caught. */
    poke64(&ctl->head, second_end + 64);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_released(&prod, &head));
}

TEST_F(RingTest, ShouldZeroWhatAnAbortedClaimExposed) {
    void *body = nullptr;
    ASSERT_EQ(0, shmx_ring_claim(&prod, 200, SHMX_RECORD_INLINE, &body));
    std::memset(body, 0xAB, 200);
    ASSERT_EQ(0, shmx_ring_abort(&prod));
    /* A shorter record now: the next one starts inside the aborted body, which must read zero. */
    ASSERT_EQ(0, produce(8, 1));
    ASSERT_NO_FATAL_FAILURE(expect_record(8, 1));
    shmx_ring_record_t out;
    EXPECT_EQ(-SHMX_EEMPTY, shmx_ring_peek(&cons, &out));
    ASSERT_EQ(0, produce(8, 2));
    ASSERT_NO_FATAL_FAILURE(expect_record(8, 2));
}

TEST_F(RingTest, ShouldRejectRecordCrossingTheEnd) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 16));
    uint64_t head = prod.tail;
    shmx_ring_record_t out;
    for (uint32_t bad : {9u, 16u, 48u}) {
        poke_header(data, head, bad, SHMX_RECORD_INLINE);
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << bad;
    }
    poke_header(data, head, 8, SHMX_RECORD_INLINE);
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out)) << "exactly to the end is fine";
    EXPECT_EQ(head + 16, out.end);
}

TEST_F(RingTest, ShouldRejectPadNotEndingAtTheEnd) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 64));
    uint64_t head = prod.tail;
    shmx_ring_record_t out;
    poke_header(data, head + 64, 8, SHMX_RECORD_INLINE); /* a valid record at offset 0 */
    for (uint32_t bad : {0u, 16u, 48u, 64u, 1000u, UINT32_MAX}) {
        poke_header(data, head, bad, SHMX_RECORD_PAD);
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << bad;
    }
    poke_header(data, head, 56, SHMX_RECORD_PAD, 1);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << "reserved set on padding";
    poke_header(data, head + 64, 8, SHMX_RECORD_PAD);
    poke_header(data, head, 56, SHMX_RECORD_PAD);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << "padding after padding";
    poke_header(data, head + 64, 8, SHMX_RECORD_INLINE);
    ASSERT_EQ(0, shmx_ring_peek(&cons, &out)) << "nothing consumed by the failures";
    EXPECT_EQ(data + 8, out.body);
    EXPECT_EQ(head + 80, out.end);
}

TEST_F(RingTest, ShouldRejectPadPublishedWithoutItsRecord) {
    ASSERT_NO_FATAL_FAILURE(advance_to(kCap - 64));
    uint64_t head = prod.tail;
    shmx_ring_record_t out;
    poke_header(data, head, 56, SHMX_RECORD_PAD);
    poke64((void *)&ctl->tail, head + 64);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out));
    poke64((void *)&ctl->tail, head + 32);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << "padding beyond tail";
}

TEST_F(RingTest, ShouldRejectPadAtOffsetZero) {
    /* At offset 0 nothing needs padding: a short one does not end at the end, a full one
     * would be published alone. */
    shmx_ring_record_t out;
    poke64((void *)&ctl->tail, kCap);
    poke_header(data, 0, 0, SHMX_RECORD_PAD);
    poke_header(data, 8, 0, SHMX_RECORD_INLINE);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out));
    poke_header(data, 0, kCap - 8, SHMX_RECORD_PAD);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out));
    EXPECT_EQ(0u, cons.read);
}

TEST_F(RingTest, ShouldRejectUnknownKind) {
    shmx_ring_record_t out;
    ASSERT_EQ(0, produce(16, 1));
    for (uint16_t bad : {0, 4, 0x7fff, 0xffff}) {
        poke_header(data, 0, 16, bad);
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out)) << bad;
    }
    poke_header(data, 0, 16, SHMX_RECORD_INLINE);
    ASSERT_NO_FATAL_FAILURE(expect_record(16, 1));
}

TEST_F(RingTest, ShouldRejectNonZeroReserved) {
    shmx_ring_record_t out;
    ASSERT_EQ(0, produce(16, 1));
    poke_header(data, 0, 16, SHMX_RECORD_INLINE, 1);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out));
    poke_header(data, 0, 16, SHMX_RECORD_SLOT, 0x8000);
    EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_peek(&cons, &out));
    poke_header(data, 0, 16, SHMX_RECORD_INLINE);
    ASSERT_NO_FATAL_FAILURE(expect_record(16, 1));
}

TEST_F(RingTest, ShouldRejectConsumerHeadOutOfRangeOnClaim) {
    while (produce(56, 0) == 0) {
    }
    uint64_t tail = prod.tail;
    void *body = nullptr;
    for (uint64_t bad : {tail + 8, tail - kCap - 8, UINT64_MAX}) {
        poke64((void *)&ctl->head, bad);
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_claim(&prod, 56, SHMX_RECORD_INLINE, &body)) << bad;
        EXPECT_EQ(-SHMX_ECORRUPT, shmx_ring_wait_space(&prod, 56, shmx_deadline(1000 * kMs), nullptr)) << bad;
    }
    poke64((void *)&ctl->head, tail - kCap + 64);
    EXPECT_EQ(0, produce(56, 1)) << "a valid head again";
}

TEST_F(RingTest, ShouldNeverReadOutOfBoundsWhateverPeersWrite) {
    /* Random headers and positions: peek either rejects or returns a record inside the data
     * area and inside head + capacity. ASan (redzone right after the data) catches any stray read. */
    Rng rng{0x9E3779B97F4A7C15ull};
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        for (uint32_t off = 0; off < kCap; off += 8) {
            uint64_t pick = rng.next();
            uint32_t len = (pick & 3) == 0 ? (uint32_t)rng.next() : (uint32_t)(rng.next() % (kCap + 16));
            uint16_t kind = (pick & 12) == 0 ? (uint16_t)rng.next() : (uint16_t)((pick >> 4) % 4);
            uint16_t reserved = (pick & 0x300) == 0 ? (uint16_t)rng.next() : 0;
            shmx_record_header_t h{len, kind, reserved};
            std::memcpy(data + off, &h, sizeof h);
        }
        uint64_t head = (rng.next() % (4 * kCap)) & ~7ull;
        poke64((void *)&ctl->head, head);
        poke64((void *)&ctl->tail, head);
        shmx_ring_t r;
        ASSERT_EQ(0, shmx_ring_attach(&r, ctl, data, kCap));
        poke64((void *)&ctl->tail, rng.next()); /* ignored by the consumer */
        shmx_ring_record_t out;
        int rc = shmx_ring_peek(&r, &out);
        if (rc == 0) {
            accepted++;
            ASSERT_TRUE(out.kind == SHMX_RECORD_INLINE || out.kind == SHMX_RECORD_SLOT);
            ASSERT_GE(out.body, data + 8);
            ASSERT_LE(out.body + out.body_len, data + kCap);
            ASSERT_LE(out.end - head, (uint64_t)kCap);
            ASSERT_EQ(out.end, r.read);
            volatile uint8_t sum = 0;
            for (uint32_t i = 0; i < out.body_len; i++) sum = (uint8_t)(sum + out.body[i]);
        } else {
            rejected++;
            ASSERT_TRUE(rc == -SHMX_ECORRUPT || rc == -SHMX_EEMPTY) << rc;
            ASSERT_EQ(head, r.read);
        }
    }
    EXPECT_GT(accepted, 100);
    EXPECT_GT(rejected, 100);
}

/* ---------------- producer and consumer at the same time ---------------- */

TEST_F(RingTest, ThreadsShouldDeliverEveryMessageWithBlockingWaits) {
    /* Small spin then futex sleep on both sides, 8..256-byte messages. */
    SharedRing sr;
    ASSERT_EQ(0, sr.open(kStreamCap, false));
    StreamSpec spec{{64, 0}, false, 700 * kMs};
    int64_t sent = 0;
    std::thread producer([&] { sent = produce_stream(sr.a, kStreamCap, spec); });
    int64_t t0 = shmx_now_ns();
    ConsumeResult res = consume_stream(sr.b, kStreamCap, spec);
    producer.join();
    EXPECT_EQ(0, res.rc);
    ASSERT_GT(sent, 0);
    EXPECT_EQ(sent, res.received);
    EXPECT_EQ((uint64_t)sent, peek64(sr.a + kSentOffset));
    report_rate("threads, blocking waits, 8..256-byte bodies", res.received, shmx_now_ns() - t0);
}

TEST_F(RingTest, ThreadsShouldDeliverEveryMessageWithBusySpinning) {
    SharedRing sr;
    ASSERT_EQ(0, sr.open(kStreamCap, false));
    StreamSpec spec{{UINT32_MAX, 0}, true, 700 * kMs};
    int64_t sent = 0;
    std::thread producer([&] { sent = produce_stream(sr.a, kStreamCap, spec); });
    int64_t t0 = shmx_now_ns();
    ConsumeResult res = consume_stream(sr.b, kStreamCap, spec);
    producer.join();
    EXPECT_EQ(0, res.rc);
    ASSERT_GT(sent, 0);
    EXPECT_EQ(sent, res.received);
    report_rate("threads, busy spinning, 64-byte bodies", res.received, shmx_now_ns() - t0);
}

TEST_F(RingTest, ThreadsShouldDeliverEveryMessageOverTwoMappingsOfOneMemfd) {
    SharedRing sr;
    ASSERT_EQ(0, sr.open(kStreamCap, true));
    ASSERT_NE(sr.a, sr.b) << "the memfd must be mapped at two addresses";
    StreamSpec spec{{64, 0}, false, 500 * kMs};
    int64_t sent = 0;
    std::thread producer([&] { sent = produce_stream(sr.a, kStreamCap, spec); });
    ConsumeResult res = consume_stream(sr.b, kStreamCap, spec);
    producer.join();
    EXPECT_EQ(0, res.rc);
    ASSERT_GT(sent, 0);
    EXPECT_EQ(sent, res.received);
    EXPECT_EQ((uint64_t)sent, peek64(sr.b + kSentOffset));
}

TEST_F(RingTest, ProcessesShouldDeliverEveryMessageOverASharedMemfd) {
    SharedRing sr;
    ASSERT_EQ(0, sr.open(kStreamCap, false));
    StreamSpec spec{{64, 0}, false, 500 * kMs};
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        /* The child maps the memfd again at an address of its own choosing. */
        uint8_t *mine = sr.map();
        _exit(mine && produce_stream(mine, kStreamCap, spec) > 0 ? 0 : 1);
    }
    ConsumeResult res = consume_stream(sr.a, kStreamCap, spec);
    int status = 0;
    pid_t done = 0;
    for (int64_t end = shmx_now_ns() + 20000 * kMs; (done = waitpid(pid, &status, WNOHANG)) == 0;) {
        if (shmx_now_ns() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            FAIL() << "producer process did not finish";
        }
        usleep(1000);
    }
    ASSERT_EQ(pid, done);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "producer failed, status " << status;
    EXPECT_EQ(0, res.rc);
    uint64_t sent = peek64(sr.a + kSentOffset);
    ASSERT_GT(sent, 0u);
    EXPECT_EQ((int64_t)sent, res.received);
}
