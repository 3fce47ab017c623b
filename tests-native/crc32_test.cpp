// CRC-32 (native/crc32.c): every implementation against zlib's crc32().
#include <shmx/frame.h>

#include "crc32_impl.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace {

struct Crc32Impl {
    const char *name;
    uint32_t (*fn)(uint32_t, const void *, size_t);
    bool (*available)(void);
    const char *missing; // why the CPU cannot run it
};

void PrintTo(const Crc32Impl &impl, std::ostream *os)
{
    *os << impl.name;
}

bool always() { return true; }

const Crc32Impl kImpls[] = {
    {"dispatch", shmx_crc32, always, nullptr},
    {"table", shmx_crc32_table, always, nullptr},
#if SHMX_CRC32_HAVE_CLMUL
    {"pclmul", shmx_crc32_pclmul, shmx_crc32_cpu_has_pclmul, "this CPU lacks PCLMULQDQ or SSE4.1"},
    {"vpclmul", shmx_crc32_vpclmul, shmx_crc32_cpu_has_vpclmul, "this CPU or OS lacks AVX-512 VPCLMULQDQ"},
#endif
};

uint32_t zlibCrc(uint32_t crc, const unsigned char *data, size_t len)
{
    return static_cast<uint32_t>(crc32(crc, data, static_cast<uInt>(len)));
}

// Runs every test once per implementation; one the CPU lacks is skipped with the reason.
class Crc32Test : public ::testing::TestWithParam<Crc32Impl> {
protected:
    void SetUp() override
    {
        if (!GetParam().available())
            GTEST_SKIP() << GetParam().name << ": " << GetParam().missing;
        std::mt19937 rng(12345);
        data_.resize((1u << 20) + 4096);
        for (auto &b : data_)
            b = static_cast<unsigned char>(rng());
    }

    uint32_t crc(uint32_t start, const unsigned char *data, size_t len) const
    {
        return GetParam().fn(start, data, len);
    }

    std::vector<unsigned char> data_;
};

TEST_P(Crc32Test, shouldGiveTheStandardCheckValue)
{
    const char *check = "123456789";
    EXPECT_EQ(0xCBF43926u, crc(0, reinterpret_cast<const unsigned char *>(check), 9));
}

TEST_P(Crc32Test, shouldReturnTheStartValueForEmptyInput)
{
    EXPECT_EQ(0u, crc(0, nullptr, 0));
    EXPECT_EQ(0x12345678u, crc(0x12345678u, nullptr, 0));
    EXPECT_EQ(0xCBF43926u, crc(0xCBF43926u, data_.data(), 0));
}

TEST_P(Crc32Test, shouldMatchZlibForEveryLengthUpTo300)
{
    for (size_t len = 0; len <= 300; len++)
        ASSERT_EQ(zlibCrc(0, data_.data(), len), crc(0, data_.data(), len)) << "len " << len;
}

TEST_P(Crc32Test, shouldMatchZlibFromANonZeroStart)
{
    for (size_t len : {1u, 15u, 16u, 17u, 63u, 64u, 65u, 255u, 256u, 257u, 1000u})
        ASSERT_EQ(zlibCrc(0xDEADBEEFu, data_.data(), len), crc(0xDEADBEEFu, data_.data(), len)) << "len " << len;
}

TEST_P(Crc32Test, shouldMatchZlibForLargeInputs)
{
    for (size_t len : {4096u, 4096u + 7u, 65536u, 65536u + 100u, 1u << 20, (1u << 20) + 4095u})
        ASSERT_EQ(zlibCrc(0, data_.data(), len), crc(0, data_.data(), len)) << "len " << len;
}

TEST_P(Crc32Test, shouldMatchZlibAtMisalignedAddresses)
{
    for (size_t offset = 1; offset < 64; offset++)
        for (size_t len : {5u, 16u, 31u, 64u, 100u, 255u, 256u, 333u, 4097u})
            ASSERT_EQ(zlibCrc(0, data_.data() + offset, len), crc(0, data_.data() + offset, len))
                << "offset " << offset << " len " << len;
}

TEST_P(Crc32Test, shouldChainAcrossRandomSplitPoints)
{
    std::mt19937 rng(777);
    for (int round = 0; round < 2000; round++) {
        size_t len = rng() % 3000;
        size_t split = len ? rng() % (len + 1) : 0;
        uint32_t whole = zlibCrc(0, data_.data(), len);
        uint32_t chained = crc(crc(0, data_.data(), split), data_.data() + split, len - split);
        ASSERT_EQ(whole, chained) << "len " << len << " split " << split;
    }
}

TEST_P(Crc32Test, shouldNotReadOutsideTheInput)
{
    // Input placed right after one inaccessible page and right before another:
    // a read past either end faults.
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *map = mmap(nullptr, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(MAP_FAILED, map);
    unsigned char *mid = static_cast<unsigned char *>(map) + page;
    ASSERT_EQ(0, mprotect(mid, page, PROT_READ | PROT_WRITE));
    std::memcpy(mid, data_.data(), page);
    for (size_t len = 0; len <= 600; len++) {
        ASSERT_EQ(zlibCrc(0, mid, len), crc(0, mid, len)) << "at page start, len " << len;
        const unsigned char *end = mid + page - len;
        ASSERT_EQ(zlibCrc(0, end, len), crc(0, end, len)) << "at page end, len " << len;
    }
    munmap(map, 3 * page);
}

INSTANTIATE_TEST_SUITE_P(Implementations, Crc32Test, ::testing::ValuesIn(kImpls),
                         [](const ::testing::TestParamInfo<Crc32Impl> &info) { return std::string(info.param.name); });

class Crc32ChoiceTest : public ::testing::Test {};

TEST_F(Crc32ChoiceTest, shouldNameTheImplementationTheCpuAllows)
{
    std::string name = shmx_crc32_implementation();
#if SHMX_CRC32_HAVE_CLMUL
    EXPECT_EQ(shmx_crc32_cpu_has_pclmul() ? "pclmul" : "table", name);
#else
    EXPECT_EQ("table", name);
#endif
}

TEST_F(Crc32ChoiceTest, shouldAgreeAcrossImplementationsOnRandomInputs)
{
    std::mt19937 rng(4242);
    std::vector<unsigned char> buf(70000);
    for (auto &b : buf)
        b = static_cast<unsigned char>(rng());
    for (int round = 0; round < 500; round++) {
        size_t offset = rng() % 64;
        size_t len = rng() % (buf.size() - offset);
        uint32_t start = rng();
        uint32_t expected = shmx_crc32_table(start, buf.data() + offset, len);
        for (const Crc32Impl &impl : kImpls) {
            if (impl.available()) {
                ASSERT_EQ(expected, impl.fn(start, buf.data() + offset, len))
                    << impl.name << " offset " << offset << " len " << len;
            }
        }
    }
}

} // namespace
