package io.shmx.internal;

/**
 * Indexes of the {@code int[]} that carries a {@code shmx_config_t} across
 * JNI. Mirrors {@code enum shmx_jni_config_index} in
 * {@code native/jni/shmx_jni.h}; keep both in step. Unsigned C fields travel
 * as the same 32 bits in a Java {@code int}.
 */
public final class ConfigLayout {
    private ConfigLayout() {
    }

    /** SHMX_MAX_CLASSES. */
    public static final int MAX_CLASSES = 8;
    /** SHMX_MAX_CHANNELS. */
    public static final int MAX_CHANNELS = 1024;

    /** max_channels. */
    public static final int MAX_CHANNELS_INDEX = 0;
    /** ring_bytes. */
    public static final int RING_BYTES = 1;
    /** inline_max. */
    public static final int INLINE_MAX = 2;
    /** max_payload. */
    public static final int MAX_PAYLOAD = 3;
    /** class_count. */
    public static final int CLASS_COUNT = 4;
    /** class_size[0..7]. */
    public static final int CLASS_SIZE = 5;
    /** class_slots[0..7]. */
    public static final int CLASS_SLOTS = CLASS_SIZE + MAX_CLASSES;
    /** segment_mode. */
    public static final int SEGMENT_MODE = CLASS_SLOTS + MAX_CLASSES;
    /** transports. */
    public static final int TRANSPORTS = SEGMENT_MODE + 1;
    /** allowed_uid. */
    public static final int ALLOWED_UID = TRANSPORTS + 1;
    /** spin_iterations. */
    public static final int SPIN = ALLOWED_UID + 1;
    /** yield_iterations. */
    public static final int YIELD = SPIN + 1;
    /** max_message. */
    public static final int MAX_MESSAGE = YIELD + 1;
    /** window_bytes. */
    public static final int WINDOW_BYTES = MAX_MESSAGE + 1;
    /** extent_bytes. */
    public static final int EXTENT_BYTES = WINDOW_BYTES + 1;
    /** pool_max_bytes, low 32 bits. */
    public static final int POOL_MAX_LOW = EXTENT_BYTES + 1;
    /** pool_max_bytes, high 32 bits. */
    public static final int POOL_MAX_HIGH = POOL_MAX_LOW + 1;
    /** liveness_ms. */
    public static final int LIVENESS_MS = POOL_MAX_HIGH + 1;
    /** Length of the array. */
    public static final int LENGTH = LIVENESS_MS + 1;

    static {
        if (LENGTH != 32) {
            throw new AssertionError("config array length must match shmx_jni.h");
        }
    }
}
