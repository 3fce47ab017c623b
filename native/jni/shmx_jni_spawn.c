/*
 * JNI glue for spawned guests: Host.spawn (shmx_host_spawn, which
 * ProcessBuilder cannot replace: it cannot hand a descriptor to the child),
 * the child's handle, and Guest.attachTicket. All cold: failures to start are
 * thrown as typed exceptions; waits and signals return codes.
 */
#include "shmx_jni.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Java String[] as a NULL-terminated char *[] of modified-UTF-8 copies. */
typedef struct strings {
    jsize n;
    char **utf; /* [n + 1], NULL-terminated */
} strings_t;

static void free_strings(strings_t *s) {
    for (jsize i = 0; s->utf != NULL && i < s->n; i++) free(s->utf[i]);
    free(s->utf);
    s->utf = NULL;
    s->n = 0;
}

/*
 * Copied one by one, each local reference dropped at once: an environment
 * may hold more entries than a native frame's local references.
 * Returns 0, or -1 with an exception pending (null element, out of memory).
 */
static int get_strings(JNIEnv *env, jobjectArray arr, const char *what, strings_t *s) {
    jsize n = (*env)->GetArrayLength(env, arr);
    s->n = n;
    s->utf = calloc((size_t)n + 1, sizeof *s->utf);
    if (s->utf == NULL) {
        shmx_jni_throw(env, -ENOMEM, what, NULL);
        return -1;
    }
    for (jsize i = 0; i < n; i++) {
        jstring str = (jstring)(*env)->GetObjectArrayElement(env, arr, i);
        if (str == NULL) {
            free_strings(s);
            shmx_jni_throw_npe(env, what);
            return -1;
        }
        const char *utf = (*env)->GetStringUTFChars(env, str, NULL);
        if (utf != NULL) {
            s->utf[i] = strdup(utf);
            (*env)->ReleaseStringUTFChars(env, str, utf);
        }
        (*env)->DeleteLocalRef(env, str);
        if (s->utf[i] == NULL) {
            free_strings(s);
            if (!(*env)->ExceptionCheck(env)) shmx_jni_throw(env, -ENOMEM, what, NULL);
            return -1;
        }
    }
    return 0;
}

/*
 * Native.hostSpawn(host, argv, envp, cwd, channelOut): start argv[0] (searched
 * in PATH without a '/') as a guest; envp null inherits the process's
 * environment, cwd null the working directory. Stores the host's channel
 * handle in channelOut[0] and returns the child handle (> 0), or throws.
 */
static jlong JNICALL jni_host_spawn(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong host, jobjectArray argv,
                                    jobjectArray envp, jstring cwd, jlongArray channel_out) {
    if (argv == NULL || channel_out == NULL) {
        shmx_jni_throw_npe(env, argv == NULL ? "command is null" : "channel array is null");
        return 0;
    }
    if ((*env)->GetArrayLength(env, argv) < 1 || (*env)->GetArrayLength(env, channel_out) < 1) {
        shmx_jni_throw_iae(env, "the command is empty");
        return 0;
    }
    strings_t args = {0}, vars = {0};
    const char *ccwd = NULL;
    if (get_strings(env, argv, "a command word is null", &args) < 0) return 0;
    if (envp != NULL && get_strings(env, envp, "an environment entry is null", &vars) < 0) {
        free_strings(&args);
        return 0;
    }
    if (cwd != NULL && (ccwd = (*env)->GetStringUTFChars(env, cwd, NULL)) == NULL) {
        free_strings(&vars);
        free_strings(&args);
        return 0;
    }
    shmx_spawn_options_t opts = {.envp = envp != NULL ? (const char *const *)vars.utf : NULL, .cwd = ccwd, .flags = 0};
    shmx_channel_t *ch = NULL;
    shmx_child_t *child = NULL;
    int rc = shmx_host_spawn(SHMX_JNI_PTR(shmx_host_t, host), args.utf[0], (const char *const *)args.utf, &opts, &ch, &child);
    if (rc < 0) {
        char op[300];
        snprintf(op, sizeof(op), "shmx_host_spawn(\"%.200s\")", args.utf[0]);
        shmx_jni_throw(env, rc, op, NULL);
    } else {
        jlong h = SHMX_JNI_LONG(ch);
        (*env)->SetLongArrayRegion(env, channel_out, 0, 1, &h);
    }
    if (ccwd != NULL) (*env)->ReleaseStringUTFChars(env, cwd, ccwd);
    free_strings(&vars);
    free_strings(&args);
    return rc < 0 ? 0 : SHMX_JNI_LONG(child);
}

static jlong JNICALL jni_child_pid(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong child) {
    return (jlong)shmx_child_pid(SHMX_JNI_PTR(shmx_child_t, child));
}

/*
 * Native.childWait(child, timeoutNanos): the wait status (>= 0, as waitpid
 * reports it) once the child has exited and was reaped, or -code
 * (-ETIMEDOUT while it runs, -ECHILD if someone else reaped it).
 */
static jlong JNICALL jni_child_wait(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong child,
                                    jlong timeout_ns) {
    int status = 0;
    int rc = shmx_child_wait(SHMX_JNI_PTR(shmx_child_t, child), (int64_t)timeout_ns, &status);
    return rc < 0 ? (jlong)rc : (jlong)(uint32_t)status;
}

static jint JNICALL jni_child_kill(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong child, jint sig) {
    return shmx_child_kill(SHMX_JNI_PTR(shmx_child_t, child), (int)sig);
}

static void JNICALL jni_child_free(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong child) {
    shmx_child_free(SHMX_JNI_PTR(shmx_child_t, child));
}

/*
 * Native.guestAttachTicket(ticket, timeoutNanos): attach by a spawn ticket
 * (null: SHMX_TICKET from the environment). The guest handle, or throws.
 */
static jlong JNICALL jni_guest_attach_ticket(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jstring ticket,
                                             jlong timeout_ns) {
    const char *t = NULL;
    if (ticket != NULL && (t = (*env)->GetStringUTFChars(env, ticket, NULL)) == NULL) return 0;
    shmx_guest_t *guest = NULL;
    int rc = shmx_guest_attach_ticket(t, (int64_t)timeout_ns, &guest);
    if (t != NULL) (*env)->ReleaseStringUTFChars(env, ticket, t);
    if (rc < 0) {
        shmx_jni_throw(env, rc, "shmx_guest_attach_ticket", rc == -SHMX_EINVAL ? "no valid SHMX_TICKET" : NULL);
        return 0;
    }
    return SHMX_JNI_LONG(guest);
}

const JNINativeMethod shmx_jni_spawn_methods[] = {
    {"hostSpawn", "(J[Ljava/lang/String;[Ljava/lang/String;Ljava/lang/String;[J)J", (void *)jni_host_spawn},
    {"childPid", "(J)J", (void *)jni_child_pid},
    {"childWait", "(JJ)J", (void *)jni_child_wait},
    {"childKill", "(JI)I", (void *)jni_child_kill},
    {"childFree", "(J)V", (void *)jni_child_free},
    {"guestAttachTicket", "(Ljava/lang/String;J)J", (void *)jni_guest_attach_ticket},
};
const int shmx_jni_spawn_method_count = (int)(sizeof(shmx_jni_spawn_methods) / sizeof(shmx_jni_spawn_methods[0]));
