// The frame (native/frame.c, DESIGN.md section 4) and shmx_strerror (native/errors.c).
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <gtest/gtest.h>
#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kHeader = SHMX_FRAME_HEADER_SIZE;

class FrameTest : public ::testing::Test {
protected:
    static std::vector<unsigned char> payloadOf(size_t len)
    {
        std::vector<unsigned char> p(len);
        for (size_t i = 0; i < len; i++)
            p[i] = static_cast<unsigned char>(i * 31 + 7);
        return p;
    }

    // A valid frame: header then @len payload bytes.
    static std::vector<unsigned char> frameOf(size_t len, uint16_t type = SHMX_TYPE_DATA, uint8_t flags = 0,
                                              uint64_t id = 1)
    {
        std::vector<unsigned char> payload = payloadOf(len);
        std::vector<unsigned char> frame(kHeader + len);
        int n = shmx_frame_encode(frame.data(), frame.size(), type, flags, id, payload.data(),
                                  static_cast<uint32_t>(len));
        EXPECT_EQ(static_cast<int>(kHeader + len), n);
        return frame;
    }

    static int decode(const std::vector<unsigned char> &frame, shmx_frame_t *out)
    {
        return shmx_frame_decode(frame.data(), frame.size(), out);
    }

    // Rewrite the CRC after a deliberate header edit, so only that edit is wrong.
    static void resealCrc(std::vector<unsigned char> &frame, uint32_t len)
    {
        uint32_t crc = static_cast<uint32_t>(crc32(0, frame.data(), 20));
        crc = static_cast<uint32_t>(crc32(crc, frame.data() + kHeader, len));
        for (int i = 0; i < 4; i++)
            frame[20 + i] = static_cast<unsigned char>(crc >> (8 * i));
    }

    shmx_frame_t out_{};
};

TEST_F(FrameTest, shouldRoundTripPayloadsOfEverySize)
{
    for (size_t len : {0u, 1u, 23u, 24u, 1000u, 65536u}) {
        std::vector<unsigned char> payload = payloadOf(len);
        std::vector<unsigned char> frame = frameOf(len, 300, SHMX_FLAG_MORE, 0x0102030405060708ull);
        ASSERT_EQ(0, decode(frame, &out_)) << "len " << len;
        EXPECT_EQ(SHMX_FRAME_VERSION, out_.version);
        EXPECT_EQ(SHMX_FLAG_MORE, out_.flags);
        EXPECT_EQ(300, out_.type);
        EXPECT_EQ(len, out_.length);
        EXPECT_EQ(0x0102030405060708ull, out_.id);
        EXPECT_EQ(frame.data() + kHeader, out_.payload);
        EXPECT_TRUE(len == 0 || std::memcmp(payload.data(), out_.payload, len) == 0);
    }
}

TEST_F(FrameTest, shouldWriteEveryHeaderFieldLittleEndianAtItsOffset)
{
    const unsigned char payload[5] = {'h', 'e', 'l', 'l', 'o'};
    unsigned char frame[kHeader + 5];
    ASSERT_EQ(29, shmx_frame_encode(frame, sizeof frame, 0x0A0B, SHMX_FLAG_MORE, 0x1122334455667788ull, payload, 5));

    const unsigned char magic[4] = {0x43, 0x50, 0x41, 0x4C}; // "CPAL" on the wire, 0x4C415043 read little-endian
    EXPECT_EQ(0, std::memcmp(magic, frame + 0, 4));
    EXPECT_EQ(1, frame[4]);
    EXPECT_EQ(0x01, frame[5]);
    const unsigned char type[2] = {0x0B, 0x0A};
    EXPECT_EQ(0, std::memcmp(type, frame + 6, 2));
    const unsigned char length[4] = {5, 0, 0, 0};
    EXPECT_EQ(0, std::memcmp(length, frame + 8, 4));
    const unsigned char id[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    EXPECT_EQ(0, std::memcmp(id, frame + 12, 8));

    uint32_t crc = static_cast<uint32_t>(crc32(crc32(0, frame, 20), payload, 5));
    const unsigned char crc_le[4] = {static_cast<unsigned char>(crc), static_cast<unsigned char>(crc >> 8),
                                     static_cast<unsigned char>(crc >> 16), static_cast<unsigned char>(crc >> 24)};
    EXPECT_EQ(0, std::memcmp(crc_le, frame + 20, 4));
    EXPECT_EQ(0, std::memcmp(payload, frame + kHeader, 5));

    ASSERT_EQ(0, shmx_frame_decode(frame, sizeof frame, &out_));
    EXPECT_EQ(crc, out_.crc);
}

TEST_F(FrameTest, shouldEncodeAPayloadAlreadyInPlaceWithoutMovingIt)
{
    std::vector<unsigned char> expected = frameOf(100);
    std::vector<unsigned char> frame(kHeader + 100, 0xEE);
    std::vector<unsigned char> payload = payloadOf(100);
    std::memcpy(frame.data() + kHeader, payload.data(), 100);
    ASSERT_EQ(124, shmx_frame_encode(frame.data(), frame.size(), SHMX_TYPE_DATA, 0, 1, frame.data() + kHeader, 100));
    EXPECT_EQ(expected, frame);
}

TEST_F(FrameTest, shouldEncodeAPayloadThatOverlapsTheHeader)
{
    std::vector<unsigned char> expected = frameOf(100);
    std::vector<unsigned char> frame(kHeader + 100);
    std::vector<unsigned char> payload = payloadOf(100);
    std::memcpy(frame.data() + 3, payload.data(), 100); // starts inside the header's bytes
    ASSERT_EQ(124, shmx_frame_encode(frame.data(), frame.size(), SHMX_TYPE_DATA, 0, 1, frame.data() + 3, 100));
    EXPECT_EQ(expected, frame);
}

TEST_F(FrameTest, shouldRejectBadEncodeArguments)
{
    unsigned char buf[64];
    const unsigned char payload[8] = {};
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_encode(nullptr, sizeof buf, SHMX_TYPE_DATA, 0, 1, payload, 8));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_encode(buf, sizeof buf, SHMX_TYPE_DATA, 0, 1, nullptr, 8));
    EXPECT_EQ(24, shmx_frame_encode(buf, sizeof buf, SHMX_TYPE_HEARTBEAT, 0, 1, nullptr, 0));
    for (unsigned bit = 1; bit < 8; bit++)
        EXPECT_EQ(-SHMX_EFLAGS,
                  shmx_frame_encode(buf, sizeof buf, SHMX_TYPE_DATA, static_cast<uint8_t>(1u << bit), 1, payload, 8));
    EXPECT_EQ(-SHMX_ESHORT, shmx_frame_encode(buf, 31, SHMX_TYPE_DATA, 0, 1, payload, 8));
    EXPECT_EQ(-SHMX_ESHORT, shmx_frame_encode(buf, 23, SHMX_TYPE_DATA, 0, 1, nullptr, 0));
    EXPECT_EQ(32, shmx_frame_encode(buf, 32, SHMX_TYPE_DATA, 0, 1, payload, 8));
    // Rejected before any byte is read or written: dst_len claims enough room.
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_frame_encode(buf, SIZE_MAX, SHMX_TYPE_DATA, 0, 1, payload, INT_MAX - 23u));
    EXPECT_EQ(-SHMX_ESHORT, shmx_frame_encode(buf, sizeof buf, SHMX_TYPE_DATA, 0, 1, payload, INT_MAX - 24u));
}

TEST_F(FrameTest, shouldRejectABufferShorterThanTheHeader)
{
    std::vector<unsigned char> frame = frameOf(0);
    for (size_t len = 0; len < kHeader; len++)
        EXPECT_EQ(-SHMX_ESHORT, shmx_frame_decode(frame.data(), len, &out_)) << "src_len " << len;
}

TEST_F(FrameTest, shouldRejectBadMagic)
{
    std::vector<unsigned char> frame = frameOf(10);
    frame[3] = 0x4D;
    resealCrc(frame, 10);
    EXPECT_EQ(-SHMX_EMAGIC, decode(frame, &out_));
}

TEST_F(FrameTest, shouldRejectAnUnknownVersion)
{
    for (unsigned version : {0u, 2u, 255u}) {
        std::vector<unsigned char> frame = frameOf(10);
        frame[4] = static_cast<unsigned char>(version);
        resealCrc(frame, 10);
        EXPECT_EQ(-SHMX_EVERSION, decode(frame, &out_)) << "version " << version;
    }
}

TEST_F(FrameTest, shouldRejectEveryReservedFlagBit)
{
    for (unsigned bit = 1; bit < 8; bit++) {
        std::vector<unsigned char> frame = frameOf(10);
        frame[5] = static_cast<unsigned char>(1u << bit);
        resealCrc(frame, 10);
        EXPECT_EQ(-SHMX_EFLAGS, decode(frame, &out_)) << "bit " << bit;
    }
}

TEST_F(FrameTest, shouldRejectALengthAboveTheLimit)
{
    std::vector<unsigned char> frame = frameOf(1000);
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_frame_decode_limit(frame.data(), frame.size(), 999, &out_));
    EXPECT_EQ(0, shmx_frame_decode_limit(frame.data(), frame.size(), 1000, &out_));
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_frame_decode_limit(frame.data(), frame.size(), 0, &out_));
}

TEST_F(FrameTest, shouldRejectALengthAboveTheDefaultMaximumBeforeCheckingTheBuffer)
{
    std::vector<unsigned char> frame = frameOf(0);
    uint32_t huge = SHMX_FRAME_MAX_PAYLOAD + 1;
    for (int i = 0; i < 4; i++)
        frame[8 + i] = static_cast<unsigned char>(huge >> (8 * i));
    EXPECT_EQ(-SHMX_ETOOBIG, decode(frame, &out_));
}

TEST_F(FrameTest, shouldRejectALengthBeyondTheBuffer)
{
    std::vector<unsigned char> frame = frameOf(100);
    EXPECT_EQ(-SHMX_ETRUNC, shmx_frame_decode(frame.data(), frame.size() - 1, &out_));
    EXPECT_EQ(-SHMX_ETRUNC, shmx_frame_decode(frame.data(), kHeader, &out_));
}

TEST_F(FrameTest, shouldAcceptABufferLongerThanTheFrame)
{
    std::vector<unsigned char> frame = frameOf(100);
    frame.resize(frame.size() + 50, 0xAB);
    ASSERT_EQ(0, decode(frame, &out_));
    EXPECT_EQ(100u, out_.length);
}

TEST_F(FrameTest, shouldRejectACrcMismatch)
{
    std::vector<unsigned char> payload_changed = frameOf(100);
    payload_changed[kHeader + 50] ^= 0x10;
    EXPECT_EQ(-SHMX_ECRC, decode(payload_changed, &out_));

    std::vector<unsigned char> id_changed = frameOf(100);
    id_changed[12] ^= 0x01;
    EXPECT_EQ(-SHMX_ECRC, decode(id_changed, &out_));

    std::vector<unsigned char> crc_changed = frameOf(100);
    crc_changed[23] ^= 0x80;
    EXPECT_EQ(-SHMX_ECRC, decode(crc_changed, &out_));
}

TEST_F(FrameTest, shouldRejectNullArguments)
{
    std::vector<unsigned char> frame = frameOf(10);
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_decode(nullptr, frame.size(), &out_));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_decode(frame.data(), frame.size(), nullptr));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_decode_limit(nullptr, 0, 100, &out_));
}

TEST_F(FrameTest, shouldReportTheFirstFailedCheckInTheDocumentedOrder)
{
    // Every field wrong at once: each check, once passed, uncovers the next.
    std::vector<unsigned char> frame = frameOf(10);
    frame[0] ^= 0xFF;       // magic
    frame[4] = 9;           // version
    frame[5] = 0x80;        // flags
    frame[8] = 0xFF;        // length 255: above a limit of 100 and beyond the buffer
    frame[kHeader] ^= 0xFF; // payload, so the CRC is wrong too
    EXPECT_EQ(-SHMX_ESHORT, shmx_frame_decode_limit(frame.data(), 23, 100, &out_));
    EXPECT_EQ(-SHMX_EMAGIC, shmx_frame_decode_limit(frame.data(), frame.size(), 100, &out_));
    frame[0] ^= 0xFF;
    EXPECT_EQ(-SHMX_EVERSION, shmx_frame_decode_limit(frame.data(), frame.size(), 100, &out_));
    frame[4] = 1;
    EXPECT_EQ(-SHMX_EFLAGS, shmx_frame_decode_limit(frame.data(), frame.size(), 100, &out_));
    frame[5] = 0;
    EXPECT_EQ(-SHMX_ETOOBIG, shmx_frame_decode_limit(frame.data(), frame.size(), 100, &out_));
    EXPECT_EQ(-SHMX_ETRUNC, shmx_frame_decode_limit(frame.data(), frame.size(), 1000, &out_));
    frame[8] = 10;
    EXPECT_EQ(-SHMX_ECRC, shmx_frame_decode_limit(frame.data(), frame.size(), 1000, &out_));
    frame[kHeader] ^= 0xFF;
    EXPECT_EQ(0, shmx_frame_decode_limit(frame.data(), frame.size(), 1000, &out_));
}

TEST_F(FrameTest, shouldLeaveTheOutputUntouchedOnRejection)
{
    std::vector<unsigned char> frame = frameOf(10);
    frame[kHeader] ^= 1;
    shmx_frame_t before{};
    before.id = 42;
    out_ = before;
    ASSERT_EQ(-SHMX_ECRC, decode(frame, &out_));
    EXPECT_EQ(42u, out_.id);
    EXPECT_EQ(nullptr, out_.payload);
}

TEST_F(FrameTest, shouldEncodeAndDecodeAHeaderWhosePayloadLivesElsewhere)
{
    std::vector<unsigned char> payload = payloadOf(5000);
    std::vector<unsigned char> whole = frameOf(5000, SHMX_TYPE_RESPONSE, SHMX_FLAG_MORE, 77);
    unsigned char hdr[kHeader];
    ASSERT_EQ(24, shmx_frame_header_encode(hdr, SHMX_TYPE_RESPONSE, SHMX_FLAG_MORE, 77, payload.data(), 5000));
    EXPECT_EQ(0, std::memcmp(whole.data(), hdr, kHeader)); // same bytes as a whole frame's header

    ASSERT_EQ(0, shmx_frame_header_decode(hdr, payload.data(), payload.size(), 5000, &out_));
    EXPECT_EQ(payload.data(), out_.payload);
    EXPECT_EQ(5000u, out_.length);
    EXPECT_EQ(77u, out_.id);
    EXPECT_EQ(SHMX_TYPE_RESPONSE, out_.type);
    EXPECT_EQ(SHMX_FLAG_MORE, out_.flags);

    EXPECT_EQ(-SHMX_ETOOBIG, shmx_frame_header_decode(hdr, payload.data(), payload.size(), 4999, &out_));
    EXPECT_EQ(-SHMX_ETRUNC, shmx_frame_header_decode(hdr, payload.data(), payload.size() - 1, 5000, &out_));
    EXPECT_EQ(-SHMX_ETRUNC, shmx_frame_header_decode(hdr, payload.data(), payload.size() + 1, 5000, &out_));
    payload[4999] ^= 1;
    EXPECT_EQ(-SHMX_ECRC, shmx_frame_header_decode(hdr, payload.data(), payload.size(), 5000, &out_));
}

TEST_F(FrameTest, shouldHandleAnEmptySeparatePayload)
{
    unsigned char hdr[kHeader];
    ASSERT_EQ(24, shmx_frame_header_encode(hdr, SHMX_TYPE_HEARTBEAT, 0, 9, nullptr, 0));
    ASSERT_EQ(0, shmx_frame_header_decode(hdr, nullptr, 0, 0, &out_));
    EXPECT_EQ(0u, out_.length);
    EXPECT_EQ(nullptr, out_.payload);
}

TEST_F(FrameTest, shouldRejectBadHeaderOnlyArguments)
{
    unsigned char hdr[kHeader];
    const unsigned char payload[4] = {1, 2, 3, 4};
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_header_encode(nullptr, SHMX_TYPE_DATA, 0, 1, payload, 4));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_header_encode(hdr, SHMX_TYPE_DATA, 0, 1, nullptr, 4));
    EXPECT_EQ(-SHMX_EFLAGS, shmx_frame_header_encode(hdr, SHMX_TYPE_DATA, 0x40, 1, payload, 4));
    ASSERT_EQ(24, shmx_frame_header_encode(hdr, SHMX_TYPE_DATA, 0, 1, payload, 4));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_header_decode(nullptr, payload, 4, 100, &out_));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_header_decode(hdr, nullptr, 4, 100, &out_));
    EXPECT_EQ(-SHMX_EINVAL, shmx_frame_header_decode(hdr, payload, 4, 100, nullptr));
    hdr[5] = 0x02;
    EXPECT_EQ(-SHMX_EFLAGS, shmx_frame_header_decode(hdr, payload, 4, 100, &out_));
}

TEST_F(FrameTest, shouldRejectEverySingleBitFlip)
{
    const std::vector<unsigned char> good = frameOf(16, SHMX_TYPE_CONTROL, SHMX_FLAG_MORE, 5);
    ASSERT_EQ(0, decode(good, &out_));
    for (size_t bit = 0; bit < good.size() * 8; bit++) {
        std::vector<unsigned char> frame = good;
        frame[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
        EXPECT_NE(0, decode(frame, &out_)) << "byte " << bit / 8 << " bit " << bit % 8;
        EXPECT_NE(0, shmx_frame_header_decode(frame.data(), frame.data() + kHeader, 16, 1000, &out_))
            << "header-only, byte " << bit / 8 << " bit " << bit % 8;
    }
}

class StrerrorTest : public ::testing::Test {
protected:
    // Every code errors.h defines, from SHMX_ESHORT to SHMX_ELAST - 1.
    static const std::vector<int> &shmxCodes()
    {
        static const std::vector<int> codes = {
            SHMX_ESHORT, SHMX_EMAGIC, SHMX_EVERSION, SHMX_EFLAGS, SHMX_ETOOBIG, SHMX_ETRUNC, SHMX_ECRC,
            SHMX_EWOULDBLOCK, SHMX_EEMPTY, SHMX_ECLOSED,
            SHMX_EINVAL, SHMX_ESTATE, SHMX_EORDER, SHMX_ECONFIG,
            SHMX_ECORRUPT, SHMX_EBADSLOT, SHMX_EHEADER, SHMX_ENOTREADY, SHMX_ESEALS, SHMX_EPERMS, SHMX_EFRAGMENT,
            SHMX_EPROTO, SHMX_EPEERCRED, SHMX_EFULL, SHMX_ETRANSPORT, SHMX_EHOSTGONE, SHMX_ENOHOST,
            SHMX_EEXPELLED, SHMX_EBACKOFF,
        };
        return codes;
    }

    static bool isUnknown(const char *text) { return std::strncmp(text, "unknown shmx error code", 23) == 0; }
};

TEST_F(StrerrorTest, shouldCallZeroSuccess)
{
    EXPECT_STREQ("success", shmx_strerror(0));
}

TEST_F(StrerrorTest, shouldExplainEveryShmxCodeDistinctly)
{
    std::set<std::string> texts;
    for (int code : shmxCodes()) {
        const char *text = shmx_strerror(-code);
        ASSERT_NE(nullptr, text);
        EXPECT_GT(std::strlen(text), 20u) << code;
        EXPECT_FALSE(isUnknown(text)) << code;
        EXPECT_STREQ(text, shmx_strerror(code)) << "positive and negative " << code;
        texts.insert(text);
    }
    EXPECT_EQ(shmxCodes().size(), texts.size());
}

TEST_F(StrerrorTest, shouldCallUndefinedCodesInTheShmxRangeUnknown)
{
    const std::set<int> defined(shmxCodes().begin(), shmxCodes().end());
    for (int code = SHMX_EBASE; code <= SHMX_ELAST + 10; code++) {
        if (defined.count(code))
            continue;
        std::string text = shmx_strerror(-code);
        EXPECT_EQ("unknown shmx error code " + std::to_string(-code), text);
    }
    EXPECT_EQ("unknown shmx error code -4000", std::string(shmx_strerror(-4000))); // no such errno
    EXPECT_TRUE(isUnknown(shmx_strerror(INT_MIN)));
    EXPECT_TRUE(isUnknown(shmx_strerror(INT_MAX)));
}

TEST_F(StrerrorTest, shouldExplainErrnoValuesDistinctly)
{
    std::set<std::string> texts;
    for (int e : {ENOENT, EACCES, EAGAIN, ENOMEM, EINVAL, ETIMEDOUT, EADDRINUSE, EPIPE, ENOSPC}) {
        std::string text = shmx_strerror(-e);
        EXPECT_FALSE(text.empty()) << e;
        EXPECT_FALSE(isUnknown(text.c_str())) << e;
        EXPECT_NE(std::string::npos, text.find("errno " + std::to_string(e))) << text;
        EXPECT_EQ(text, shmx_strerror(e));
        texts.insert(text);
    }
    EXPECT_EQ(9u, texts.size());
}

TEST_F(StrerrorTest, shouldKeepEachThreadsTextApart)
{
    const char *mine = shmx_strerror(-ENOENT);
    std::string expected = mine;
    std::thread other([] { shmx_strerror(-EACCES); });
    other.join();
    EXPECT_EQ(expected, mine);
}

} // namespace
