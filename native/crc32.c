/*
 * CRC-32 with the reflected polynomial 0x04C11DB7 (zlib, java.util.zip.CRC32).
 *
 * Two implementations, one chosen at the first call:
 *  - "pclmul": carry-less multiplication folding. PCLMULQDQ folds four 128-bit
 *    lanes over each 64-byte block, then one lane, then a Barrett reduction
 *    gives the 32-bit CRC. On CPUs with AVX-512 VPCLMULQDQ the same folding
 *    runs on 512-bit vectors, four at a time: about four times the 128-bit
 *    speed on long inputs, which java.util.zip.CRC32 also reaches there.
 *  - "table": a slice-by-8 table loop, without PCLMULQDQ; it also serves
 *    inputs under 16 bytes, which are too short to fold.
 * The folding follows the method of Intel's white paper "Fast CRC Computation
 * for Generic Polynomials Using PCLMULQDQ Instruction" (Gopal et al., 2009).
 *
 * Inside this file a CRC "state" is the inverted CRC (zlib inverts on entry
 * and exit); the public functions do the inversion once.
 */
#include "crc32_impl.h"

#include <shmx/frame.h>

#include <pthread.h>
#include <stdatomic.h>

#if SHMX_CRC32_HAVE_CLMUL
#include <immintrin.h>
#endif

#define CRC32_POLY_REFLECTED 0xEDB88320u

/* crc32_tables[k][b]: the state change of byte b followed by k zero bytes. */
static uint32_t crc32_tables[8][256];

static void crc32_build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 1u) ? (c >> 1) ^ CRC32_POLY_REFLECTED : c >> 1;
        crc32_tables[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++) {
            uint32_t prev = crc32_tables[k - 1][b];
            crc32_tables[k][b] = (prev >> 8) ^ crc32_tables[0][prev & 0xffu];
        }
}

/* Byte-wise little-endian load: no alignment or endianness assumption; gcc makes it one mov. */
static inline uint64_t crc32_load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static uint32_t crc32_table_state(uint32_t s, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint64_t w = crc32_load_le64(p) ^ s;
        s = crc32_tables[7][w & 0xffu] ^ crc32_tables[6][(w >> 8) & 0xffu] ^
            crc32_tables[5][(w >> 16) & 0xffu] ^ crc32_tables[4][(w >> 24) & 0xffu] ^
            crc32_tables[3][(w >> 32) & 0xffu] ^ crc32_tables[2][(w >> 40) & 0xffu] ^
            crc32_tables[1][(w >> 48) & 0xffu] ^ crc32_tables[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        s = crc32_tables[0][(s ^ *p++) & 0xffu] ^ (s >> 8);
    return s;
}

static uint32_t crc32_by_table(uint32_t crc, const void *data, size_t len)
{
    return ~crc32_table_state(~crc, data, len);
}

#if SHMX_CRC32_HAVE_CLMUL
/*
 * Folding constants. A 128-bit lane holds 128 message bits "reflected": bit m
 * of the register is the coefficient of x^(127-m), so its low quadword is the
 * high-order half. PCLMULQDQ of two reflected quadwords gives the product
 * times x in that 128-bit form. Each constant below is a polynomial c of
 * degree <= 32 stored with the coefficient of x^d at bit 32-d (the 32-bit
 * reflection shifted left by one), so that a quadword times it comes out as
 * quadword * c * x^32. Moving a lane forward over D message bits therefore
 * multiplies its high-order quadword by x^(D+32) mod P and its low-order one
 * by x^(D-32) mod P; the sum is congruent to lane * x^D and fits in 128 bits.
 * mu = floor(x^64 / P) and P itself serve the final Barrett reduction.
 * Derived at development time with a short polynomial-arithmetic script
 * (x^n mod P by shift-and-xor, mu by long division, then the bit mapping
 * above); the tests check every path against zlib.
 */
#define K_X2080 0x11542778aull /* x^(2048+32) mod P: 4 x 512 bits ahead */
#define K_X2016 0x1322d1430ull /* x^(2048-32) mod P */
#define K_X544 0x154442bd4ull  /* x^(512+32) mod P: 4 x 128 bits ahead */
#define K_X480 0x1c6e41596ull  /* x^(512-32) mod P */
#define K_X416 0x03db1ecdcull  /* x^(384+32) mod P */
#define K_X352 0x174359406ull  /* x^(384-32) mod P */
#define K_X288 0x0f1da05aaull  /* x^(256+32) mod P */
#define K_X224 0x15a546366ull  /* x^(256-32) mod P */
#define K_X160 0x1751997d0ull  /* x^(128+32) mod P: next 128-bit lane */
#define K_X96 0x0ccaa009eull   /* x^(128-32) mod P, also 128 -> 96 bits */
#define K_X64 0x163cd6124ull   /* x^64 mod P: 96 -> 64 bits */
#define K_MU 0x1f7011641ull    /* floor(x^64 / P) */
#define K_POLY 0x1db710641ull  /* P = x^32 + 0x04C11DB7 */

/* Below these lengths the wider path costs more than it saves. */
#define CRC32_CLMUL_MIN 16u
#define CRC32_VCLMUL_MIN 64u

/*
 * Byte-shuffle masks for the last 1-15 bytes: loaded at offset n they move
 * the first n bytes of a lane to its end (0x80 bytes give zero); at offset
 * 16 + n they move the other 16 - n bytes to its start and mark the rest.
 */
static const uint8_t crc32_tail_shuffle[48] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};

#define CRC32_TARGET_CLMUL __attribute__((target("pclmul,sse4.1")))
#define CRC32_TARGET_VCLMUL __attribute__((target("pclmul,sse4.1,avx512f,vpclmulqdq")))

/* acc moved forward over D bits (k = {x^(D+32), x^(D-32)} mod P) plus data. */
CRC32_TARGET_CLMUL static inline __attribute__((always_inline)) __m128i
crc32_fold128(__m128i acc, __m128i k, __m128i data)
{
    __m128i high_half = _mm_clmulepi64_si128(acc, k, 0x00);
    __m128i low_half = _mm_clmulepi64_si128(acc, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(high_half, low_half), data);
}

/*
 * Finish from one 128-bit lane x followed by n more bytes at p, where x
 * covers at least the 16 bytes before p: fold the rest into x, then reduce x
 * to the 32-bit state.
 */
CRC32_TARGET_CLMUL static inline __attribute__((always_inline)) uint32_t
crc32_clmul_finish(__m128i x, const unsigned char *p, size_t n)
{
    const __m128i k128 = _mm_set_epi64x((long long)K_X96, (long long)K_X160);
    for (; n >= 16; p += 16, n -= 16)
        x = crc32_fold128(x, k128, _mm_loadu_si128((const __m128i *)p));
    if (n > 0) {
        /*
         * Split the last 16 + n bytes into the first n bytes of x (padded in
         * front with zeros, which do not change a polynomial) and a full lane
         * of the rest of x and the tail. The tail comes from a load ending at
         * p + n, in bounds because x's 16 bytes precede p.
         */
        __m128i last = _mm_loadu_si128((const __m128i *)(p + n - 16));
        __m128i head = _mm_shuffle_epi8(x, _mm_loadu_si128((const __m128i *)(crc32_tail_shuffle + n)));
        __m128i sel = _mm_loadu_si128((const __m128i *)(crc32_tail_shuffle + 16 + n));
        __m128i body = _mm_blendv_epi8(_mm_shuffle_epi8(x, sel), last, sel);
        x = crc32_fold128(head, k128, body);
    }

    /* The state is x * x^32 mod P. 128 -> 96 bits: high-order quadword times x^96. */
    const __m128i k96_64 = _mm_set_epi64x((long long)K_X64, (long long)K_X96);
    __m128i s = _mm_xor_si128(_mm_clmulepi64_si128(x, k96_64, 0x00), _mm_srli_si128(x, 8));
    /* 96 -> 64 bits: the top 32 bits (register bits 0-31) times x^64 */
    __m128i top = _mm_slli_epi64(s, 32);
    __m128i low64 = _mm_and_si128(s, _mm_set_epi32(0, -1, -1, 0));
    __m128i u = _mm_xor_si128(_mm_clmulepi64_si128(top, k96_64, 0x10), low64);
    /* Barrett: q = floor(u_high * mu / x^32), state = (u + q * P) mod x^32, in bits 64-95 */
    const __m128i barrett = _mm_set_epi64x((long long)K_POLY, (long long)K_MU);
    __m128i q = _mm_clmulepi64_si128(u, barrett, 0x00);
    __m128i r = _mm_xor_si128(u, _mm_clmulepi64_si128(q, barrett, 0x10));
    return (uint32_t)_mm_extract_epi32(r, 2);
}

/* n >= CRC32_CLMUL_MIN */
CRC32_TARGET_CLMUL static uint32_t crc32_clmul_state(uint32_t s, const unsigned char *p, size_t n)
{
    /* The state enters as the first 32 message bits xored in. */
    __m128i x0 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)s));
    if (n < 64)
        return crc32_clmul_finish(x0, p + 16, n - 16);

    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    p += 64;
    n -= 64;

    /* Four independent lanes hide the multiply latency. */
    const __m128i k512 = _mm_set_epi64x((long long)K_X480, (long long)K_X544);
    for (; n >= 64; p += 64, n -= 64) {
        x0 = crc32_fold128(x0, k512, _mm_loadu_si128((const __m128i *)p));
        x1 = crc32_fold128(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = crc32_fold128(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = crc32_fold128(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
    }

    const __m128i k128 = _mm_set_epi64x((long long)K_X96, (long long)K_X160);
    __m128i x = crc32_fold128(x0, k128, x1);
    x = crc32_fold128(x, k128, x2);
    x = crc32_fold128(x, k128, x3);
    return crc32_clmul_finish(x, p, n);
}

/* The 512-bit counterpart of crc32_fold128, with one three-way xor. */
CRC32_TARGET_VCLMUL static inline __attribute__((always_inline)) __m512i
crc32_fold512(__m512i acc, __m512i k, __m512i data)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00),
                                     _mm512_clmulepi64_epi128(acc, k, 0x11), data, 0x96);
}

/* n >= CRC32_VCLMUL_MIN */
CRC32_TARGET_VCLMUL static uint32_t crc32_vclmul_state(uint32_t s, const unsigned char *p, size_t n)
{
    __m512i y = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)s)));
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_X480, (long long)K_X544));
    if (n >= 256) {
        __m512i y1 = _mm512_loadu_si512(p + 64);
        __m512i y2 = _mm512_loadu_si512(p + 128);
        __m512i y3 = _mm512_loadu_si512(p + 192);
        p += 256;
        n -= 256;
        /* Sixteen 128-bit lanes, each moved forward over 256 bytes per step. */
        const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K_X2016, (long long)K_X2080));
        for (; n >= 256; p += 256, n -= 256) {
            y = crc32_fold512(y, k2048, _mm512_loadu_si512(p));
            y1 = crc32_fold512(y1, k2048, _mm512_loadu_si512(p + 64));
            y2 = crc32_fold512(y2, k2048, _mm512_loadu_si512(p + 128));
            y3 = crc32_fold512(y3, k2048, _mm512_loadu_si512(p + 192));
        }
        y = crc32_fold512(y, k512, y1);
        y = crc32_fold512(y, k512, y2);
        y = crc32_fold512(y, k512, y3);
    } else {
        p += 64;
        n -= 64;
    }
    for (; n >= 64; p += 64, n -= 64)
        y = crc32_fold512(y, k512, _mm512_loadu_si512(p));

    /* Lanes 0-2 moved forward over 384, 256 and 128 bits onto lane 3. */
    const __m512i k_lanes = _mm512_set_epi64(0, 0, (long long)K_X96, (long long)K_X160, (long long)K_X224,
                                             (long long)K_X288, (long long)K_X352, (long long)K_X416);
    __m512i z = _mm512_xor_si512(_mm512_clmulepi64_epi128(y, k_lanes, 0x00),
                                 _mm512_clmulepi64_epi128(y, k_lanes, 0x11));
    __m128i x = _mm_xor_si128(_mm512_castsi512_si128(z), _mm512_extracti32x4_epi32(z, 1));
    x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(z, 2));
    x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(z, 3));
    x = _mm_xor_si128(x, _mm512_extracti32x4_epi32(y, 3));
    return crc32_clmul_finish(x, p, n);
}

static uint32_t crc32_by_clmul(uint32_t crc, const void *data, size_t len)
{
    if (len < CRC32_CLMUL_MIN)
        return crc32_by_table(crc, data, len);
    return ~crc32_clmul_state(~crc, data, len);
}

static uint32_t crc32_by_vclmul(uint32_t crc, const void *data, size_t len)
{
    if (len < CRC32_VCLMUL_MIN)
        return crc32_by_clmul(crc, data, len);
    return ~crc32_vclmul_state(~crc, data, len);
}

static bool crc32_detect_pclmul(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

/* __builtin_cpu_supports("avx512f") also checks that the OS saves the AVX-512 state. */
static bool crc32_detect_vpclmul(void)
{
    return crc32_detect_pclmul() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("vpclmulqdq");
}
#endif /* SHMX_CRC32_HAVE_CLMUL */

typedef uint32_t (*crc32_fn)(uint32_t crc, const void *data, size_t len);

static uint32_t crc32_first_call(uint32_t crc, const void *data, size_t len);

/* Starts at crc32_first_call, which sets up and replaces it once. */
static _Atomic(crc32_fn) crc32_chosen = crc32_first_call;
static const char *crc32_chosen_name = "table";
static pthread_once_t crc32_once = PTHREAD_ONCE_INIT;

static void crc32_setup_once(void)
{
    crc32_build_tables();
    crc32_fn fn = crc32_by_table;
#if SHMX_CRC32_HAVE_CLMUL
    /* Both folding widths are the one "pclmul" implementation of shmx_crc32_implementation(). */
    if (crc32_detect_vpclmul()) {
        fn = crc32_by_vclmul;
        crc32_chosen_name = "pclmul";
    } else if (crc32_detect_pclmul()) {
        fn = crc32_by_clmul;
        crc32_chosen_name = "pclmul";
    }
#endif
    /* Release: pairs with the acquire in shmx_crc32, so the tables are seen built. */
    atomic_store_explicit(&crc32_chosen, fn, memory_order_release);
}

static void crc32_setup(void)
{
    pthread_once(&crc32_once, crc32_setup_once);
}

static uint32_t crc32_first_call(uint32_t crc, const void *data, size_t len)
{
    crc32_setup();
    /* Acquire: pairs with the release in crc32_setup_once. */
    return atomic_load_explicit(&crc32_chosen, memory_order_acquire)(crc, data, len);
}

uint32_t shmx_crc32(uint32_t crc, const void *data, size_t len)
{
    /* Acquire: pairs with the release in crc32_setup_once (tables built first). */
    return atomic_load_explicit(&crc32_chosen, memory_order_acquire)(crc, data, len);
}

const char *shmx_crc32_implementation(void)
{
    crc32_setup();
    return crc32_chosen_name;
}

uint32_t shmx_crc32_table(uint32_t crc, const void *data, size_t len)
{
    crc32_setup();
    return crc32_by_table(crc, data, len);
}

#if SHMX_CRC32_HAVE_CLMUL
bool shmx_crc32_cpu_has_pclmul(void)
{
    return crc32_detect_pclmul();
}

bool shmx_crc32_cpu_has_vpclmul(void)
{
    return crc32_detect_vpclmul();
}

uint32_t shmx_crc32_pclmul(uint32_t crc, const void *data, size_t len)
{
    crc32_setup();
    return crc32_by_clmul(crc, data, len);
}

uint32_t shmx_crc32_vpclmul(uint32_t crc, const void *data, size_t len)
{
    crc32_setup();
    return crc32_by_vclmul(crc, data, len);
}
#endif
