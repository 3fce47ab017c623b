/*
 * shmx log messages. The library says something only when an operator
 * should know: a channel fell back to the Unix socket, a guest was expelled.
 * By default warnings go to stderr as one line "shmx: warning: ...";
 * install a handler to route them elsewhere, or NULL to drop them.
 */
#ifndef SHMX_LOG_H
#define SHMX_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

enum shmx_log_level { SHMX_LOG_WARN = 1, SHMX_LOG_INFO = 2 };

/*
 * A handler: @level is enum shmx_log_level, @message one line without a
 * newline. It is called one message at a time, on the thread that met the
 * event or on a host's service thread ("shmx-host"), and never under a host's
 * lock, so it may call host and channel functions; not shmx_log_set_handler,
 * nor those that may log (shmx_host_create, shmx_host_accept, shmx_guest_connect):
 * they would wait for it to return.
 */
typedef void (*shmx_log_fn)(void *arg, int level, const char *message);

/*
 * shmx_log_set_handler - route the library's messages to @fn(@arg, ...);
 * NULL drops them. shmx_log_set_default() restores stderr (warnings only).
 */
void shmx_log_set_handler(shmx_log_fn fn, void *arg);
void shmx_log_set_default(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
