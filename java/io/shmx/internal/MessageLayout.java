package io.shmx.internal;

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
}
