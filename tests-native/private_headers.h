/*
 * The core's private C headers, for the C++ tests. The headers are C11
 * (_Atomic, _Static_assert) without extern "C": here an _Atomic word becomes a
 * plain integer of the same size and alignment (layout.h's own asserts still
 * check every size and offset), so tests touch shared words only through the
 * __atomic builtins.
 */
#ifndef SHMX_TEST_PRIVATE_HEADERS_H
#define SHMX_TEST_PRIVATE_HEADERS_H

#include <stdatomic.h> /* first, so that only the shmx headers see the macros below */
#define _Atomic
#define _Static_assert static_assert
extern "C" {
#include "bootstrap.h"
#include "channel_internal.h"
#include "host_internal.h"
#include "layout.h"
#include "pool.h"
#include "ring.h"
#include "segment.h"
#include "shmx/shmx.h"
#include "wait.h"
}
#undef _Atomic
#undef _Static_assert

#endif
