/*
 * JNI glue for event-loop integration: a channel's pollable fd, arming,
 * waiting on one channel (Channel.awaitReadable), and the epoll set behind
 * io.shmx.ChannelPoller. Returns codes like the channel glue; never throws.
 * The waits block in the kernel (poll, epoll_wait) with no JNI call inside.
 */
#include "shmx_jni.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define CH(h) SHMX_JNI_PTR(shmx_channel_t, h)
#define POLLER_MAX_EVENTS 64
#define WAKE_TOKEN (-1) /* the poller's own eventfd, never a channel */

/* A ChannelPoller: an epoll set of channels' fds plus an eventfd for wakeup(). */
typedef struct poller {
    int ep;
    int wake;
} poller_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static jint JNICALL jni_channel_event_fd(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_fd(CH(ch));
}

static jint JNICALL jni_channel_arm(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_arm(CH(ch));
}

/*
 * Native.channelAwait(ch, timeoutNs): arm, then sleep on the fd (ppoll, ns
 * precision; < 0: no limit). 1 if something may be received, 0 on timeout,
 * or -code.
 */
static jint JNICALL jni_channel_await(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                      jlong timeout_ns) {
    int fd = shmx_channel_fd(CH(ch));
    if (fd < 0) return fd;
    int rc = shmx_channel_arm(CH(ch));
    if (rc != 0) return rc;
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns; /* no overflow for < ~290 years */
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline != INT64_MAX) {
            int64_t left = deadline - now_ns();
            if (left < 0) left = 0;
            ts.tv_sec = left / 1000000000LL;
            ts.tv_nsec = left % 1000000000LL;
            tsp = &ts;
        }
        int n = ppoll(&p, 1, tsp, NULL);
        if (n >= 0) return n > 0;
        if (errno != EINTR) return -errno;
    }
}

static jlong JNICALL jni_poller_create(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED) {
    poller_t *p = malloc(sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = p->ep < 0 || p->wake < 0 ? -errno : 0;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(int64_t)WAKE_TOKEN};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake, &ev) != 0) rc = -errno;
    }
    if (rc < 0) {
        if (p->ep >= 0) close(p->ep);
        if (p->wake >= 0) close(p->wake);
        free(p);
        return rc;
    }
    return SHMX_JNI_LONG(p);
}

/* Native.pollerAdd(poller, fd, token): watch @fd for readability, reported as @token (>= 0). */
static jint JNICALL jni_poller_add(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong h, jint fd,
                                   jint token) {
    poller_t *p = SHMX_JNI_PTR(poller_t, h);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(uint32_t)token};
    return epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static jint JNICALL jni_poller_remove(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong h, jint fd) {
    poller_t *p = SHMX_JNI_PTR(poller_t, h);
    return epoll_ctl(p->ep, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : -errno;
}

/*
 * Native.pollerWait(poller, tokens, timeoutNs): wait (ms granularity, rounded
 * up; < 0: no limit) and write the tokens of ready fds into @tokens. Returns
 * their count (0: timeout or wakeup()) or -errno.
 */
static jint JNICALL jni_poller_wait(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong h, jintArray tokens,
                                    jlong timeout_ns) {
    poller_t *p = SHMX_JNI_PTR(poller_t, h);
    struct epoll_event evs[POLLER_MAX_EVENTS];
    jint out[POLLER_MAX_EVENTS];
    jsize cap = (*env)->GetArrayLength(env, tokens);
    int max = cap < POLLER_MAX_EVENTS ? (int)cap : POLLER_MAX_EVENTS;
    if (max < 1) return -EINVAL;
    int ms = timeout_ns < 0 ? -1 : timeout_ns / 1000000 >= INT32_MAX ? INT32_MAX : (int)((timeout_ns + 999999) / 1000000);
    int n;
    do {
        n = epoll_wait(p->ep, evs, max, ms);
    } while (n < 0 && errno == EINTR && ms < 0);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int k = 0;
    for (int i = 0; i < n; i++) {
        jint t = (jint)(int64_t)evs[i].data.u64;
        if (t == WAKE_TOKEN) {
            uint64_t v;
            (void)!read(p->wake, &v, sizeof v); /* zero it: one wakeup() per wake */
            continue;
        }
        out[k++] = t;
    }
    if (k > 0) (*env)->SetIntArrayRegion(env, tokens, 0, k, out);
    return k;
}

static void JNICALL jni_poller_wakeup(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong h) {
    poller_t *p = SHMX_JNI_PTR(poller_t, h);
    uint64_t one = 1;
    (void)!write(p->wake, &one, sizeof one); /* EAGAIN: already woken */
}

static void JNICALL jni_poller_close(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong h) {
    poller_t *p = SHMX_JNI_PTR(poller_t, h);
    close(p->ep);
    close(p->wake);
    free(p);
}

const JNINativeMethod shmx_jni_events_methods[] = {
    {"channelEventFd", "(J)I", (void *)jni_channel_event_fd},
    {"channelArm", "(J)I", (void *)jni_channel_arm},
    {"channelAwait", "(JJ)I", (void *)jni_channel_await},
    {"pollerCreate", "()J", (void *)jni_poller_create},
    {"pollerAdd", "(JII)I", (void *)jni_poller_add},
    {"pollerRemove", "(JI)I", (void *)jni_poller_remove},
    {"pollerWait", "(J[IJ)I", (void *)jni_poller_wait},
    {"pollerWakeup", "(J)V", (void *)jni_poller_wakeup},
    {"pollerClose", "(J)V", (void *)jni_poller_close},
};
const int shmx_jni_events_method_count = (int)(sizeof(shmx_jni_events_methods) / sizeof(shmx_jni_events_methods[0]));
