/*
 * Payload patterns for the channel, stream and concurrency tests: bytes that
 * differ by seed and by position (also across 256-byte and larger strides),
 * so a misplaced, stale or torn copy is caught, plus unique segment labels.
 */
#ifndef SHMX_TEST_PATTERN_H
#define SHMX_TEST_PATTERN_H

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

inline uint8_t pattern_byte(uint32_t seed, size_t i) {
    return static_cast<uint8_t>(seed * 131u + i * 7u + (i >> 8));
}

inline std::vector<uint8_t> pattern(uint32_t seed, size_t len) {
    std::vector<uint8_t> v(len);
    for (size_t i = 0; i < len; i++) v[i] = pattern_byte(seed, i);
    return v;
}

/* Index of the first byte of @data that differs from pattern(@seed), or -1. */
inline long first_mismatch(const void *data, uint32_t seed, size_t len) {
    const auto *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(seed, i)) return static_cast<long>(i);
    return -1;
}

/* A segment or host label unique within this process and across processes: PREFIX-PID-N. */
inline std::string unique_label(const char *prefix) {
    static std::atomic<int> n{0};
    return std::string(prefix) + "-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

/* A shared word as a plain integer for the __atomic builtins (the header's _Atomic differs by compiler). */
template <typename T, typename W>
T *word(W *w) {
    static_assert(sizeof(T) == sizeof(W), "same size");
    return (T *)(void *)w;
}

#endif
