/*
 * Spawn tickets: how a host tells a child it spawned which channel entry is
 * its own and where its descriptor is. The ticket travels in the child's
 * environment as SHMX_TICKET=1:PEER:EPOCH:FD (decimal numbers). It is a name,
 * not a credential: the descriptor it points to is what connects the child,
 * and the host's welcome on it must repeat the peer id and epoch.
 */
#ifndef SHMX_TICKET_H
#define SHMX_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define SHMX_TICKET_ENV "SHMX_TICKET"
#define SHMX_TICKET_VERSION 1u

/* Write the ticket text (without the variable name) into @buf. Returns its length or -SHMX_EINVAL. */
int shmx_ticket_format(char *buf, size_t len, uint32_t peer, uint32_t epoch, int fd);

/* Parse @text. Returns 0 and sets the fields, or -SHMX_EINVAL (another version, a bad number, a negative fd). */
int shmx_ticket_parse(const char *text, uint32_t *peer, uint32_t *epoch, int *fd);

#endif
