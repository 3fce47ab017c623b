/*
 * shmx: shared-memory messaging between processes on one Linux host.
 * Include this header for the whole public C API; link with -lshmx.
 *
 *   shmx/errors.h   error codes and shmx_strerror()
 *   shmx/frame.h    the 24-byte frame, shmx_crc32(), encode and decode
 *   shmx/config.h   segment and pool configuration
 *   shmx/channel.h  send, claim/commit, receive/release
 *   shmx/peer.h     hosts and guests, connecting by name
 */
#ifndef SHMX_SHMX_H
#define SHMX_SHMX_H

#include "channel.h"
#include "config.h"
#include "errors.h"
#include "frame.h"
#include "log.h"
#include "names.h"
#include "peer.h"
#include "spawn.h"
#include "stream.h"

#define SHMX_VERSION_MAJOR 0
#define SHMX_VERSION_MINOR 1
#define SHMX_VERSION_PATCH 0

#endif
