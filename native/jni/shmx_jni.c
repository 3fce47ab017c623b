/*
 * JNI entry points of libshmx: JNI_OnLoad registers every native method of
 * io.shmx.internal.Native and caches what the cold paths need to throw typed
 * exceptions. Also the small natives that belong to no object: version,
 * strerror, CRC-32, direct buffer addresses and configuration.
 *
 * Threading: the cached global references are written once in JNI_OnLoad,
 * before any native method can run, and only read afterwards.
 */
#include "shmx_jni.h"

#include <stdio.h>
#include <string.h>

#define SHMX_JNI_NATIVE_CLASS "io/shmx/internal/Native"

/* Named resources: list and clean (shmx_jni_names.c). */
extern const JNINativeMethod shmx_jni_names_methods[];
extern const int shmx_jni_names_method_count;
#define SHMX_JNI_ERRORS_CLASS "io/shmx/internal/Errors"

/* Cached in JNI_OnLoad, released in JNI_OnUnload. */
static jclass g_errors_class;        /* io.shmx.internal.Errors */
static jmethodID g_errors_new;       /* static Throwable newException(int code, String op, String detail) */
static jclass g_iae_class;           /* java.lang.IllegalArgumentException */
static jclass g_npe_class;           /* java.lang.NullPointerException */

void shmx_jni_throw_iae(JNIEnv *env, const char *msg) { (*env)->ThrowNew(env, g_iae_class, msg); }

void shmx_jni_throw_npe(JNIEnv *env, const char *msg) { (*env)->ThrowNew(env, g_npe_class, msg); }

void shmx_jni_throw(JNIEnv *env, int code, const char *op, const char *detail) {
    jstring jop = (*env)->NewStringUTF(env, op ? op : "");
    if (jop == NULL) {
        return; /* OutOfMemoryError pending */
    }
    jstring jdetail = NULL;
    if (detail != NULL && detail[0] != '\0') {
        jdetail = (*env)->NewStringUTF(env, detail);
        if (jdetail == NULL) {
            (*env)->DeleteLocalRef(env, jop);
            return;
        }
    }
    jobject exc = (*env)->CallStaticObjectMethod(env, g_errors_class, g_errors_new, (jint)code, jop, jdetail);
    if (!(*env)->ExceptionCheck(env) && exc != NULL) {
        (*env)->Throw(env, (jthrowable)exc);
    }
    if (exc != NULL) {
        (*env)->DeleteLocalRef(env, exc);
    }
    if (jdetail != NULL) {
        (*env)->DeleteLocalRef(env, jdetail);
    }
    (*env)->DeleteLocalRef(env, jop);
}

int shmx_jni_config_from_java(JNIEnv *env, jintArray arr, shmx_config_t *cfg) {
    if (arr == NULL) {
        shmx_jni_throw_npe(env, "configuration array is null");
        return -1;
    }
    if ((*env)->GetArrayLength(env, arr) < SHMX_JNI_CFG_LENGTH) {
        shmx_jni_throw_iae(env, "configuration array is too short");
        return -1;
    }
    jint v[SHMX_JNI_CFG_LENGTH];
    (*env)->GetIntArrayRegion(env, arr, 0, SHMX_JNI_CFG_LENGTH, v);
    if ((*env)->ExceptionCheck(env)) {
        return -1;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_channels = (uint32_t)v[SHMX_JNI_CFG_MAX_CHANNELS];
    cfg->ring_bytes = (uint32_t)v[SHMX_JNI_CFG_RING_BYTES];
    cfg->inline_max = (uint32_t)v[SHMX_JNI_CFG_INLINE_MAX];
    cfg->max_payload = (uint32_t)v[SHMX_JNI_CFG_MAX_PAYLOAD];
    cfg->class_count = (uint32_t)v[SHMX_JNI_CFG_CLASS_COUNT];
    for (unsigned i = 0; i < SHMX_MAX_CLASSES; i++) {
        cfg->class_size[i] = (uint32_t)v[SHMX_JNI_CFG_CLASS_SIZE + i];
        cfg->class_slots[i] = (uint32_t)v[SHMX_JNI_CFG_CLASS_SLOTS + i];
    }
    cfg->segment_mode = (uint32_t)v[SHMX_JNI_CFG_SEGMENT_MODE];
    cfg->transports = (uint32_t)v[SHMX_JNI_CFG_TRANSPORTS];
    cfg->allowed_uid = (uint32_t)v[SHMX_JNI_CFG_ALLOWED_UID];
    cfg->spin_iterations = (uint32_t)v[SHMX_JNI_CFG_SPIN];
    cfg->yield_iterations = (uint32_t)v[SHMX_JNI_CFG_YIELD];
    cfg->max_message = (uint32_t)v[SHMX_JNI_CFG_MAX_MESSAGE];
    cfg->window_bytes = (uint32_t)v[SHMX_JNI_CFG_WINDOW_BYTES];
    cfg->extent_bytes = (uint32_t)v[SHMX_JNI_CFG_EXTENT_BYTES];
    cfg->pool_max_bytes = (uint64_t)(uint32_t)v[SHMX_JNI_CFG_POOL_MAX_LOW] |
                          (uint64_t)(uint32_t)v[SHMX_JNI_CFG_POOL_MAX_HIGH] << 32;
    cfg->liveness_ms = (uint32_t)v[SHMX_JNI_CFG_LIVENESS_MS];
    return 0;
}

int shmx_jni_config_to_java(JNIEnv *env, const shmx_config_t *cfg, jintArray arr) {
    if (arr == NULL) {
        shmx_jni_throw_npe(env, "configuration array is null");
        return -1;
    }
    if ((*env)->GetArrayLength(env, arr) < SHMX_JNI_CFG_LENGTH) {
        shmx_jni_throw_iae(env, "configuration array is too short");
        return -1;
    }
    jint v[SHMX_JNI_CFG_LENGTH];
    v[SHMX_JNI_CFG_MAX_CHANNELS] = (jint)cfg->max_channels;
    v[SHMX_JNI_CFG_RING_BYTES] = (jint)cfg->ring_bytes;
    v[SHMX_JNI_CFG_INLINE_MAX] = (jint)cfg->inline_max;
    v[SHMX_JNI_CFG_MAX_PAYLOAD] = (jint)cfg->max_payload;
    v[SHMX_JNI_CFG_CLASS_COUNT] = (jint)cfg->class_count;
    for (unsigned i = 0; i < SHMX_MAX_CLASSES; i++) {
        v[SHMX_JNI_CFG_CLASS_SIZE + i] = (jint)cfg->class_size[i];
        v[SHMX_JNI_CFG_CLASS_SLOTS + i] = (jint)cfg->class_slots[i];
    }
    v[SHMX_JNI_CFG_SEGMENT_MODE] = (jint)cfg->segment_mode;
    v[SHMX_JNI_CFG_TRANSPORTS] = (jint)cfg->transports;
    v[SHMX_JNI_CFG_ALLOWED_UID] = (jint)cfg->allowed_uid;
    v[SHMX_JNI_CFG_SPIN] = (jint)cfg->spin_iterations;
    v[SHMX_JNI_CFG_YIELD] = (jint)cfg->yield_iterations;
    v[SHMX_JNI_CFG_MAX_MESSAGE] = (jint)cfg->max_message;
    v[SHMX_JNI_CFG_WINDOW_BYTES] = (jint)cfg->window_bytes;
    v[SHMX_JNI_CFG_EXTENT_BYTES] = (jint)cfg->extent_bytes;
    v[SHMX_JNI_CFG_POOL_MAX_LOW] = (jint)(uint32_t)cfg->pool_max_bytes;
    v[SHMX_JNI_CFG_POOL_MAX_HIGH] = (jint)(uint32_t)(cfg->pool_max_bytes >> 32);
    v[SHMX_JNI_CFG_LIVENESS_MS] = (jint)cfg->liveness_ms;
    (*env)->SetIntArrayRegion(env, arr, 0, SHMX_JNI_CFG_LENGTH, v);
    return (*env)->ExceptionCheck(env) ? -1 : 0;
}

/* ---- natives without an object ------------------------------------------ */

/* Native.nativeVersion(): (major << 16) | (minor << 8) | patch of the headers this library was built with. */
static jint JNICALL jni_native_version(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED) {
    return (SHMX_VERSION_MAJOR << 16) | (SHMX_VERSION_MINOR << 8) | SHMX_VERSION_PATCH;
}

static jstring JNICALL jni_strerror(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jint code) {
    return (*env)->NewStringUTF(env, shmx_strerror((int)code));
}

static jstring JNICALL jni_crc32_implementation(JNIEnv *env, jclass cls SHMX_JNI_UNUSED) {
    return (*env)->NewStringUTF(env, shmx_crc32_implementation());
}

/*
 * Native.crc32Array(crc, array, off, len): bounds are checked in Java. The
 * array is pinned (critical section) only while the CRC runs: no JNI call,
 * no blocking inside.
 */
static jint JNICALL jni_crc32_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jint crc, jbyteArray arr, jint off,
                                    jint len) {
    if (len <= 0) {
        return crc;
    }
    uint8_t *p = (*env)->GetPrimitiveArrayCritical(env, arr, NULL);
    if (p == NULL) {
        return crc; /* OutOfMemoryError pending */
    }
    uint32_t r = shmx_crc32((uint32_t)crc, p + off, (size_t)len);
    (*env)->ReleasePrimitiveArrayCritical(env, arr, p, JNI_ABORT);
    return (jint)r;
}

/* Native.crc32Address(crc, address, len): CRC over native memory (a direct buffer's, resolved by the caller). */
static jint JNICALL jni_crc32_address(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jint crc, jlong addr,
                                      jlong len) {
    if (len <= 0) {
        return crc;
    }
    return (jint)shmx_crc32((uint32_t)crc, SHMX_JNI_PTR(const void, addr), (size_t)len);
}

/* Native.bufferAddress(directBuffer): the buffer's base address, or 0 if it is not direct. Cold path. */
static jlong JNICALL jni_buffer_address(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jobject buf) {
    if (buf == NULL) {
        shmx_jni_throw_npe(env, "buffer is null");
        return 0;
    }
    return SHMX_JNI_LONG((*env)->GetDirectBufferAddress(env, buf));
}

/*
 * Native.wrapAddress(address, len): a direct ByteBuffer over memory the
 * library handed out that lies in no listed region (cold fallback; the Java
 * side counts how often it is needed).
 */
static jobject JNICALL jni_wrap_address(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong addr, jint len) {
    if (addr == 0 || len < 0) {
        shmx_jni_throw_iae(env, "wrapAddress: null address or negative length");
        return NULL;
    }
    return (*env)->NewDirectByteBuffer(env, SHMX_JNI_PTR(void, addr), (jlong)len);
}

static void JNICALL jni_config_default(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jintArray arr) {
    shmx_config_t cfg;
    shmx_config_default(&cfg);
    shmx_jni_config_to_java(env, &cfg, arr);
}

static jint JNICALL jni_config_validate(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jintArray arr) {
    shmx_config_t cfg;
    if (shmx_jni_config_from_java(env, arr, &cfg) < 0) {
        return -SHMX_EINVAL;
    }
    return shmx_config_validate(&cfg);
}

static jstring JNICALL jni_config_problem(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jintArray arr) {
    shmx_config_t cfg;
    if (shmx_jni_config_from_java(env, arr, &cfg) < 0) {
        return NULL;
    }
    const char *p = shmx_config_problem(&cfg);
    return (*env)->NewStringUTF(env, p ? p : "");
}

static jlong JNICALL jni_config_segment_bytes(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jintArray arr) {
    shmx_config_t cfg;
    if (shmx_jni_config_from_java(env, arr, &cfg) < 0) {
        return 0;
    }
    return (jlong)shmx_config_segment_bytes(&cfg);
}

/* Native.socketPath(name): where host @name listens. Throws on a bad name. */
static jstring JNICALL jni_socket_path(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring name) {
    if (name == NULL) {
        shmx_jni_throw_npe(env, "name is null");
        return NULL;
    }
    const char *cname = (*env)->GetStringUTFChars(env, name, NULL);
    if (cname == NULL) {
        return NULL;
    }
    char buf[512];
    int rc = shmx_socket_path(cname, buf, sizeof(buf));
    jstring out = NULL;
    if (rc < 0) {
        char op[160];
        snprintf(op, sizeof(op), "shmx_socket_path(\"%.64s\")", cname);
        shmx_jni_throw(env, rc, op, NULL);
    } else {
        out = (*env)->NewStringUTF(env, buf);
    }
    (*env)->ReleaseStringUTFChars(env, name, cname);
    return out;
}

const JNINativeMethod shmx_jni_misc_methods[] = {
    {"nativeVersion", "()I", (void *)jni_native_version},
    {"strerror", "(I)Ljava/lang/String;", (void *)jni_strerror},
    {"crc32Implementation", "()Ljava/lang/String;", (void *)jni_crc32_implementation},
    {"crc32Array", "(I[BII)I", (void *)jni_crc32_array},
    {"crc32Address", "(IJJ)I", (void *)jni_crc32_address},
    {"bufferAddress", "(Ljava/nio/ByteBuffer;)J", (void *)jni_buffer_address},
    {"wrapAddress", "(JI)Ljava/nio/ByteBuffer;", (void *)jni_wrap_address},
    {"configDefault", "([I)V", (void *)jni_config_default},
    {"configValidate", "([I)I", (void *)jni_config_validate},
    {"configProblem", "([I)Ljava/lang/String;", (void *)jni_config_problem},
    {"configSegmentBytes", "([I)J", (void *)jni_config_segment_bytes},
    {"socketPath", "(Ljava/lang/String;)Ljava/lang/String;", (void *)jni_socket_path},
};
const int shmx_jni_misc_method_count = (int)(sizeof(shmx_jni_misc_methods) / sizeof(shmx_jni_misc_methods[0]));

/* ---- load and unload ------------------------------------------------------ */

static jclass global_class(JNIEnv *env, const char *name) {
    jclass local = (*env)->FindClass(env, name);
    if (local == NULL) {
        return NULL; /* NoClassDefFoundError pending */
    }
    jclass global = (*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    return global;
}

static int register_table(JNIEnv *env, jclass cls, const JNINativeMethod *methods, int count) {
    return (*env)->RegisterNatives(env, cls, methods, count) == JNI_OK ? 0 : -1;
}

static void release_globals(JNIEnv *env) {
    if (g_errors_class != NULL) {
        (*env)->DeleteGlobalRef(env, g_errors_class);
        g_errors_class = NULL;
    }
    if (g_iae_class != NULL) {
        (*env)->DeleteGlobalRef(env, g_iae_class);
        g_iae_class = NULL;
    }
    if (g_npe_class != NULL) {
        (*env)->DeleteGlobalRef(env, g_npe_class);
        g_npe_class = NULL;
    }
    g_errors_new = NULL;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved SHMX_JNI_UNUSED) {
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) {
        return JNI_ERR;
    }
    g_errors_class = global_class(env, SHMX_JNI_ERRORS_CLASS);
    g_iae_class = global_class(env, "java/lang/IllegalArgumentException");
    g_npe_class = global_class(env, "java/lang/NullPointerException");
    if (g_errors_class == NULL || g_iae_class == NULL || g_npe_class == NULL) {
        release_globals(env);
        return JNI_ERR;
    }
    g_errors_new = (*env)->GetStaticMethodID(env, g_errors_class, "newException",
                                             "(ILjava/lang/String;Ljava/lang/String;)Ljava/lang/Throwable;");
    if (g_errors_new == NULL) {
        release_globals(env);
        return JNI_ERR;
    }
    jclass native_class = (*env)->FindClass(env, SHMX_JNI_NATIVE_CLASS);
    if (native_class == NULL) {
        release_globals(env);
        return JNI_ERR;
    }
    int rc = register_table(env, native_class, shmx_jni_misc_methods, shmx_jni_misc_method_count);
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_peer_methods, shmx_jni_peer_method_count);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_channel_methods, shmx_jni_channel_method_count);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_stream_methods, shmx_jni_stream_method_count);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_spawn_methods, shmx_jni_spawn_method_count);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_names_methods, shmx_jni_names_method_count);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_liveness_methods, shmx_jni_liveness_method_count);
    }
    if (rc == 0) {
        rc = shmx_jni_liveness_load(vm, env);
    }
    if (rc == 0) {
        rc = register_table(env, native_class, shmx_jni_events_methods, shmx_jni_events_method_count);
    }
    (*env)->DeleteLocalRef(env, native_class);
    if (rc != 0) {
        release_globals(env);
        return JNI_ERR; /* NoSuchMethodError pending: Native.java and this table disagree */
    }
    return JNI_VERSION_1_8;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM *vm, void *reserved SHMX_JNI_UNUSED) {
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) != JNI_OK) {
        return;
    }
    shmx_jni_liveness_unload(env);
    release_globals(env);
}
