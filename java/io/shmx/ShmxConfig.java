package io.shmx;

import io.shmx.internal.ConfigLayout;
import io.shmx.internal.Errors;
import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;

/**
 * An immutable host configuration, mirroring the C {@code shmx_config_t}
 * ({@code include/shmx/config.h}). Build one with {@link #builder()}, which
 * starts from the library's defaults (32 channels, 64 KiB rings, 1 KiB inline
 * limit, pool classes 4 KiB x 128, 64 KiB x 32, 1 MiB x 4, 1 MiB frames,
 * 64 MiB messages, a 4 MiB flow-control window, 8 MiB extents up to 256 MiB
 * of pool, memfd segment, both transports). The C library validates it when
 * it is built, so a bad value fails early with a {@link ConfigurationException}
 * naming the field.
 *
 * <pre>{@code
 * ShmxConfig config = ShmxConfig.builder()
 *         .maxChannels(4)
 *         .ringBytes(256 * 1024)
 *         .sizeClasses(new int[] {16384, 1 << 20}, new int[] {64, 8})
 *         .transports(Transport.SHM)
 *         .build();
 * try (Host host = Host.create("orders", config)) { ... }
 * }</pre>
 */
public final class ShmxConfig {
    /** {@code allowedUid} value meaning: only the host's own uid may connect. */
    public static final int ONLY_OWN_UID = -1;
    /** Iteration count meaning "spin forever" (UINT32_MAX). */
    public static final long SPIN_FOREVER = 0xFFFF_FFFFL;

    private final int[] values;

    private ShmxConfig(int[] values) {
        this.values = values;
    }

    /**
     * @return a builder holding the library's defaults
     * @throws NativeLibraryException if libshmx cannot be loaded
     */
    public static Builder builder() {
        NativeLoader.ensureLoaded();
        int[] v = new int[ConfigLayout.LENGTH];
        Native.configDefault(v);
        return new Builder(v);
    }

    /** @return the library's default configuration */
    public static ShmxConfig defaults() {
        return builder().build();
    }

    /** Wraps a configuration read back from a host. */
    static ShmxConfig ofValues(int[] values) {
        return new ShmxConfig(values.clone());
    }

    /** @return a builder starting from this configuration */
    public Builder toBuilder() {
        return new Builder(values.clone());
    }

    /** Internal: the ConfigLayout array (a copy). */
    int[] values() {
        return values.clone();
    }

    /** @return guests served at once (one channel each) */
    public int maxChannels() {
        return values[ConfigLayout.MAX_CHANNELS_INDEX];
    }

    /** @return bytes of each ring (one per direction) */
    public int ringBytes() {
        return values[ConfigLayout.RING_BYTES];
    }

    /** @return payloads up to this many bytes travel inside the ring */
    public int inlineMax() {
        return values[ConfigLayout.INLINE_MAX];
    }

    /** @return the largest message payload */
    public int maxPayload() {
        return values[ConfigLayout.MAX_PAYLOAD];
    }

    /** @return the number of pool size classes */
    public int sizeClassCount() {
        return values[ConfigLayout.CLASS_COUNT];
    }

    /**
     * @param i class number, 0 .. sizeClassCount() - 1
     * @return payload bytes per slot of class {@code i}
     */
    public int sizeClassBytes(int i) {
        checkClass(i);
        return values[ConfigLayout.CLASS_SIZE + i];
    }

    /**
     * @param i class number, 0 .. sizeClassCount() - 1
     * @return slots in class {@code i}
     */
    public int sizeClassSlots(int i) {
        checkClass(i);
        return values[ConfigLayout.CLASS_SLOTS + i];
    }

    private void checkClass(int i) {
        if (i < 0 || i >= sizeClassCount()) {
            throw new IndexOutOfBoundsException("size class " + i + " of " + sizeClassCount());
        }
    }

    /** @return where the segment lives */
    public SegmentMode segmentMode() {
        return SegmentMode.fromCode(values[ConfigLayout.SEGMENT_MODE]);
    }

    /** @return the transports the host offers */
    public Set<Transport> transports() {
        EnumSet<Transport> s = EnumSet.noneOf(Transport.class);
        for (Transport t : Transport.values()) {
            // AUTO is a guest's request (both bits), never an offer of its own
            if (t != Transport.AUTO && (values[ConfigLayout.TRANSPORTS] & t.code()) != 0) {
                s.add(t);
            }
        }
        return s;
    }

    /** @return the uid allowed to connect besides the host's own, or {@link #ONLY_OWN_UID} */
    public int allowedUid() {
        return values[ConfigLayout.ALLOWED_UID];
    }

    /** @return busy polls before a waiter yields (unsigned; {@link #SPIN_FOREVER} never sleeps) */
    public long spinIterations() {
        return values[ConfigLayout.SPIN] & 0xFFFF_FFFFL;
    }

    /** @return sched_yield() polls before a waiter sleeps on the futex (unsigned) */
    public long yieldIterations() {
        return values[ConfigLayout.YIELD] & 0xFFFF_FFFFL;
    }

    /** @return the largest message, all its fragments together */
    public int maxMessage() {
        return values[ConfigLayout.MAX_MESSAGE];
    }

    /** @return flow control: pool bytes one direction of a channel may have in flight */
    public int windowBytes() {
        return values[ConfigLayout.WINDOW_BYTES];
    }

    /** @return slot bytes one pool extent adds when the pool grows */
    public int extentBytes() {
        return values[ConfigLayout.EXTENT_BYTES];
    }

    /** @return cap on pool slot bytes, the segment's classes plus every extent */
    public long poolMaxBytes() {
        return (values[ConfigLayout.POOL_MAX_LOW] & 0xFFFF_FFFFL) | (long) values[ConfigLayout.POOL_MAX_HIGH] << 32;
    }

    /**
     * @return milliseconds a shared-memory guest may leave the host's messages unconsumed
     *         before the host expels it; 0: never
     */
    public int livenessMillis() {
        return values[ConfigLayout.LIVENESS_MS];
    }

    /** @return total bytes of the segment this configuration describes */
    public long segmentBytes() {
        NativeLoader.ensureLoaded();
        return Native.configSegmentBytes(values);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ShmxConfig && Arrays.equals(values, ((ShmxConfig) o).values);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(values);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ShmxConfig{maxChannels=").append(maxChannels())
                .append(", ringBytes=").append(ringBytes())
                .append(", inlineMax=").append(inlineMax())
                .append(", maxPayload=").append(maxPayload())
                .append(", maxMessage=").append(maxMessage())
                .append(", windowBytes=").append(windowBytes())
                .append(", extentBytes=").append(extentBytes())
                .append(", poolMaxBytes=").append(poolMaxBytes())
                .append(", livenessMillis=").append(livenessMillis())
                .append(", sizeClasses=[");
        for (int i = 0; i < Math.min(sizeClassCount(), ConfigLayout.MAX_CLASSES); i++) {
            sb.append(i > 0 ? ", " : "").append(values[ConfigLayout.CLASS_SIZE + i]).append('x')
                    .append(values[ConfigLayout.CLASS_SLOTS + i]);
        }
        return sb.append("], segmentMode=").append(values[ConfigLayout.SEGMENT_MODE])
                .append(", transports=").append(transports())
                .append(", allowedUid=").append(allowedUid())
                .append(", spin=").append(spinIterations())
                .append(", yield=").append(yieldIterations()).append('}').toString();
    }

    /**
     * Builds a {@link ShmxConfig}. Setters only record values; {@link #build()}
     * asks the C library to validate them.
     */
    public static final class Builder {
        private final int[] v;

        private Builder(int[] v) {
            this.v = v;
        }

        /**
         * @param n guests served at once, 1 .. 1024
         * @return this
         */
        public Builder maxChannels(int n) {
            v[ConfigLayout.MAX_CHANNELS_INDEX] = n;
            return this;
        }

        /**
         * @param bytes bytes of each ring; a power of two, at least 4096
         * @return this
         */
        public Builder ringBytes(int bytes) {
            v[ConfigLayout.RING_BYTES] = bytes;
            return this;
        }

        /**
         * @param bytes payloads up to this size travel inside the ring
         * @return this
         */
        public Builder inlineMax(int bytes) {
            v[ConfigLayout.INLINE_MAX] = bytes;
            return this;
        }

        /**
         * @param bytes the largest payload of one frame (fragment); at most the largest size class
         * @return this
         */
        public Builder maxPayload(int bytes) {
            v[ConfigLayout.MAX_PAYLOAD] = bytes;
            return this;
        }

        /**
         * @param bytes the largest message, all fragments together; at least maxPayload
         * @return this
         */
        public Builder maxMessage(int bytes) {
            v[ConfigLayout.MAX_MESSAGE] = bytes;
            return this;
        }

        /**
         * @param bytes flow control: pool bytes one direction of a channel may have in flight; at least the
         *              largest size class
         * @return this
         */
        public Builder windowBytes(int bytes) {
            v[ConfigLayout.WINDOW_BYTES] = bytes;
            return this;
        }

        /**
         * @param bytes slot bytes one pool extent adds (a multiple of 4096; at least one slot is added)
         * @return this
         */
        public Builder extentBytes(int bytes) {
            v[ConfigLayout.EXTENT_BYTES] = bytes;
            return this;
        }

        /**
         * @param bytes cap on pool slot bytes, the segment's classes plus every extent
         * @return this
         */
        public Builder poolMaxBytes(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("poolMaxBytes must not be negative: " + bytes);
            }
            v[ConfigLayout.POOL_MAX_LOW] = (int) bytes;
            v[ConfigLayout.POOL_MAX_HIGH] = (int) (bytes >>> 32);
            return this;
        }

        /**
         * @param millis how long a shared-memory guest may leave the host's messages unconsumed
         *               before it is expelled; 0 never expels, else at least 10
         * @return this
         */
        public Builder livenessMillis(int millis) {
            v[ConfigLayout.LIVENESS_MS] = millis;
            return this;
        }

        /**
         * Replaces the pool's size classes.
         *
         * @param sizes payload bytes per slot, strictly ascending multiples of 64
         * @param slots slots per class, each at least 1
         * @return this
         * @throws IllegalArgumentException if the arrays differ in length or hold more than 8 classes
         */
        public Builder sizeClasses(int[] sizes, int[] slots) {
            if (sizes.length != slots.length) {
                throw new IllegalArgumentException("sizes and slots differ in length");
            }
            if (sizes.length > ConfigLayout.MAX_CLASSES) {
                throw new IllegalArgumentException("at most " + ConfigLayout.MAX_CLASSES + " size classes");
            }
            v[ConfigLayout.CLASS_COUNT] = sizes.length;
            for (int i = 0; i < ConfigLayout.MAX_CLASSES; i++) {
                v[ConfigLayout.CLASS_SIZE + i] = i < sizes.length ? sizes[i] : 0;
                v[ConfigLayout.CLASS_SLOTS + i] = i < slots.length ? slots[i] : 0;
            }
            return this;
        }

        /**
         * @param mode where the segment lives
         * @return this
         */
        public Builder segmentMode(SegmentMode mode) {
            v[ConfigLayout.SEGMENT_MODE] = mode.code();
            return this;
        }

        /**
         * @param first  a transport the host offers
         * @param others more transports
         * @return this
         */
        public Builder transports(Transport first, Transport... others) {
            int bits = first.code();
            for (Transport t : others) {
                bits |= t.code();
            }
            v[ConfigLayout.TRANSPORTS] = bits;
            return this;
        }

        /**
         * @param transports the transports the host offers (not empty)
         * @return this
         */
        public Builder transports(Set<Transport> transports) {
            int bits = 0;
            for (Transport t : transports) {
                bits |= t.code();
            }
            v[ConfigLayout.TRANSPORTS] = bits;
            return this;
        }

        /**
         * @param uid a uid allowed to connect besides the host's own, or {@link #ONLY_OWN_UID}
         * @return this
         */
        public Builder allowedUid(int uid) {
            v[ConfigLayout.ALLOWED_UID] = uid;
            return this;
        }

        /**
         * @param n busy polls before a waiter yields (0 .. {@link #SPIN_FOREVER})
         * @return this
         */
        public Builder spinIterations(long n) {
            v[ConfigLayout.SPIN] = (int) unsigned(n, "spinIterations");
            return this;
        }

        /**
         * @param n sched_yield() polls before a waiter sleeps (0 .. 2^32-1)
         * @return this
         */
        public Builder yieldIterations(long n) {
            v[ConfigLayout.YIELD] = (int) unsigned(n, "yieldIterations");
            return this;
        }

        private static long unsigned(long n, String what) {
            if (n < 0 || n > 0xFFFF_FFFFL) {
                throw new IllegalArgumentException(what + " must be in 0 .. 4294967295: " + n);
            }
            return n;
        }

        /**
         * @return the configuration
         * @throws ConfigurationException if the C library rejects it; the message names the field
         */
        public ShmxConfig build() {
            int rc = Native.configValidate(v);
            if (rc < 0) {
                throw Errors.exception(rc, "shmx_config_validate", Native.configProblem(v));
            }
            return new ShmxConfig(v.clone());
        }
    }
}
