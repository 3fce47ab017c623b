package io.shmx.internal;

import java.nio.ByteBuffer;

/**
 * Offsets of the public fields of the C struct {@code shmx_message_t}
 * ({@code include/shmx/channel.h}), which the receive natives fill inside
 * direct ByteBuffers (native byte order). Checked at compile time with
 * {@code _Static_assert} in {@code native/jni/shmx_jni_channel.c}.
 */
public final class MessageLayout {
    private MessageLayout() {
    }

    /** {@code const void *data}: 8 bytes. */
    public static final int DATA = 0;
    /** {@code uint32_t length}. */
    public static final int LENGTH = 8;
    /** {@code uint16_t type}. */
    public static final int TYPE = 12;
    /** {@code uint8_t flags}. */
    public static final int FLAGS = 14;
    /** {@code uint64_t id}. */
    public static final int ID = 16;
    /** {@code sizeof(shmx_message_t)}. */
    public static final int SIZE = 48;
    /** Required alignment. */
    public static final int ALIGNMENT = 8;

    /** @return the payload address of the struct at {@code at} in {@code b} */
    public static long data(ByteBuffer b, int at) {
        return b.getLong(at + DATA);
    }

    /** @return the payload length of the struct at {@code at} in {@code b} */
    public static int length(ByteBuffer b, int at) {
        return b.getInt(at + LENGTH);
    }

    /** @return the frame type (unsigned) of the struct at {@code at} in {@code b} */
    public static int type(ByteBuffer b, int at) {
        return b.getShort(at + TYPE) & 0xFFFF;
    }

    /** @return the frame flags (unsigned) of the struct at {@code at} in {@code b} */
    public static int flags(ByteBuffer b, int at) {
        return b.get(at + FLAGS) & 0xFF;
    }

    /** @return the message id of the struct at {@code at} in {@code b} */
    public static long id(ByteBuffer b, int at) {
        return b.getLong(at + ID);
    }
}
