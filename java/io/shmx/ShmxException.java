package io.shmx;

/**
 * A shmx operation failed while setting something up (creating a host,
 * connecting, validating a configuration, loading the native library).
 * Hot-path outcomes such as "would block", "empty" or "closed" are never
 * exceptions: they are {@link Status} return values.
 *
 * <p>Carries the native code ({@code -errno} or {@code -SHMX_E...}, always
 * negative, 0 when there is none) and {@code shmx_strerror}'s explanation,
 * which is also part of the message.
 */
public class ShmxException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The negative native code, or 0. */
    private final int code;
    /** shmx_strerror(code), or null. */
    private final String nativeMessage;

    /**
     * @param message       the full message (operation, explanation, code name)
     * @param code          the negative native code, or 0
     * @param nativeMessage shmx_strerror(code), or null
     */
    public ShmxException(String message, int code, String nativeMessage) {
        super(message);
        this.code = code;
        this.nativeMessage = nativeMessage;
    }

    /**
     * @param message the full message
     * @param cause   the underlying failure
     */
    public ShmxException(String message, Throwable cause) {
        super(message, cause);
        this.code = 0;
        this.nativeMessage = null;
    }

    /** @return the negative native code ({@code -errno} or {@code -SHMX_E...}), or 0 */
    public int code() {
        return code;
    }

    /** @return the code's symbolic name, e.g. {@code SHMX_ENOHOST} or {@code ETIMEDOUT} */
    public String codeName() {
        return Status.name(code);
    }

    /** @return shmx_strerror(code), or null when there is no native code */
    public String nativeMessage() {
        return nativeMessage;
    }
}
