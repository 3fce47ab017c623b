/* Log messages (see shmx/log.h): rare events, so one lock is fine. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static void to_stderr(void *arg, int level, const char *message) {
    (void)arg;
    if (level == SHMX_LOG_WARN) fprintf(stderr, "shmx: warning: %s\n", message);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static shmx_log_fn handler = to_stderr;
static void *handler_arg;

void shmx_log_set_handler(shmx_log_fn fn, void *arg) {
    pthread_mutex_lock(&lock);
    handler = fn;
    handler_arg = arg;
    pthread_mutex_unlock(&lock);
}

void shmx_log_set_default(void) { shmx_log_set_handler(to_stderr, NULL); }

void shmx_log(int level, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Held while the handler runs, so a handler being replaced is never called after it returns. */
    pthread_mutex_lock(&lock);
    if (handler != NULL) handler(handler_arg, level, line);
    pthread_mutex_unlock(&lock);
}
