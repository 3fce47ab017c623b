/*
 * JNI glue for messages of any size: the whole-message copying receive and
 * the streaming writer and reader behind io.shmx.MessageOutputStream and
 * MessageInputStream. Writers and readers are malloc'd here and travel as
 * jlong handles; Java frees them once (close). Array copies go straight
 * between the Java array and shared memory with Get/SetByteArrayRegion (no
 * pinning, nothing held while a call waits). Codes are returned unchanged;
 * only a failed allocation throws.
 */
#include "shmx_jni.h"

#include <errno.h>
#include <stdlib.h>

#define CH(h) SHMX_JNI_PTR(shmx_channel_t, h)
#define WRITER(h) SHMX_JNI_PTR(shmx_writer_t, h)
#define READER(h) SHMX_JNI_PTR(shmx_reader_t, h)

/* Copy @len bytes of @arr from @off into the message (reserve, copy, advance). */
static jlong write_array(JNIEnv *env, shmx_writer_t *w, jbyteArray arr, jint off, jint len, jlong timeout_ns) {
    jint done = 0;
    while (done < len) {
        void *dst;
        size_t room;
        int rc = shmx_writer_reserve(w, &dst, &room, (int64_t)timeout_ns);
        if (rc != 0) return rc;
        jint n = (size_t)(len - done) < room ? len - done : (jint)room;
        (*env)->GetByteArrayRegion(env, arr, off + done, n, (jbyte *)dst);
        if ((*env)->ExceptionCheck(env)) return -SHMX_EINVAL; /* bounds are checked in Java */
        shmx_writer_advance(w, (size_t)n);
        done += n;
    }
    return len;
}

/* Native.channelSendMessageArray(ch, type, id, array, off, len, timeoutNs): a send above max_payload. */
static jlong JNICALL jni_send_message_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong ch, jint type, jlong id,
                                            jbyteArray arr, jint off, jint len, jlong timeout_ns) {
    if ((uint32_t)len > shmx_channel_max_message(CH(ch))) return -SHMX_ETOOBIG;
    shmx_writer_t w;
    int rc = shmx_writer_begin(&w, CH(ch), (uint16_t)type, (uint64_t)id);
    if (rc != 0) return rc;
    shmx_writer_size_hint(&w, (uint64_t)len);
    jlong n = write_array(env, &w, arr, off, len, timeout_ns);
    if (n < 0) {
        shmx_writer_abort(&w);
        return n;
    }
    return (jlong)shmx_writer_finish(&w, (int64_t)timeout_ns);
}

static jint JNICALL jni_max_message(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch) {
    return (jint)shmx_channel_max_message(CH(ch));
}

/*
 * Native.channelReceiveMessage(ch, meta, timeoutNs): the whole next message as
 * a new byte[], or null with meta[0] = the code; on success meta[0] = 0,
 * meta[1] = type, meta[2] = id.
 */
static jbyteArray JNICALL jni_receive_message(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong ch, jlongArray meta,
                                              jlong timeout_ns) {
    void *buf = NULL;
    size_t cap = 0;
    shmx_message_t m;
    int64_t n = shmx_channel_receive_message(CH(ch), &buf, &cap, &m, (int64_t)timeout_ns);
    jlong out[3] = {n < 0 ? n : 0, 0, 0};
    jbyteArray arr = NULL;
    if (n >= 0) {
        out[1] = m.type;
        out[2] = (jlong)m.id;
        arr = (*env)->NewByteArray(env, (jsize)n);
        if (arr != NULL && n > 0) (*env)->SetByteArrayRegion(env, arr, 0, (jsize)n, (const jbyte *)buf);
    }
    free(buf);
    if (arr == NULL && n >= 0) return NULL; /* OutOfMemoryError pending */
    (*env)->SetLongArrayRegion(env, meta, 0, 3, out);
    return arr;
}

/* Native.writerOpen(ch, type, id): a writer handle (> 0) or -code. */
static jlong JNICALL jni_writer_open(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch, jint type,
                                     jlong id) {
    shmx_writer_t *w = malloc(sizeof *w);
    if (w == NULL) return -ENOMEM;
    int rc = shmx_writer_begin(w, CH(ch), (uint16_t)type, (uint64_t)id);
    if (rc != 0) {
        free(w);
        return rc;
    }
    return SHMX_JNI_LONG(w);
}

static jlong JNICALL jni_writer_write_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong w, jbyteArray arr,
                                            jint off, jint len, jlong timeout_ns) {
    return write_array(env, WRITER(w), arr, off, len, timeout_ns);
}

static jlong JNICALL jni_writer_write(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong w, jlong addr,
                                      jint len, jlong timeout_ns) {
    return (jlong)shmx_writer_write(WRITER(w), SHMX_JNI_PTR(const void, addr), (size_t)len, (int64_t)timeout_ns);
}

static jlong JNICALL jni_writer_finish(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong w,
                                       jlong timeout_ns) {
    return (jlong)shmx_writer_finish(WRITER(w), (int64_t)timeout_ns);
}

static jint JNICALL jni_writer_abort(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong w) {
    return shmx_writer_abort(WRITER(w));
}

static void JNICALL jni_stream_free(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong h) {
    free(SHMX_JNI_PTR(void, h));
}

/* Native.readerOpen(ch, timeoutNs): a reader handle (> 0) holding the message's first fragment, or -code. */
static jlong JNICALL jni_reader_open(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong ch,
                                     jlong timeout_ns) {
    shmx_reader_t *r = malloc(sizeof *r);
    if (r == NULL) return -ENOMEM;
    int rc = shmx_reader_begin(r, CH(ch), (int64_t)timeout_ns);
    if (rc != 0) {
        free(r);
        return rc;
    }
    return SHMX_JNI_LONG(r);
}

static jint JNICALL jni_reader_type(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong r) {
    return READER(r)->type;
}

static jlong JNICALL jni_reader_id(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong r) {
    return (jlong)READER(r)->id;
}

/* Native.readerReadArray(r, array, off, len, timeoutNs): bytes copied (0 at the end) or -code. */
static jlong JNICALL jni_reader_read_array(JNIEnv *env, jclass cls SHMX_JNI_UNUSED, jlong r, jbyteArray arr,
                                           jint off, jint len, jlong timeout_ns) {
    const void *src;
    size_t avail;
    int rc = shmx_reader_next(READER(r), &src, &avail, (int64_t)timeout_ns);
    if (rc <= 0) return rc;
    jint n = (size_t)len < avail ? len : (jint)avail;
    (*env)->SetByteArrayRegion(env, arr, off, n, (const jbyte *)src);
    if ((*env)->ExceptionCheck(env)) return -SHMX_EINVAL;
    shmx_reader_consume(READER(r), (size_t)n);
    return n;
}

static jlong JNICALL jni_reader_read(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong r, jlong addr,
                                     jint len, jlong timeout_ns) {
    return (jlong)shmx_reader_read(READER(r), SHMX_JNI_PTR(void, addr), (size_t)len, (int64_t)timeout_ns);
}

static jint JNICALL jni_reader_end(JNIEnv *env SHMX_JNI_UNUSED, jclass cls SHMX_JNI_UNUSED, jlong r,
                                   jlong timeout_ns) {
    return shmx_reader_end(READER(r), (int64_t)timeout_ns);
}

const JNINativeMethod shmx_jni_stream_methods[] = {
    {"channelSendMessageArray", "(JIJ[BIIJ)J", (void *)jni_send_message_array},
    {"channelMaxMessage", "(J)I", (void *)jni_max_message},
    {"channelReceiveMessage", "(J[JJ)[B", (void *)jni_receive_message},
    {"writerOpen", "(JIJ)J", (void *)jni_writer_open},
    {"writerWriteArray", "(J[BIIJ)J", (void *)jni_writer_write_array},
    {"writerWrite", "(JJIJ)J", (void *)jni_writer_write},
    {"writerFinish", "(JJ)J", (void *)jni_writer_finish},
    {"writerAbort", "(J)I", (void *)jni_writer_abort},
    {"streamFree", "(J)V", (void *)jni_stream_free},
    {"readerOpen", "(JJ)J", (void *)jni_reader_open},
    {"readerType", "(J)I", (void *)jni_reader_type},
    {"readerId", "(J)J", (void *)jni_reader_id},
    {"readerReadArray", "(J[BIIJ)J", (void *)jni_reader_read_array},
    {"readerRead", "(JJIJ)J", (void *)jni_reader_read},
    {"readerEnd", "(JJ)I", (void *)jni_reader_end},
};
const int shmx_jni_stream_method_count = (int)(sizeof(shmx_jni_stream_methods) / sizeof(shmx_jni_stream_methods[0]));
