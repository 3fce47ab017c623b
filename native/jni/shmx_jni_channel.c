/*
 * JNI glue for channels. Everything here except channelRegion is hot path:
 * primitives in, primitives out, the library's codes returned unchanged
 * (negative = -code), no exception thrown, no call back into Java, no array
 * copy through Get<Type>ArrayElements.
 *
 * Received messages live in caller-provided native memory: a shmx_message_t
 * (48 bytes) inside a direct ByteBuffer whose address the Java side resolved
 * once. Batch receive fills an array of them in one call; release takes the
 * address of one of them. The Java side reads the public fields at the
 * offsets asserted below.
 */
#include "shmx_jni.h"

#include <stddef.h>

/* The Java side (io.shmx.internal.MessageLayout) reads these offsets directly. */
_Static_assert(offsetof(shmx_message_t, data) == 0, "shmx_message_t.data at 0");
_Static_assert(sizeof(((shmx_message_t *)0)->data) == 8, "shmx_message_t.data is 8 bytes");
_Static_assert(offsetof(shmx_message_t, length) == 8, "shmx_message_t.length at 8");
_Static_assert(offsetof(shmx_message_t, type) == 12, "shmx_message_t.type at 12");
_Static_assert(offsetof(shmx_message_t, flags) == 14, "shmx_message_t.flags at 14");
_Static_assert(offsetof(shmx_message_t, id) == 16, "shmx_message_t.id at 16");
_Static_assert(sizeof(shmx_message_t) == 48, "shmx_message_t is 48 bytes");
_Static_assert(_Alignof(shmx_message_t) == 8, "shmx_message_t is 8-byte aligned");

#define CH(h) SHMX_JNI_PTR(shmx_channel_t, h)

/* Native.channelSend(ch, type, flags, id, address, len, timeoutNs): copy from native memory. */
static jlong JNICALL jni_channel_send(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jint type,
                                      jint flags, jlong id, jlong addr, jint len, jlong timeout_ns) {
    return (jlong)shmx_channel_send(CH(ch), (uint16_t)type, (uint8_t)flags, (uint64_t)id,
                                    SHMX_JNI_PTR(const void, addr), (uint32_t)len, (int64_t)timeout_ns);
}

/*
 * Native.channelSendArray(ch, type, flags, id, array, off, len, timeoutNs):
 * claim, copy the array region straight into the claimed area with
 * GetByteArrayRegion (one copy, no pinning), commit. Bounds are checked in Java.
 */
static jlong JNICALL jni_channel_send_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong ch, jint type,
                                            jint flags, jlong id, jbyteArray arr, jint off, jint len,
                                            jlong timeout_ns) {
    void *data = NULL;
    int rc = shmx_channel_claim(CH(ch), (uint32_t)len, (int64_t)timeout_ns, &data);
    if (rc < 0) {
        return rc;
    }
    if (len > 0) {
        (*env)->GetByteArrayRegion(env, arr, off, len, (jbyte *)data);
        if ((*env)->ExceptionCheck(env)) { /* cannot happen after the Java bounds check; never publish garbage */
            shmx_channel_abort(CH(ch));
            return -SHMX_EINVAL;
        }
    }
    return (jlong)shmx_channel_commit(CH(ch), (uint16_t)type, (uint8_t)flags, (uint64_t)id);
}

/* Native.channelClaim(ch, len, timeoutNs): the address of the payload area (> 0), or -code. */
static jlong JNICALL jni_channel_claim(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jint len,
                                       jlong timeout_ns) {
    void *data = NULL;
    int rc = shmx_channel_claim(CH(ch), (uint32_t)len, (int64_t)timeout_ns, &data);
    if (rc < 0) {
        return rc;
    }
    /* A zero-length claim may have no payload address; report 1 so that it is not taken for a code. */
    return data != NULL ? SHMX_JNI_LONG(data) : 1;
}

static jlong JNICALL jni_channel_commit(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jint type,
                                        jint flags, jlong id) {
    return (jlong)shmx_channel_commit(CH(ch), (uint16_t)type, (uint8_t)flags, (uint64_t)id);
}

static jlong JNICALL jni_channel_commit_len(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                            jint len, jint type, jint flags, jlong id) {
    return (jlong)shmx_channel_commit_len(CH(ch), (uint32_t)len, (uint16_t)type, (uint8_t)flags, (uint64_t)id);
}

static jint JNICALL jni_channel_abort(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_abort(CH(ch));
}

/* Native.channelReceive(ch, messageAddress, timeoutNs): fills the shmx_message_t at messageAddress. */
static jint JNICALL jni_channel_receive(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jlong msg,
                                       jlong timeout_ns) {
    return shmx_channel_receive(CH(ch), SHMX_JNI_PTR(shmx_message_t, msg), (int64_t)timeout_ns);
}

/* Native.channelReceiveBatch(ch, messagesAddress, max, timeoutNs): fills up to max structs; returns the count. */
static jint JNICALL jni_channel_receive_batch(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                             jlong msgs, jint max, jlong timeout_ns) {
    return shmx_channel_receive_batch(CH(ch), SHMX_JNI_PTR(shmx_message_t, msgs), (int)max, (int64_t)timeout_ns);
}

/* Native.channelRelease(ch, messageAddress): releases the message described by the struct at that address. */
static jint JNICALL jni_channel_release(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jlong msg) {
    return shmx_channel_release(CH(ch), SHMX_JNI_PTR(const shmx_message_t, msg));
}

/* Native.channelReceiveCopy(ch, dstAddress, capacity, metaAddress, timeoutNs): copy into native memory. */
static jlong JNICALL jni_channel_receive_copy(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                             jlong dst, jlong cap, jlong meta, jlong timeout_ns) {
    static uint8_t no_room; /* a valid pointer for a zero-capacity destination */
    void *p = dst != 0 ? SHMX_JNI_PTR(void, dst) : &no_room;
    return (jlong)shmx_channel_receive_copy(CH(ch), p, (size_t)cap, SHMX_JNI_PTR(shmx_message_t, meta),
                                            (int64_t)timeout_ns);
}

/*
 * Native.channelReceiveCopyArray(ch, array, off, capacity, metaAddress, timeoutNs):
 * copy the next message into a byte[] and verify the CRC over the copy.
 * The array is pinned only for a receive that does not wait (timeout 0):
 * when nothing is there yet, the wait happens outside the critical section
 * with a zero-capacity probe (which returns -SHMX_ESHORT and consumes nothing
 * once a non-empty message is there), so the garbage collector is never held
 * up by a sleeping receiver.
 */
static jlong JNICALL jni_channel_receive_copy_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                                   jbyteArray arr, jint off, jint cap, jlong meta,
                                                   jlong timeout_ns) {
    shmx_message_t *m = SHMX_JNI_PTR(shmx_message_t, meta);
    for (;;) {
        uint8_t *p = (*env)->GetPrimitiveArrayCritical(env, arr, NULL);
        if (p == NULL) {
            return -SHMX_EINVAL; /* OutOfMemoryError pending */
        }
        int64_t r = shmx_channel_receive_copy(CH(ch), p + off, (size_t)cap, m, 0);
        (*env)->ReleasePrimitiveArrayCritical(env, arr, p, 0);
        if (r != -SHMX_EEMPTY || timeout_ns == 0) {
            return (jlong)r;
        }
        static uint8_t no_room;
        int64_t w = shmx_channel_receive_copy(CH(ch), &no_room, 0, m, (int64_t)timeout_ns);
        if (w != -SHMX_ESHORT) {
            return (jlong)w; /* an empty message was received whole, or nothing came, or closed */
        }
        timeout_ns = 0; /* a message is there now: take it without waiting */
    }
}

static jint JNICALL jni_channel_close(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_close(CH(ch));
}

static void JNICALL jni_channel_free(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    shmx_channel_free(CH(ch));
}

static jint JNICALL jni_channel_transport(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_transport(CH(ch));
}

static jint JNICALL jni_channel_max_payload(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return (jint)shmx_channel_max_payload(CH(ch));
}

static jint JNICALL jni_channel_index(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return (jint)shmx_channel_index(CH(ch));
}

static jint JNICALL jni_channel_peer_alive(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return shmx_channel_peer_alive(CH(ch));
}

static void JNICALL jni_channel_set_idle(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                         jint spin, jint yield) {
    shmx_channel_set_idle(CH(ch), (uint32_t)spin, (uint32_t)yield);
}

/*
 * Native.channelRegion(ch, i): region @i wrapped once as a direct ByteBuffer
 * (cold path: called when a channel is set up), or null past the last one.
 * Regions larger than a ByteBuffer can address (2 GiB - 1) are refused with
 * IllegalArgumentException.
 */
static jobject JNICALL jni_channel_region(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong ch, jint i) {
    void *base = NULL;
    size_t len = 0;
    int rc = shmx_channel_region(CH(ch), (int)i, &base, &len);
    if (rc < 0) {
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        shmx_jni_throw_iae(env, "shmx_channel_region: a memory region of 2 GiB or more cannot be wrapped as a ByteBuffer");
        return NULL;
    }
    if (base == NULL || len == 0) {
        /* An empty region: wrap nothing, but keep the numbering (Java skips it). */
        return (*env)->NewDirectByteBuffer(env, (void *)&base, 0);
    }
    return (*env)->NewDirectByteBuffer(env, base, (jlong)len);
}

const JNINativeMethod shmx_jni_channel_methods[] = {
    {"channelSend", "(JIIJJIJ)J", (void *)jni_channel_send},
    {"channelSendArray", "(JIIJ[BIIJ)J", (void *)jni_channel_send_array},
    {"channelClaim", "(JIJ)J", (void *)jni_channel_claim},
    {"channelCommit", "(JIIJ)J", (void *)jni_channel_commit},
    {"channelCommitLen", "(JIIIJ)J", (void *)jni_channel_commit_len},
    {"channelAbort", "(J)I", (void *)jni_channel_abort},
    {"channelReceive", "(JJJ)I", (void *)jni_channel_receive},
    {"channelReceiveBatch", "(JJIJ)I", (void *)jni_channel_receive_batch},
    {"channelRelease", "(JJ)I", (void *)jni_channel_release},
    {"channelReceiveCopy", "(JJJJJ)J", (void *)jni_channel_receive_copy},
    {"channelReceiveCopyArray", "(J[BIIJJ)J", (void *)jni_channel_receive_copy_array},
    {"channelClose", "(J)I", (void *)jni_channel_close},
    {"channelFree", "(J)V", (void *)jni_channel_free},
    {"channelTransport", "(J)I", (void *)jni_channel_transport},
    {"channelMaxPayload", "(J)I", (void *)jni_channel_max_payload},
    {"channelIndex", "(J)I", (void *)jni_channel_index},
    {"channelPeerAlive", "(J)I", (void *)jni_channel_peer_alive},
    {"channelSetIdle", "(JII)V", (void *)jni_channel_set_idle},
    {"channelRegion", "(JI)Ljava/nio/ByteBuffer;", (void *)jni_channel_region},
};
const int shmx_jni_channel_method_count =
    (int)(sizeof(shmx_jni_channel_methods) / sizeof(shmx_jni_channel_methods[0]));
