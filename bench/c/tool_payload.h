/*
 * The ping payload pattern (normative for ping and pong in C and Java):
 * byte k of the message with id I is (uint8_t)(k * 7 + I * 13).
 */
#ifndef SHMX_TOOL_PAYLOAD_H
#define SHMX_TOOL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Fill @len bytes at @p with the pattern of message @id. */
void tool_payload_fill(uint8_t *p, uint32_t len, uint64_t id);

/* Fill @len bytes at @p with bytes @offset.. of the pattern of message @id (a message written piecewise). */
void tool_payload_fill_at(uint8_t *p, size_t len, uint64_t offset, uint64_t id);

/*
 * tool_payload_source - a malloc'd buffer of @len + 256 bytes from which every
 * message's pattern can be copied: bytes k of message @id's pattern are
 * src[tool_payload_shift(id) + k] (7 is invertible mod 256, so shifting the
 * id-0 pattern by a multiple of 7's inverse adds id * 13). Lets a sender copy
 * at memcpy speed instead of computing the pattern. NULL if out of memory.
 */
uint8_t *tool_payload_source(size_t len);

/* Where message @id's pattern starts in a tool_payload_source buffer: id * 13 * 7^-1 (mod 256). */
static inline size_t tool_payload_shift(uint64_t id) { return (size_t)((id * 75u) & 255u); }

/* Check @len bytes at @p against the pattern of @id: -1 if all match, else the first wrong offset. */
int64_t tool_payload_check(const uint8_t *p, uint32_t len, uint64_t id);

#endif
