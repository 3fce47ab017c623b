/*
 * JNI glue for hosts and guests: the cold paths. Failures are thrown from
 * here as the typed Java exceptions (through io.shmx.internal.Errors), with
 * the operation, the name and, for a rejected configuration, the field
 * shmx_config_problem() names.
 */
#include "shmx_jni.h"

#include <errno.h>
#include <stdio.h>

static const char *transport_name(jint t) {
    switch (t) {
    case SHMX_TRANSPORT_SHM:
        return "shm";
    case SHMX_TRANSPORT_UDS:
        return "uds";
    case SHMX_TRANSPORT_AUTO:
        return "auto";
    default:
        return "?";
    }
}

/*
 * Native.hostCreate(name, config): config null uses the library defaults.
 * Returns the shmx_host_t handle (> 0) or throws.
 */
static jlong JNICALL jni_host_create(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring name, jintArray arr) {
    if (name == NULL) {
        shmx_jni_throw_npe(env, "name is null");
        return 0;
    }
    shmx_config_t cfg;
    if (arr != NULL && shmx_jni_config_from_java(env, arr, &cfg) < 0) {
        return 0;
    }
    const char *cname = (*env)->GetStringUTFChars(env, name, NULL);
    if (cname == NULL) {
        return 0;
    }
    shmx_host_t *host = NULL;
    int rc = shmx_host_create(cname, arr != NULL ? &cfg : NULL, &host);
    if (rc < 0) {
        char op[160];
        snprintf(op, sizeof(op), "shmx_host_create(\"%.64s\")", cname);
        const char *detail = NULL;
        if (rc == -SHMX_ECONFIG && arr != NULL) {
            detail = shmx_config_problem(&cfg);
        }
        shmx_jni_throw(env, rc, op, detail);
        host = NULL;
    }
    (*env)->ReleaseStringUTFChars(env, name, cname);
    return SHMX_JNI_LONG(host);
}

/*
 * Native.hostAccept(host, timeoutNs): the new channel's handle, 0 when no
 * guest came within the timeout (-ETIMEDOUT), or throws (refused guest,
 * full, transport, protocol, system error; the host stays usable).
 */
static jlong JNICALL jni_host_accept(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host, jlong timeout_ns) {
    shmx_channel_t *ch = NULL;
    int rc = shmx_host_accept(SHMX_JNI_PTR(shmx_host_t, host), (int64_t)timeout_ns, &ch);
    if (rc == -ETIMEDOUT) {
        return 0;
    }
    if (rc < 0) {
        shmx_jni_throw(env, rc, "shmx_host_accept", NULL);
        return 0;
    }
    return SHMX_JNI_LONG(ch);
}

static jstring JNICALL jni_host_socket_path(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host) {
    const char *p = shmx_host_socket_path(SHMX_JNI_PTR(shmx_host_t, host));
    return (*env)->NewStringUTF(env, p ? p : "");
}

static jlong JNICALL jni_host_mapped_bytes(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong host) {
    return (jlong)shmx_host_mapped_bytes(SHMX_JNI_PTR(shmx_host_t, host));
}

static void JNICALL jni_host_config(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host, jintArray arr) {
    const shmx_config_t *cfg = shmx_host_config(SHMX_JNI_PTR(shmx_host_t, host));
    if (cfg != NULL) {
        shmx_jni_config_to_java(env, cfg, arr);
    }
}

static void JNICALL jni_host_destroy(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong host) {
    shmx_host_destroy(SHMX_JNI_PTR(shmx_host_t, host));
}

/*
 * Native.guestConnect(name, transport, timeoutNs): the shmx_guest_t handle
 * (> 0) or throws (no host, refused, segment validation, ...).
 */
static jlong JNICALL jni_guest_connect(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring name, jint transport,
                                       jlong timeout_ns) {
    if (name == NULL) {
        shmx_jni_throw_npe(env, "name is null");
        return 0;
    }
    const char *cname = (*env)->GetStringUTFChars(env, name, NULL);
    if (cname == NULL) {
        return 0;
    }
    shmx_guest_t *guest = NULL;
    int rc = shmx_guest_connect(cname, (uint32_t)transport, (int64_t)timeout_ns, &guest);
    if (rc < 0) {
        char op[200];
        snprintf(op, sizeof(op), "shmx_guest_connect(\"%.64s\", %s)", cname, transport_name(transport));
        shmx_jni_throw(env, rc, op, NULL);
        guest = NULL;
    }
    (*env)->ReleaseStringUTFChars(env, name, cname);
    return SHMX_JNI_LONG(guest);
}

static jlong JNICALL jni_guest_channel(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong guest) {
    return SHMX_JNI_LONG(shmx_guest_channel(SHMX_JNI_PTR(shmx_guest_t, guest)));
}

static jlong JNICALL jni_guest_mapped_bytes(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong guest) {
    return (jlong)shmx_guest_mapped_bytes(SHMX_JNI_PTR(shmx_guest_t, guest));
}

static void JNICALL jni_guest_close(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong guest) {
    shmx_guest_close(SHMX_JNI_PTR(shmx_guest_t, guest));
}

const JNINativeMethod shmx_jni_peer_methods[] = {
    {"hostCreate", "(Ljava/lang/String;[I)J", (void *)jni_host_create},
    {"hostAccept", "(JJ)J", (void *)jni_host_accept},
    {"hostSocketPath", "(J)Ljava/lang/String;", (void *)jni_host_socket_path},
    {"hostMappedBytes", "(J)J", (void *)jni_host_mapped_bytes},
    {"hostConfig", "(J[I)V", (void *)jni_host_config},
    {"hostDestroy", "(J)V", (void *)jni_host_destroy},
    {"guestConnect", "(Ljava/lang/String;IJ)J", (void *)jni_guest_connect},
    {"guestChannel", "(J)J", (void *)jni_guest_channel},
    {"guestMappedBytes", "(J)J", (void *)jni_guest_mapped_bytes},
    {"guestClose", "(J)V", (void *)jni_guest_close},
};
const int shmx_jni_peer_method_count = (int)(sizeof(shmx_jni_peer_methods) / sizeof(shmx_jni_peer_methods[0]));
