/*
 * The ping payload pattern (normative for ping and pong in C and Java):
 * byte k of the message with id I is (uint8_t)(k * 7 + I * 13).
 */
#ifndef SHMX_TOOL_PAYLOAD_H
#define SHMX_TOOL_PAYLOAD_H

#include <stdint.h>

/* Fill @len bytes at @p with the pattern of message @id. */
void tool_payload_fill(uint8_t *p, uint32_t len, uint64_t id);

/* Check @len bytes at @p against the pattern of @id: -1 if all match, else the first wrong offset. */
int64_t tool_payload_check(const uint8_t *p, uint32_t len, uint64_t id);

#endif
