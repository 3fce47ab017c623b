package io.shmx;

/**
 * What a channel runs over. A host may offer both {@link #SHM} and
 * {@link #UDS}; a guest asks for one of them or for {@link #AUTO}, and
 * {@link Channel#transport()} says which one it got.
 */
public enum Transport {
    /** Rings and pool in the shared segment: the fast path. */
    SHM(1),
    /** The same frames over the host's Unix socket: the baseline and fallback. */
    UDS(2),
    /**
     * A guest's request only: shared memory when the host can give it (it offers shm, has a segment and a
     * free entry), else the Unix socket with the same API and frames (hybrid fallback). Never the transport of
     * a channel, and a host that "offers" it offers both.
     */
    AUTO(3);

    private final int code;

    Transport(int code) {
        this.code = code;
    }

    /**
     * @return the C value ({@code SHMX_TRANSPORT_SHM} = 1, {@code SHMX_TRANSPORT_UDS} = 2,
     *         {@code SHMX_TRANSPORT_AUTO} = 3)
     */
    public int code() {
        return code;
    }

    /**
     * @param code a C transport value
     * @return the matching constant
     * @throws IllegalArgumentException for an unknown value
     */
    public static Transport fromCode(int code) {
        for (Transport t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown transport " + code);
    }

    /**
     * @param name "shm", "uds" or "auto" (any case)
     * @return the matching constant
     * @throws IllegalArgumentException for anything else
     */
    public static Transport parse(String name) {
        for (Transport t : values()) {
            if (t.name().equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown transport '" + name + "' (shm, uds or auto)");
    }
}
