/* The library's side of shmx/log.h. */
#ifndef SHMX_LOG_INTERNAL_H
#define SHMX_LOG_INTERNAL_H

#include "shmx/log.h"

/* Format and hand one message to the installed handler. */
void shmx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
