/*
 * Private: the CRC-32 implementations behind shmx_crc32(), each callable on
 * its own so that tests can check every one of them whatever the CPU picks.
 * All take and return CRCs exactly like shmx_crc32() (start with 0).
 */
#ifndef SHMX_CRC32_IMPL_H
#define SHMX_CRC32_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The slice-by-8 table loop: the fallback and the path for short inputs. */
uint32_t shmx_crc32_table(uint32_t crc, const void *data, size_t len);

#if defined(__x86_64__)
#define SHMX_CRC32_HAVE_CLMUL 1

/* Whether this CPU (and OS) can run shmx_crc32_pclmul / shmx_crc32_vpclmul. */
bool shmx_crc32_cpu_has_pclmul(void);
bool shmx_crc32_cpu_has_vpclmul(void);

/* 128-bit PCLMULQDQ folding. Call only if shmx_crc32_cpu_has_pclmul(). */
uint32_t shmx_crc32_pclmul(uint32_t crc, const void *data, size_t len);

/*
 * 512-bit VPCLMULQDQ (AVX-512) folding for long inputs, the 128-bit folding
 * below that. Call only if shmx_crc32_cpu_has_vpclmul().
 */
uint32_t shmx_crc32_vpclmul(uint32_t crc, const void *data, size_t len);
#endif

#ifdef __cplusplus
}
#endif
#endif
