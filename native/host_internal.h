/*
 * Private views into a host, for tests and diagnostics only (not exported:
 * the library is built with hidden visibility and these carry no
 * visibility attribute).
 */
#ifndef SHMX_HOST_INTERNAL_H
#define SHMX_HOST_INTERNAL_H

#include <stdint.h>

#include "pool.h"
#include "segment.h"
#include "shmx/peer.h"

/* The host's private view of its pool (for shmx_pool_stats). */
shmx_pool_t *shmx_host_pool(shmx_host_t *host);

/* The host's segment. */
shmx_segment_t *shmx_host_segment(shmx_host_t *host);

/* Channels the host currently serves (shm entries in use plus uds channels). */
uint32_t shmx_host_channel_count(shmx_host_t *host);

#endif
