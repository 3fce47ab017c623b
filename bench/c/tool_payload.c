/* The ping payload pattern; see tool_payload.h. */
#include "tool_payload.h"

#include <stdlib.h>

void tool_payload_fill(uint8_t *p, uint32_t len, uint64_t id) { tool_payload_fill_at(p, len, 0, id); }

void tool_payload_fill_at(uint8_t *p, size_t len, uint64_t offset, uint64_t id) {
    uint8_t base = (uint8_t)(offset * 7u + id * 13u);
    for (size_t k = 0; k < len; k++) p[k] = (uint8_t)(k * 7u + base);
}

uint8_t *tool_payload_source(size_t len) {
    uint8_t *p = malloc(len + 256u);
    if (p != NULL) tool_payload_fill_at(p, len + 256u, 0, 0);
    return p;
}

int64_t tool_payload_check(const uint8_t *p, uint32_t len, uint64_t id) {
    uint8_t base = (uint8_t)(id * 13u);
    uint8_t diff = 0;
    /* Branch-free accumulate first (vectorises); locate the byte only on failure. */
    for (uint32_t k = 0; k < len; k++) diff |= (uint8_t)(p[k] ^ (uint8_t)(k * 7u + base));
    if (diff == 0) return -1;
    for (uint32_t k = 0; k < len; k++)
        if (p[k] != (uint8_t)(k * 7u + base)) return k;
    return -1;
}
