// Configuration defaults, validation rules (one message each) and the layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "private_headers.h"

namespace {

class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override { shmx_config_default(&cfg_); }

    // Asserts that @cfg is rejected by every entry point with exactly @message.
    static void ExpectRejected(const shmx_config_t &cfg, const std::string &message) {
        EXPECT_EQ(-SHMX_ECONFIG, shmx_config_validate(&cfg));
        EXPECT_EQ(message, shmx_config_problem(&cfg));
        EXPECT_EQ(0u, shmx_config_segment_bytes(&cfg));
        shmx_layout_t lay;
        EXPECT_EQ(-SHMX_ECONFIG, shmx_layout_compute(&cfg, &lay));
    }

    static void ExpectAccepted(const shmx_config_t &cfg) {
        EXPECT_EQ(0, shmx_config_validate(&cfg)) << shmx_config_problem(&cfg);
        EXPECT_STREQ("", shmx_config_problem(&cfg));
    }

    struct Region {
        uint64_t begin, end;
        std::string what;
    };

    // Every region of the layout must start 4 KiB aligned, lie inside the
    // segment and overlap no other.
    static void ExpectAlignedAndDisjoint(const shmx_config_t &cfg) {
        shmx_layout_t lay;
        ASSERT_EQ(0, shmx_layout_compute(&cfg, &lay)) << shmx_config_problem(&cfg);
        EXPECT_EQ(lay.total_bytes, shmx_config_segment_bytes(&cfg));
        EXPECT_EQ(0u, lay.total_bytes % 4096);
        EXPECT_EQ(4096u, lay.channels_offset);
        EXPECT_EQ(4096u + 2ull * cfg.ring_bytes, lay.channel_stride);

        std::vector<Region> r;
        r.push_back({0, SHMX_HEADER_BYTES, "header"});
        for (uint32_t i = 0; i < cfg.max_channels; i++) {
            uint64_t ch = lay.channels_offset + i * lay.channel_stride;
            std::string n = "channel " + std::to_string(i);
            r.push_back({ch, ch + SHMX_CHANNEL_RING_CTL_OFFSET(2), n + " controls"});
            for (int k = 0; k < 2; k++) {
                uint64_t d = ch + SHMX_CHANNEL_RING_DATA_OFFSET(k, cfg.ring_bytes);
                r.push_back({d, d + cfg.ring_bytes, n + " ring " + std::to_string(k)});
            }
        }
        r.push_back({lay.pool_offset, lay.pool_offset + sizeof(shmx_pool_ctl_t), "pool control"});
        for (uint32_t c = 0; c < cfg.class_count; c++) {
            uint64_t m = lay.class_meta_offset[c], d = lay.class_data_offset[c];
            r.push_back({m, m + uint64_t{cfg.class_slots[c]} * sizeof(shmx_slot_meta_t), "meta " + std::to_string(c)});
            r.push_back({d, d + uint64_t{cfg.class_slots[c]} * cfg.class_size[c], "data " + std::to_string(c)});
        }
        for (uint32_t c = cfg.class_count; c < SHMX_MAX_CLASSES; c++) {
            EXPECT_EQ(0u, lay.class_meta_offset[c]);
            EXPECT_EQ(0u, lay.class_data_offset[c]);
        }
        std::sort(r.begin(), r.end(), [](const Region &a, const Region &b) { return a.begin < b.begin; });
        for (size_t i = 0; i < r.size(); i++) {
            SCOPED_TRACE(r[i].what);
            EXPECT_LT(r[i].begin, r[i].end);
            EXPECT_LE(r[i].end, lay.total_bytes);
            if (r[i].what.find("channel") == std::string::npos || r[i].what.find("controls") != std::string::npos) {
                EXPECT_EQ(0u, r[i].begin % 4096);
            }
            if (i > 0) {
                EXPECT_LE(r[i - 1].end, r[i].begin) << "overlaps " << r[i - 1].what;
            }
        }
        // Ring data areas start on a page too (they follow the control page).
        for (uint32_t i = 0; i < cfg.max_channels; i++)
            for (int k = 0; k < 2; k++)
                EXPECT_EQ(0u, (lay.channels_offset + i * lay.channel_stride +
                               SHMX_CHANNEL_RING_DATA_OFFSET(k, cfg.ring_bytes)) % 4096);
    }

    shmx_config_t cfg_;
};

TEST_F(ConfigTest, ShouldFillTheDocumentedDefaults) {
    EXPECT_EQ(32u, cfg_.max_channels);
    EXPECT_EQ(64u * 1024, cfg_.ring_bytes);
    EXPECT_EQ(1024u, cfg_.inline_max);
    EXPECT_EQ(1024u * 1024, cfg_.max_payload);
    ASSERT_EQ(3u, cfg_.class_count);
    EXPECT_EQ(4u * 1024, cfg_.class_size[0]);
    EXPECT_EQ(128u, cfg_.class_slots[0]);
    EXPECT_EQ(64u * 1024, cfg_.class_size[1]);
    EXPECT_EQ(32u, cfg_.class_slots[1]);
    EXPECT_EQ(1024u * 1024, cfg_.class_size[2]);
    EXPECT_EQ(4u, cfg_.class_slots[2]);
    for (uint32_t c = 3; c < SHMX_MAX_CLASSES; c++) {
        EXPECT_EQ(0u, cfg_.class_size[c]);
        EXPECT_EQ(0u, cfg_.class_slots[c]);
    }
    EXPECT_EQ(uint32_t{SHMX_SEGMENT_MEMFD}, cfg_.segment_mode);
    EXPECT_EQ(uint32_t{SHMX_TRANSPORT_SHM | SHMX_TRANSPORT_UDS}, cfg_.transports);
    EXPECT_EQ(UINT32_MAX, cfg_.allowed_uid);
    EXPECT_EQ(20000u, cfg_.spin_iterations);
    EXPECT_EQ(50u, cfg_.yield_iterations);
    EXPECT_EQ(64u * 1024 * 1024, cfg_.max_message);
    EXPECT_EQ(4u * 1024 * 1024, cfg_.window_bytes);
    EXPECT_EQ(8u * 1024 * 1024, cfg_.extent_bytes);
    EXPECT_EQ(10000u, cfg_.liveness_ms);
    EXPECT_EQ(256ull * 1024 * 1024, cfg_.pool_max_bytes);
}

TEST_F(ConfigTest, ShouldAcceptTheDefaults) { ExpectAccepted(cfg_); }

TEST_F(ConfigTest, ShouldMapTheDefaultSegmentInAbout11MiB) {
    uint64_t total = shmx_config_segment_bytes(&cfg_);
    EXPECT_GT(total, 10ull * 1024 * 1024);
    EXPECT_LT(total, 12ull * 1024 * 1024) << "config.h says about 11 MiB";
    EXPECT_EQ(128ull * 4096 + 32ull * 65536 + 4ull * 1048576, shmx_pool_slot_bytes(&cfg_));
}

TEST_F(ConfigTest, ShouldSizeExtentsByExtentBytesWithAtLeastOneSlot) {
    EXPECT_EQ(2048u, shmx_extent_slots(&cfg_, 4096));
    EXPECT_EQ(8u, shmx_extent_slots(&cfg_, 1u << 20));
    EXPECT_EQ(1u, shmx_extent_slots(&cfg_, 16u << 20)) << "a class larger than an extent still gets one slot";
    cfg_.extent_bytes = 4096;
    EXPECT_EQ(1u, shmx_extent_slots(&cfg_, 64u * 1024));

    shmx_extent_layout_t lay;
    ASSERT_EQ(0, shmx_extent_layout(4096, 2048, &lay));
    EXPECT_EQ(2048u * sizeof(shmx_slot_meta_t), lay.data_offset) << "metadata first";
    EXPECT_EQ(2048u * sizeof(shmx_slot_meta_t) + 2048u * 4096, lay.total_bytes);
    ASSERT_EQ(0, shmx_extent_layout(192, 3, &lay));
    EXPECT_EQ(4096u, lay.data_offset);
    EXPECT_EQ(8192u, lay.total_bytes) << "data page-rounded too";
    EXPECT_EQ(-SHMX_EINVAL, shmx_extent_layout(4096, 0, &lay));
    EXPECT_EQ(-SHMX_EINVAL, shmx_extent_layout(0, 1, &lay));
}

TEST_F(ConfigTest, ShouldLayOutDefaultRegionsAlignedAndDisjoint) { ExpectAlignedAndDisjoint(cfg_); }

TEST_F(ConfigTest, ShouldLayOutOddSizedClassesAlignedAndDisjoint) {
    cfg_.max_channels = 3;
    cfg_.ring_bytes = 4096;
    cfg_.inline_max = 0;
    cfg_.class_count = 4;
    cfg_.class_size[0] = 64;
    cfg_.class_slots[0] = 1;
    cfg_.class_size[1] = 192;
    cfg_.class_slots[1] = 257;  // meta spans more than one page
    cfg_.class_size[2] = 4160;
    cfg_.class_slots[2] = 3;
    cfg_.class_size[3] = 1u << 20;
    cfg_.class_slots[3] = 1;
    cfg_.max_payload = 1u << 20;
    ExpectAlignedAndDisjoint(cfg_);
}

TEST_F(ConfigTest, ShouldRejectNullWithAMessage) {
    EXPECT_EQ(-SHMX_ECONFIG, shmx_config_validate(nullptr));
    EXPECT_STRNE("", shmx_config_problem(nullptr));
    EXPECT_EQ(0u, shmx_config_segment_bytes(nullptr));
}

struct Rule {
    const char *name;
    std::function<void(shmx_config_t &)> breakit;
    const char *message;
};

TEST_F(ConfigTest, ShouldRejectEachRuleWithItsOwnMessage) {
    const std::vector<Rule> rules = {
        {"no channels", [](shmx_config_t &c) { c.max_channels = 0; },
         "max_channels must be between 1 and SHMX_MAX_CHANNELS (1024)"},
        {"too many channels", [](shmx_config_t &c) { c.max_channels = SHMX_MAX_CHANNELS + 1; },
         "max_channels must be between 1 and SHMX_MAX_CHANNELS (1024)"},
        {"ring not power of two", [](shmx_config_t &c) { c.ring_bytes = 3 * 4096; },
         "ring_bytes must be a power of two"},
        {"ring zero", [](shmx_config_t &c) { c.ring_bytes = 0; }, "ring_bytes must be a power of two"},
        {"ring too small", [](shmx_config_t &c) { c.ring_bytes = 2048; c.inline_max = 0; },
         "ring_bytes must be at least 4096"},
        {"ring too large", [](shmx_config_t &c) { c.ring_bytes = 1u << 31; },
         "ring_bytes must be at most 1 GiB"},
        {"inline record beyond half the ring",
         [](shmx_config_t &c) { c.ring_bytes = 4096; c.inline_max = 4096 / 2 - 8 - 24 + 1; },
         "inline_max must let an inline record (8 + 24 + inline_max bytes) fit in half a ring"},
        {"no classes", [](shmx_config_t &c) { c.class_count = 0; },
         "class_count must be between 1 and SHMX_MAX_CLASSES (8)"},
        {"too many classes", [](shmx_config_t &c) { c.class_count = SHMX_MAX_CLASSES + 1; },
         "class_count must be between 1 and SHMX_MAX_CLASSES (8)"},
        {"class below 64", [](shmx_config_t &c) { c.class_size[0] = 0; }, "class_size must be at least 64"},
        {"class not multiple of 64", [](shmx_config_t &c) { c.class_size[0] = 16 * 1024 + 32; },
         "class_size must be a multiple of 64"},
        {"classes equal", [](shmx_config_t &c) { c.class_size[1] = c.class_size[0]; },
         "class_size must be strictly ascending"},
        {"classes descending", [](shmx_config_t &c) { c.class_size[1] = 64; },
         "class_size must be strictly ascending"},
        {"class without slots", [](shmx_config_t &c) { c.class_slots[1] = 0; },
         "class_slots must be between 1 and 16777216"},
        {"class with too many slots", [](shmx_config_t &c) { c.class_slots[0] = (1u << 24) + 1; },
         "class_slots must be between 1 and 16777216"},
        {"zero max_payload", [](shmx_config_t &c) { c.max_payload = 0; }, "max_payload must be at least 1"},
        {"max_payload above the largest class", [](shmx_config_t &c) { c.max_payload = (1u << 20) + 1; },
         "max_payload must not exceed the largest class_size"},
        {"max_payload above the frame limit",
         [](shmx_config_t &c) {
             c.class_count = 1;
             c.class_size[0] = SHMX_FRAME_MAX_PAYLOAD + 64;
             c.class_slots[0] = 1;
             c.max_payload = SHMX_FRAME_MAX_PAYLOAD + 1;
         },
         "max_payload must not exceed SHMX_FRAME_MAX_PAYLOAD (1 GiB)"},
        {"unknown segment mode", [](shmx_config_t &c) { c.segment_mode = 2; },
         "segment_mode must be SHMX_SEGMENT_MEMFD or SHMX_SEGMENT_NAMED"},
        {"no transports", [](shmx_config_t &c) { c.transports = 0; },
         "transports must be a non-empty combination of SHMX_TRANSPORT_SHM and SHMX_TRANSPORT_UDS"},
        {"unknown transport", [](shmx_config_t &c) { c.transports = SHMX_TRANSPORT_SHM | 4; },
         "transports must be a non-empty combination of SHMX_TRANSPORT_SHM and SHMX_TRANSPORT_UDS"},
        {"max_message below max_payload", [](shmx_config_t &c) { c.max_message = c.max_payload - 1; },
         "max_message must be at least max_payload"},
        {"window below the largest class", [](shmx_config_t &c) { c.window_bytes = (1u << 20) - 64; },
         "window_bytes must be at least the largest class_size"},
        {"extent below a page", [](shmx_config_t &c) { c.extent_bytes = 0; },
         "extent_bytes must be a multiple of 4096 and at least 4096"},
        {"extent not a multiple of a page", [](shmx_config_t &c) { c.extent_bytes = 8192 + 64; },
         "extent_bytes must be a multiple of 4096 and at least 4096"},
        {"liveness too short", [](shmx_config_t &c) { c.liveness_ms = 9; }, "liveness_ms must be 0 (never expel) or at least 10"},
        {"cap below the segment's own pool",
         [](shmx_config_t &c) { c.pool_max_bytes = 128ull * 4096 + 32ull * 65536 + 4ull * 1048576 - 1; },
         "pool_max_bytes must be at least the segment's own pool (sum of class_slots x class_size)"},
        {"channels beyond 1 TiB",
         [](shmx_config_t &c) {
             c.max_channels = SHMX_MAX_CHANNELS;
             c.ring_bytes = 1u << 30;
         },
         "segment would exceed 1 TiB"},
        {"pool beyond 1 TiB",
         [](shmx_config_t &c) {
             c.class_count = SHMX_MAX_CLASSES;
             for (uint32_t k = 0; k < SHMX_MAX_CLASSES; k++) {
                 c.class_size[k] = 0xFFFFFFC0u - (SHMX_MAX_CLASSES - 1 - k) * 64u;
                 c.class_slots[k] = 1u << 24;  // 2^56 bytes per class: sums would overflow 32 bits many times
             }
             c.window_bytes = UINT32_MAX;
         },
         "segment would exceed 1 TiB"},
    };
    for (const Rule &rule : rules) {
        SCOPED_TRACE(rule.name);
        shmx_config_t c;
        shmx_config_default(&c);
        rule.breakit(c);
        ExpectRejected(c, rule.message);
    }
}

TEST_F(ConfigTest, ShouldAcceptEveryBoundaryValue) {
    shmx_config_t c = cfg_;
    c.max_channels = 1;
    ExpectAccepted(c);
    c.max_channels = SHMX_MAX_CHANNELS;
    ExpectAccepted(c);

    c = cfg_;
    c.ring_bytes = 4096;
    c.inline_max = 4096 / 2 - 8 - 24;
    ExpectAccepted(c);
    c.inline_max = 0;
    ExpectAccepted(c);

    c = cfg_;
    c.max_channels = 1;
    c.ring_bytes = 1u << 30;
    ExpectAccepted(c);

    c = cfg_;
    c.class_count = 1;
    c.class_size[0] = 64;
    c.class_slots[0] = 1u << 24;
    c.max_payload = 64;
    c.max_message = 64;
    c.window_bytes = 64;
    c.pool_max_bytes = 64ull << 24;
    ExpectAccepted(c);

    c = cfg_;
    c.class_count = SHMX_MAX_CLASSES;
    for (uint32_t k = 0; k < SHMX_MAX_CLASSES; k++) {
        c.class_size[k] = 64u << k;
        c.class_slots[k] = 1;
    }
    c.max_payload = 1;
    ExpectAccepted(c);

    c = cfg_;
    c.class_count = 1;
    c.class_size[0] = SHMX_FRAME_MAX_PAYLOAD;
    c.class_slots[0] = 1;
    c.max_payload = SHMX_FRAME_MAX_PAYLOAD;
    c.max_message = SHMX_FRAME_MAX_PAYLOAD;
    c.window_bytes = SHMX_FRAME_MAX_PAYLOAD;
    c.pool_max_bytes = SHMX_FRAME_MAX_PAYLOAD;
    ExpectAccepted(c);

    c = cfg_;
    c.max_message = c.max_payload;
    c.window_bytes = 1u << 20;
    c.extent_bytes = 4096;
    c.pool_max_bytes = 128ull * 4096 + 32ull * 65536 + 4ull * 1048576; // the cap may equal the segment's pool: no growth
    ExpectAccepted(c);
    c.max_message = UINT32_MAX;
    c.window_bytes = UINT32_MAX;
    c.extent_bytes = UINT32_MAX - 4095;
    c.pool_max_bytes = UINT64_MAX;
    ExpectAccepted(c);

    c = cfg_;
    c.segment_mode = SHMX_SEGMENT_NAMED;
    c.transports = SHMX_TRANSPORT_UDS;
    ExpectAccepted(c);
}

TEST_F(ConfigTest, ShouldIgnoreClassEntriesBeyondClassCount) {
    cfg_.class_size[5] = 3;  // would break every class rule if it were looked at
    cfg_.class_slots[5] = 0;
    ExpectAccepted(cfg_);
}

}  // namespace
