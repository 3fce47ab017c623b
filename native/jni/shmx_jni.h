/*
 * Private declarations shared by the JNI glue (the files of native/jni). Nothing
 * outside native/jni/ includes this file; nothing outside native/jni/ knows JNI.
 *
 * Conventions of the glue:
 *  - Handles (shmx_host_t *, shmx_guest_t *, shmx_channel_t *) and memory
 *    addresses travel as jlong. User-space addresses on x86-64 Linux are
 *    below 2^47, so a valid handle or address is always > 0 and a negative
 *    jlong can carry a -code.
 *  - Hot-path natives (send, claim, commit, abort, receive, batch receive,
 *    release, receive copy) take and return primitives only, never throw,
 *    never call back into Java and never copy arrays with
 *    Get<Type>ArrayElements. They return the C library's codes unchanged.
 *  - Cold natives (host create, accept, guest connect, socket path, regions)
 *    throw the typed Java exception themselves: they call the cached static
 *    factory io.shmx.internal.Errors.newException(int, String, String),
 *    which maps the code to the exception class, and throw what it returns.
 */
#ifndef SHMX_JNI_H
#define SHMX_JNI_H

#include <jni.h>
#include <stddef.h>
#include <stdint.h>

#include "shmx/shmx.h"

#define SHMX_JNI_UNUSED __attribute__((unused))

/* jlong <-> pointer conversions. */
#define SHMX_JNI_PTR(type, v) ((type *)(intptr_t)(v))
#define SHMX_JNI_LONG(p) ((jlong)(intptr_t)(p))

/*
 * Layout of the int[] that carries a shmx_config_t between Java and C.
 * Mirrored by io.shmx.internal.ConfigLayout; keep both in step.
 */
enum shmx_jni_config_index {
    SHMX_JNI_CFG_MAX_CHANNELS = 0,
    SHMX_JNI_CFG_RING_BYTES = 1,
    SHMX_JNI_CFG_INLINE_MAX = 2,
    SHMX_JNI_CFG_MAX_PAYLOAD = 3,
    SHMX_JNI_CFG_CLASS_COUNT = 4,
    SHMX_JNI_CFG_CLASS_SIZE = 5,                                        /* 8 entries */
    SHMX_JNI_CFG_CLASS_SLOTS = SHMX_JNI_CFG_CLASS_SIZE + SHMX_MAX_CLASSES, /* 8 entries */
    SHMX_JNI_CFG_SEGMENT_MODE = SHMX_JNI_CFG_CLASS_SLOTS + SHMX_MAX_CLASSES,
    SHMX_JNI_CFG_TRANSPORTS,
    SHMX_JNI_CFG_ALLOWED_UID,
    SHMX_JNI_CFG_SPIN,
    SHMX_JNI_CFG_YIELD,
    SHMX_JNI_CFG_MAX_MESSAGE,
    SHMX_JNI_CFG_WINDOW_BYTES,
    SHMX_JNI_CFG_EXTENT_BYTES,
    SHMX_JNI_CFG_POOL_MAX_LOW,  /* pool_max_bytes, low 32 bits */
    SHMX_JNI_CFG_POOL_MAX_HIGH, /* pool_max_bytes, high 32 bits */
    SHMX_JNI_CFG_LIVENESS_MS,
    SHMX_JNI_CFG_LENGTH /* 32 */
};
_Static_assert(SHMX_JNI_CFG_LENGTH == 32, "config array length is mirrored in ConfigLayout.java");

/* Registration tables, one per file: filled into the Native class by JNI_OnLoad. */
extern const JNINativeMethod shmx_jni_misc_methods[];
extern const int shmx_jni_misc_method_count;
extern const JNINativeMethod shmx_jni_peer_methods[];
extern const int shmx_jni_peer_method_count;
extern const JNINativeMethod shmx_jni_channel_methods[];
extern const int shmx_jni_channel_method_count;
extern const JNINativeMethod shmx_jni_stream_methods[];
extern const int shmx_jni_stream_method_count;
extern const JNINativeMethod shmx_jni_spawn_methods[];
extern const int shmx_jni_spawn_method_count;
extern const JNINativeMethod shmx_jni_liveness_methods[];
extern const int shmx_jni_liveness_method_count;
extern const JNINativeMethod shmx_jni_events_methods[];
extern const int shmx_jni_events_method_count;

/*
 * shmx_jni_liveness_load - from JNI_OnLoad: cache what the peer listener and
 * log trampolines call, and route shmx_log to System.Logger. Returns 0 or -1
 * with an exception pending. shmx_jni_liveness_unload undoes it (JNI_OnUnload).
 */
int shmx_jni_liveness_load(JavaVM *vm, JNIEnv *env);
void shmx_jni_liveness_unload(JNIEnv *env);

/*
 * shmx_jni_throw - throw the typed Java exception for @code (a negative shmx
 * or errno code) from a cold native. @op names the failed operation, @detail
 * (may be NULL) adds context such as the configuration problem. After this
 * call an exception is pending: return at once.
 */
void shmx_jni_throw(JNIEnv *env, int code, const char *op, const char *detail);

/* shmx_jni_throw_iae / _npe / _oom - throw a JDK exception with @msg. */
void shmx_jni_throw_iae(JNIEnv *env, const char *msg);
void shmx_jni_throw_npe(JNIEnv *env, const char *msg);

/*
 * shmx_jni_config_from_java - copy the int[] @arr (ConfigLayout) into @cfg.
 * Returns 0, or -1 with an exception pending (null or short array).
 */
int shmx_jni_config_from_java(JNIEnv *env, jintArray arr, shmx_config_t *cfg);

/* shmx_jni_config_to_java - copy @cfg into the int[] @arr. Returns 0 or -1 with an exception pending. */
int shmx_jni_config_to_java(JNIEnv *env, const shmx_config_t *cfg, jintArray arr);

#endif
