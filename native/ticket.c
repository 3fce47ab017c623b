/* Spawn tickets (see ticket.h). */
#include "ticket.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "shmx/errors.h"

int shmx_ticket_format(char *buf, size_t len, uint32_t peer, uint32_t epoch, int fd) {
    if (buf == NULL || fd < 0) return -SHMX_EINVAL;
    int n = snprintf(buf, len, "%u:%u:%u:%d", SHMX_TICKET_VERSION, peer, epoch, fd);
    return n < 0 || (size_t)n >= len ? -SHMX_EINVAL : n;
}

/* One decimal field up to @max, ended by @stop; advances *@p past the terminator. */
static int field(const char **p, char stop, unsigned long max, unsigned long *out) {
    const char *s = *p;
    if (*s < '0' || *s > '9') return -1; /* strtoul would take signs and blanks */
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || v > max || *end != stop) return -1;
    *p = stop == '\0' ? end : end + 1;
    *out = v;
    return 0;
}

int shmx_ticket_parse(const char *text, uint32_t *peer, uint32_t *epoch, int *fd) {
    if (text == NULL) return -SHMX_EINVAL;
    unsigned long version, p, e, f;
    if (field(&text, ':', UINT32_MAX, &version) != 0 || version != SHMX_TICKET_VERSION ||
        field(&text, ':', UINT32_MAX, &p) != 0 || field(&text, ':', UINT32_MAX, &e) != 0 ||
        field(&text, '\0', INT_MAX, &f) != 0)
        return -SHMX_EINVAL;
    *peer = (uint32_t)p;
    *epoch = (uint32_t)e;
    *fd = (int)f;
    return 0;
}
