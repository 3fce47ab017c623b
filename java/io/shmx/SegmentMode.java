package io.shmx;

/** Where a host's shared segment lives. */
public enum SegmentMode {
    /** An anonymous, sealed memfd passed to guests over the socket (default). */
    MEMFD(0),
    /** A 0600 file under /dev/shm with a per-user name. */
    NAMED(1);

    private final int code;

    SegmentMode(int code) {
        this.code = code;
    }

    /** @return the C value ({@code enum shmx_segment_mode}) */
    public int code() {
        return code;
    }

    /**
     * @param code a C segment mode
     * @return the matching constant
     * @throws IllegalArgumentException for an unknown value
     */
    public static SegmentMode fromCode(int code) {
        for (SegmentMode m : values()) {
            if (m.code == code) {
                return m;
            }
        }
        throw new IllegalArgumentException("unknown segment mode " + code);
    }
}
