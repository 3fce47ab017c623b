/* Command-line helpers shared by the C programs. */
#include "tool_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shmx/config.h"

int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1; /* strtoull would accept "-1" and " 1" */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int tool_parse_transport(const char *s, int allow_both, uint32_t *out) {
    if (!s) return -1;
    if (strcmp(s, "shm") == 0) *out = SHMX_TRANSPORT_SHM;
    else if (strcmp(s, "uds") == 0) *out = SHMX_TRANSPORT_UDS;
    else if (allow_both && strcmp(s, "both") == 0) *out = SHMX_TRANSPORT_SHM | SHMX_TRANSPORT_UDS;
    else if (!allow_both && strcmp(s, "auto") == 0) *out = SHMX_TRANSPORT_AUTO; /* a guest's request */
    else return -1;
    return 0;
}
