// The hybrid fallback (DESIGN.md 3.4): a guest that asks for
// SHMX_TRANSPORT_AUTO gets shared memory while the host can give it and the
// Unix socket otherwise (no segment, every entry taken, a configuration
// without shm), with the same API and frames, and the choice is visible in
// the API and the log.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "private_headers.h"
#include "test_process.h"

namespace {

constexpr int64_t kSecond = 1000000000LL;

// Collects the library's log lines while it lives.
class LogCapture {
  public:
    LogCapture() { shmx_log_set_handler(&LogCapture::Take, this); }
    ~LogCapture() { shmx_log_set_default(); }
    std::vector<std::string> lines() {
        std::lock_guard<std::mutex> g(mu_);
        return lines_;
    }

  private:
    static void Take(void *arg, int level, const char *message) {
        auto *self = static_cast<LogCapture *>(arg);
        std::lock_guard<std::mutex> g(self->mu_);
        self->lines_.push_back(std::to_string(level) + " " + message);
    }
    std::mutex mu_;
    std::vector<std::string> lines_;
};

class FallbackTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(runtime_.path().empty()) << "no private XDG_RUNTIME_DIR";
        name_ = "fb-" + std::to_string(getpid()) + "-" + std::to_string(counter_++);
        shmx_config_default(&cfg_);
        cfg_.max_channels = 1;
    }
    void TearDown() override {
        for (shmx_guest_t *g : guests_) shmx_guest_close(g);
        for (shmx_channel_t *ch : channels_) shmx_channel_free(ch);
        shmx_host_destroy(host_);
    }

    void CreateHost() {
        int rc = shmx_host_create(name_.c_str(), &cfg_, &host_);
        ASSERT_EQ(rc, 0) << shmx_strerror(rc);
    }

    // Connect a guest asking for @transport while the host accepts; returns the guest's
    // result and keeps both ends for TearDown.
    int Connect(uint32_t transport, shmx_guest_t **g, shmx_channel_t **host_ch) {
        int accepted = 0;
        *host_ch = nullptr;
        std::thread t([&] { accepted = shmx_host_accept(host_, 10 * kSecond, host_ch); });
        *g = nullptr;
        int rc = shmx_guest_connect(name_.c_str(), transport, 10 * kSecond, g);
        t.join();
        if (*g) guests_.push_back(*g);
        if (*host_ch) channels_.push_back(*host_ch);
        return rc != 0 ? rc : accepted;
    }

    // One message each way, checked.
    static void RoundTrip(shmx_channel_t *guest_ch, shmx_channel_t *host_ch) {
        const char ask[] = "over whichever transport";
        ASSERT_GT(shmx_channel_send(guest_ch, SHMX_TYPE_DATA, 0, 0, ask, sizeof ask, kSecond), 0);
        char buf[64];
        ASSERT_EQ(shmx_channel_receive_copy(host_ch, buf, sizeof buf, nullptr, kSecond), (int64_t)sizeof ask);
        EXPECT_STREQ(buf, ask);
        ASSERT_GT(shmx_channel_send(host_ch, SHMX_TYPE_DATA, 0, 0, buf, sizeof ask, kSecond), 0);
        char back[64];
        ASSERT_EQ(shmx_channel_receive_copy(guest_ch, back, sizeof back, nullptr, kSecond), (int64_t)sizeof ask);
        EXPECT_STREQ(back, ask);
    }

    // A host without shared memory: AUTO gets the socket and works, SHM is refused.
    void ExpectSocketOnly() {
        shmx_guest_t *g, *g2;
        shmx_channel_t *h, *h2;
        ASSERT_EQ(Connect(SHMX_TRANSPORT_AUTO, &g, &h), 0);
        EXPECT_EQ(shmx_channel_transport(shmx_guest_channel(g)), SHMX_TRANSPORT_UDS);
        RoundTrip(shmx_guest_channel(g), h);
        EXPECT_EQ(Connect(SHMX_TRANSPORT_SHM, &g2, &h2), -SHMX_ETRANSPORT);
    }

    static bool Mentions(const std::vector<std::string> &lines, const char *what) {
        for (const std::string &l : lines)
            if (l.find(what) != std::string::npos) return true;
        return false;
    }

    PrivateRuntimeDir runtime_;
    static inline int counter_ = 0;
    std::string name_;
    shmx_config_t cfg_;
    shmx_host_t *host_ = nullptr;
    std::vector<shmx_guest_t *> guests_;
    std::vector<shmx_channel_t *> channels_;
};

TEST_F(FallbackTest, ShouldGiveSharedMemoryToAnAutoGuestWhileTheHostHasIt) {
    CreateHost();
    EXPECT_EQ(shmx_host_transports(host_), (uint32_t)(SHMX_TRANSPORT_SHM | SHMX_TRANSPORT_UDS));
    shmx_guest_t *g;
    shmx_channel_t *h;
    ASSERT_EQ(Connect(SHMX_TRANSPORT_AUTO, &g, &h), 0);
    EXPECT_EQ(shmx_channel_transport(shmx_guest_channel(g)), SHMX_TRANSPORT_SHM);
    EXPECT_EQ(shmx_channel_transport(h), SHMX_TRANSPORT_SHM);
    RoundTrip(shmx_guest_channel(g), h);
}

TEST_F(FallbackTest, ShouldGiveTheSocketToAnAutoGuestOnceEveryEntryIsTaken) {
    CreateHost();
    shmx_guest_t *first, *second, *third;
    shmx_channel_t *h1, *h2, *h3;
    ASSERT_EQ(Connect(SHMX_TRANSPORT_AUTO, &first, &h1), 0);
    ASSERT_EQ(shmx_channel_transport(h1), SHMX_TRANSPORT_SHM);
    LogCapture log;
    ASSERT_EQ(Connect(SHMX_TRANSPORT_AUTO, &second, &h2), 0);
    EXPECT_EQ(shmx_channel_transport(shmx_guest_channel(second)), SHMX_TRANSPORT_UDS);
    EXPECT_EQ(shmx_channel_transport(h2), SHMX_TRANSPORT_UDS);
    RoundTrip(shmx_guest_channel(second), h2);
    RoundTrip(shmx_guest_channel(first), h1);
    std::vector<std::string> lines = log.lines();
    EXPECT_TRUE(Mentions(lines, "Unix socket")) << "the fallback must be logged";
    // A guest that insists on shared memory is told the host is full.
    EXPECT_EQ(Connect(SHMX_TRANSPORT_SHM, &third, &h3), -SHMX_EFULL);
}

TEST_F(FallbackTest, ShouldRefuseAnAutoGuestWhenTheHostIsFullAndOffersNoSocket) {
    cfg_.transports = SHMX_TRANSPORT_SHM;
    CreateHost();
    shmx_guest_t *first, *second;
    shmx_channel_t *h1, *h2;
    ASSERT_EQ(Connect(SHMX_TRANSPORT_AUTO, &first, &h1), 0);
    EXPECT_EQ(Connect(SHMX_TRANSPORT_AUTO, &second, &h2), -SHMX_EFULL);
}

TEST_F(FallbackTest, ShouldServeAutoGuestsOverTheSocketWhenTheConfigurationForbidsSharedMemory) {
    cfg_.transports = SHMX_TRANSPORT_UDS;
    CreateHost();
    EXPECT_EQ(shmx_host_transports(host_), (uint32_t)SHMX_TRANSPORT_UDS);
    EXPECT_EQ(shmx_host_mapped_bytes(host_), 0u);
    ExpectSocketOnly();
}

TEST_F(FallbackTest, ShouldServeOverTheSocketWhenTheSegmentCannotBeCreated) {
    // A segment far larger than this machine's memory: creation fails with -ENOMEM
    // before anything is allocated, and the host goes on with the socket alone.
    cfg_.max_channels = 64; // 64 x 2 rings x 1 GiB: more than RAM and swap, less than the 1 TiB cap
    cfg_.ring_bytes = 1u << 30;
    ASSERT_EQ(shmx_config_validate(&cfg_), 0) << shmx_config_problem(&cfg_);
    if (shmx_fits_memory(shmx_config_segment_bytes(&cfg_))) GTEST_SKIP() << "this machine has 128 GiB to spare";
    LogCapture log;
    CreateHost();
    EXPECT_TRUE(Mentions(log.lines(), "no shared-memory segment")) << "the fallback must be logged";
    EXPECT_EQ(shmx_host_transports(host_), (uint32_t)SHMX_TRANSPORT_UDS);
    EXPECT_EQ(shmx_host_config(host_)->max_channels, 64u);
    ExpectSocketOnly();
}

TEST_F(FallbackTest, ShouldStillFailOnABadConfigurationRatherThanFallBack) {
    cfg_.ring_bytes = 5000;
    EXPECT_EQ(shmx_host_create(name_.c_str(), &cfg_, &host_), -SHMX_ECONFIG);
}

} // namespace
