/*
 * JNI glue for liveness: the host's peer listener, the library's log
 * messages, a channel's epoch, a host's transports and its pool counts.
 *
 * Both callbacks (shmx_peer_listener_fn, shmx_log_fn) can run on a thread the
 * JVM has never seen: the host's service thread ("shmx-host"). Such a thread
 * is attached once, as a daemon (it must never keep the JVM from exiting),
 * under its own name, and stays attached for later callbacks. It is detached
 * by a thread-specific-data destructor when it exits (shmx_host_destroy joins
 * it): every Host has its own service thread, and a thread that ends while
 * still attached would leave a dead java.lang.Thread behind per closed Host.
 * Threads that were already attached (a Java thread calling into the library)
 * are used as they are and never detached here.
 *
 * Log messages: JNI_OnLoad routes shmx_log to System.Logger "io.shmx" through
 * io.shmx.internal.NativeLog, so that a JVM sees each message once, in its own
 * logging, instead of the C default's stderr line; JNI_OnUnload restores the
 * default.
 */
#include "shmx_jni.h"

#include <pthread.h>
#include <stdlib.h>

#include "host_internal.h"
#include "pool.h"

#define SHMX_JNI_HOST_CLASS "io/shmx/Host"
#define SHMX_JNI_LOG_CLASS "io/shmx/internal/NativeLog"

/* Written once in shmx_jni_liveness_load (JNI_OnLoad), before any callback can be installed. */
static JavaVM *g_vm;
static jmethodID g_host_peer_event; /* Host.peerEvent(IIIIIIIJ)V */
static jclass g_log_class;          /* io.shmx.internal.NativeLog */
static jmethodID g_log_method;      /* static void log(int level, String message) */
static pthread_key_t g_detach_key;
static int g_have_detach_key;

/* The peer listener's state: what the trampoline calls. Lives until the host is destroyed. */
typedef struct shmx_jni_hook {
    jobject target; /* global ref to the io.shmx.Host */
} shmx_jni_hook_t;

static void detach_at_exit(void *vm) {
    /* The thread is ending: its Java twin must end too. */
    (*(JavaVM *)vm)->DetachCurrentThread((JavaVM *)vm);
}

/* The calling thread's JNIEnv, attaching it (as a daemon) the first time; NULL if that fails. */
static JNIEnv *thread_env(void) {
    JNIEnv *env = NULL;
    jint rc = (*g_vm)->GetEnv(g_vm, (void **)&env, JNI_VERSION_1_8);
    if (rc == JNI_OK) {
        return env;
    }
    if (rc != JNI_EDETACHED) {
        return NULL;
    }
    char name[16] = "shmx-native";
    (void)pthread_getname_np(pthread_self(), name, sizeof(name)); /* keeps the default if it fails */
    JavaVMAttachArgs args = {.version = JNI_VERSION_1_8, .name = name, .group = NULL};
    if ((*g_vm)->AttachCurrentThreadAsDaemon(g_vm, (void **)&env, &args) != JNI_OK) {
        return NULL;
    }
    if (g_have_detach_key) {
        (void)pthread_setspecific(g_detach_key, g_vm); /* without it: stays attached until the JVM ends */
    }
    return env;
}

/* shmx_peer_listener_fn: hand the event to Host.peerEvent, which calls the Java listener. */
static void peer_trampoline(void *arg, const shmx_peer_event_t *ev) {
    shmx_jni_hook_t *hook = arg;
    JNIEnv *env = thread_env();
    if (env == NULL) {
        return; /* cannot reach Java: the event is lost, the host goes on */
    }
    (*env)->CallVoidMethod(env, hook->target, g_host_peer_event, (jint)ev->peer, (jint)ev->epoch,
                           (jint)ev->reason, (jint)ev->pid, (jint)ev->exit_status, (jint)ev->reclaimed,
                           (jint)ev->violation, (jlong)ev->noticed_ns);
    /* peerEvent catches what the listener throws; this is for what escapes it (e.g. an Error while logging). */
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionClear(env);
    }
}

/* shmx_log_fn: System.Logger through NativeLog.log (called with the library's log lock held). */
static void log_to_java(void *arg SHMX_JNI_UNUSED, int level, const char *message) {
    JNIEnv *env = thread_env();
    if (env == NULL) {
        return;
    }
    if ((*env)->PushLocalFrame(env, 4) != 0) {
        (*env)->ExceptionClear(env);
        return;
    }
    jstring text = (*env)->NewStringUTF(env, message);
    if (text != NULL) {
        (*env)->CallStaticVoidMethod(env, g_log_class, g_log_method, (jint)level, text);
    }
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionClear(env); /* a log line is not worth an exception in the caller */
    }
    (*env)->PopLocalFrame(env, NULL);
}

/* Native.hostListen(host, target): install the trampoline; returns its state or throws. */
static jlong JNICALL jni_host_listen(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host, jobject target) {
    if (target == NULL) {
        shmx_jni_throw_npe(env, "listener target is null");
        return 0;
    }
    shmx_jni_hook_t *hook = calloc(1, sizeof(*hook));
    if (hook == NULL) {
        shmx_jni_throw(env, -12 /* ENOMEM */, "shmx_host_set_peer_listener", NULL);
        return 0;
    }
    hook->target = (*env)->NewGlobalRef(env, target);
    if (hook->target == NULL) {
        free(hook);
        return 0; /* OutOfMemoryError pending */
    }
    int rc = shmx_host_set_peer_listener(SHMX_JNI_PTR(shmx_host_t, host), peer_trampoline, hook);
    if (rc < 0) {
        (*env)->DeleteGlobalRef(env, hook->target);
        free(hook);
        shmx_jni_throw(env, rc, "shmx_host_set_peer_listener", NULL);
        return 0;
    }
    return SHMX_JNI_LONG(hook);
}

/* Native.hostListenFree(hook): after shmx_host_destroy, when no callback can run any more. */
static void JNICALL jni_host_listen_free(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong h) {
    shmx_jni_hook_t *hook = SHMX_JNI_PTR(shmx_jni_hook_t, h);
    if (hook == NULL) {
        return;
    }
    (*env)->DeleteGlobalRef(env, hook->target);
    free(hook);
}

static jint JNICALL jni_channel_epoch(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return (jint)shmx_channel_epoch(SHMX_JNI_PTR(shmx_channel_t, ch));
}

static jint JNICALL jni_host_transports(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong host) {
    return (jint)shmx_host_transports(SHMX_JNI_PTR(shmx_host_t, host));
}

/* Native.hostPoolStats(host, out): [0] classes, then free, claimed, sent, total per class. A diagnostic. */
static jint JNICALL jni_host_pool_stats(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host, jintArray out) {
    enum { LEN = 1 + 4 * SHMX_MAX_CLASSES };
    if (out == NULL || (*env)->GetArrayLength(env, out) < LEN) {
        shmx_jni_throw_iae(env, "pool stats array is null or too short");
        return 0;
    }
    shmx_host_t *h = SHMX_JNI_PTR(shmx_host_t, host);
    shmx_pool_stats_t st = {0};
    if (shmx_host_transports(h) & SHMX_TRANSPORT_SHM) {
        shmx_pool_stats(shmx_host_pool(h), &st); /* a uds-only host has no pool */
    }
    jint v[LEN] = {0};
    v[0] = (jint)st.class_count;
    for (uint32_t c = 0; c < st.class_count && c < SHMX_MAX_CLASSES; c++) {
        v[1 + 4 * c] = (jint)st.free_slots[c];
        v[2 + 4 * c] = (jint)st.claimed_slots[c];
        v[3 + 4 * c] = (jint)st.sent_slots[c];
        v[4 + 4 * c] = (jint)st.total_slots[c];
    }
    (*env)->SetIntArrayRegion(env, out, 0, LEN, v);
    return (jint)st.class_count;
}

const JNINativeMethod shmx_jni_liveness_methods[] = {
    {"channelEpoch", "(J)I", (void *)jni_channel_epoch},
    {"hostTransports", "(J)I", (void *)jni_host_transports},
    {"hostListen", "(JLjava/lang/Object;)J", (void *)jni_host_listen},
    {"hostListenFree", "(J)V", (void *)jni_host_listen_free},
    {"hostPoolStats", "(J[I)I", (void *)jni_host_pool_stats},
};
const int shmx_jni_liveness_method_count =
    (int)(sizeof(shmx_jni_liveness_methods) / sizeof(shmx_jni_liveness_methods[0]));

int shmx_jni_liveness_load(JavaVM *vm, JNIEnv *env) {
    g_vm = vm;
    jclass host = (*env)->FindClass(env, SHMX_JNI_HOST_CLASS);
    if (host == NULL) {
        return -1;
    }
    g_host_peer_event = (*env)->GetMethodID(env, host, "peerEvent", "(IIIIIIIJ)V");
    (*env)->DeleteLocalRef(env, host);
    jclass log = (*env)->FindClass(env, SHMX_JNI_LOG_CLASS);
    if (g_host_peer_event == NULL || log == NULL) {
        return -1;
    }
    g_log_method = (*env)->GetStaticMethodID(env, log, "log", "(ILjava/lang/String;)V");
    g_log_class = g_log_method != NULL ? (*env)->NewGlobalRef(env, log) : NULL;
    (*env)->DeleteLocalRef(env, log);
    if (g_log_class == NULL) {
        return -1;
    }
    g_have_detach_key = pthread_key_create(&g_detach_key, detach_at_exit) == 0;
    shmx_log_set_handler(log_to_java, NULL);
    return 0;
}

void shmx_jni_liveness_unload(JNIEnv *env) {
    shmx_log_set_default(); /* waits for a message in flight (the log lock) */
    if (g_log_class != NULL) {
        (*env)->DeleteGlobalRef(env, g_log_class);
        g_log_class = NULL;
    }
}
