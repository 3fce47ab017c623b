/*
 * JNI glue for named resources (shmx/names.h): listing and cleaning this
 * user's hosts, for io.shmx.HostNames and the ls and clean tools. Cold
 * paths: failures are thrown here as the typed Java exceptions.
 *
 * An entry crosses as SHMX_JNI_NAMES_FIELDS strings in one flat String[],
 * which HostNames parses: no Java class or constructor has to be cached for
 * a call made once per command.
 */
#include "shmx_jni.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmx/names.h"

/* Strings per entry, in this order; mirrored by io.shmx.HostNames. */
enum {
    F_NAME,
    F_LIVE,         /* "1" or "0" */
    F_THIS_BOOT,    /* "1", "0" or "-1" (unknown) */
    F_PID,          /* decimal, "0" unknown */
    F_START,        /* CLOCK_REALTIME seconds, "0" unknown */
    F_SEGMENT_MODE, /* SHMX_SEGMENT_MEMFD or SHMX_SEGMENT_NAMED, decimal */
    F_LOCK_PATH,
    F_SOCKET_PATH,
    F_SEGMENT_PATH,
    SHMX_JNI_NAMES_FIELDS
};

/* Room for entries that appear between counting and filling. */
#define SLACK 64
#define ATTEMPTS 4

/*
 * A path is bytes; NewStringUTF wants modified UTF-8. Keep ASCII and
 * well-formed 2- and 3-byte sequences, show any other byte as '?'.
 */
static void to_modified_utf8(const char *in, char *out, size_t len) {
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    while (*s && o + 4 < len) {
        size_t k = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3 : 0;
        for (size_t i = 1; i < k; i++)
            if ((s[i] & 0xC0) != 0x80) k = 0;
        if (k == 0) {
            out[o++] = '?';
            s++;
            continue;
        }
        memcpy(out + o, s, k);
        o += k;
        s += k;
    }
    out[o] = '\0';
}

static int put(JNIEnv *env, jobjectArray arr, jsize at, const char *value) {
    char buf[SHMX_NAMES_PATH_MAX * 2];
    to_modified_utf8(value, buf, sizeof buf);
    jstring s = (*env)->NewStringUTF(env, buf);
    if (s == NULL) return -1; /* OutOfMemoryError pending */
    (*env)->SetObjectArrayElement(env, arr, at, s);
    (*env)->DeleteLocalRef(env, s);
    return (*env)->ExceptionCheck(env) ? -1 : 0;
}

static jobjectArray to_java(JNIEnv *env, const shmx_names_entry_t *v, int n) {
    jclass string_class = (*env)->FindClass(env, "java/lang/String");
    if (string_class == NULL) return NULL;
    jobjectArray arr = (*env)->NewObjectArray(env, (jsize)n * SHMX_JNI_NAMES_FIELDS, string_class, NULL);
    (*env)->DeleteLocalRef(env, string_class);
    if (arr == NULL) return NULL;
    for (int i = 0; i < n; i++) {
        const shmx_names_entry_t *e = &v[i];
        char live[4], boot[4], pid[24], start[24], mode[12];
        snprintf(live, sizeof live, "%d", e->live ? 1 : 0);
        snprintf(boot, sizeof boot, "%d", e->this_boot);
        snprintf(pid, sizeof pid, "%" PRId64, e->pid);
        snprintf(start, sizeof start, "%" PRId64, e->start_time);
        snprintf(mode, sizeof mode, "%u", (unsigned)e->segment_mode);
        const char *f[SHMX_JNI_NAMES_FIELDS] = {e->name, live, boot, pid, start, mode,
                                                e->lock_path, e->socket_path, e->segment_path};
        for (int k = 0; k < SHMX_JNI_NAMES_FIELDS; k++) {
            if (put(env, arr, (jsize)(i * SHMX_JNI_NAMES_FIELDS + k), f[k]) < 0) {
                (*env)->DeleteLocalRef(env, arr);
                return NULL;
            }
        }
    }
    return arr;
}

/* A nullable Java string as a C string (NULL for null); *@ok is 0 with an exception pending on failure. */
static const char *chars_or_null(JNIEnv *env, jstring s, int *ok) {
    *ok = 1;
    if (s == NULL) return NULL;
    const char *c = (*env)->GetStringUTFChars(env, s, NULL);
    if (c == NULL) *ok = 0;
    return c;
}

static void release_chars(JNIEnv *env, jstring s, const char *c) {
    if (s != NULL && c != NULL) (*env)->ReleaseStringUTFChars(env, s, c);
}

static void throw_names(JNIEnv *env, int rc, const char *fn, const char *sock, const char *shm) {
    char op[SHMX_NAMES_PATH_MAX * 2 + 64];
    snprintf(op, sizeof op, "%s(%s, %s)", fn, sock ? sock : "default socket directory", shm ? shm : "/dev/shm");
    shmx_jni_throw(env, rc, op, NULL);
}

/* Native.namesList(socketDir, shmDir): every entry, SHMX_JNI_NAMES_FIELDS strings each; null dirs mean the defaults. */
static jobjectArray JNICALL jni_names_list(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring jsock, jstring jshm) {
    int ok1, ok2 = 0;
    const char *sock = chars_or_null(env, jsock, &ok1);
    const char *shm = ok1 ? chars_or_null(env, jshm, &ok2) : NULL;
    jobjectArray out = NULL;
    if (ok1 && ok2) {
        shmx_names_entry_t *v = NULL;
        int rc = 0, cap = 0;
        /* Count, then fill; hosts may appear in between, so retry a few times if the room was short. */
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
            rc = shmx_names_list_in(sock, shm, NULL, 0);
            if (rc < 0) break;
            cap = rc + SLACK;
            free(v);
            v = malloc((size_t)cap * sizeof *v);
            if (v == NULL) {
                rc = -ENOMEM;
                break;
            }
            rc = shmx_names_list_in(sock, shm, v, cap);
            if (rc <= cap) break;
        }
        if (rc < 0) throw_names(env, rc, "shmx_names_list_in", sock, shm);
        else out = to_java(env, v, rc < cap ? rc : cap);
        free(v);
    }
    release_chars(env, jsock, sock);
    release_chars(env, jshm, shm);
    return out;
}

/* Native.namesClean(socketDir, shmDir): what was removed, SHMX_JNI_NAMES_FIELDS strings per name. */
static jobjectArray JNICALL jni_names_clean(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring jsock, jstring jshm) {
    int ok1, ok2 = 0;
    const char *sock = chars_or_null(env, jsock, &ok1);
    const char *shm = ok1 ? chars_or_null(env, jshm, &ok2) : NULL;
    jobjectArray out = NULL;
    if (ok1 && ok2) {
        /* Clean cannot be repeated to learn the count: room for everything listed now, and slack. */
        int rc = shmx_names_list_in(sock, shm, NULL, 0);
        int cap = rc < 0 ? SLACK : rc + SLACK;
        shmx_names_entry_t *v = malloc((size_t)cap * sizeof *v);
        if (v == NULL) rc = -ENOMEM;
        else rc = shmx_names_clean_in(sock, shm, v, cap);
        if (rc < 0) throw_names(env, rc, "shmx_names_clean_in", sock, shm);
        else out = to_java(env, v, rc < cap ? rc : cap);
        free(v);
    }
    release_chars(env, jsock, sock);
    release_chars(env, jshm, shm);
    return out;
}

const JNINativeMethod shmx_jni_names_methods[] = {
    {"namesList", "(Ljava/lang/String;Ljava/lang/String;)[Ljava/lang/String;", (void *)jni_names_list},
    {"namesClean", "(Ljava/lang/String;Ljava/lang/String;)[Ljava/lang/String;", (void *)jni_names_clean},
};
const int shmx_jni_names_method_count = (int)(sizeof(shmx_jni_names_methods) / sizeof(shmx_jni_names_methods[0]));
