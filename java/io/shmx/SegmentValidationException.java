package io.shmx;

/**
 * The shared segment (or a file or socket guarding it) failed validation on
 * attach: bad header ({@code SHMX_EHEADER}), missing seals
 * ({@code SHMX_ESEALS}), never ready ({@code SHMX_ENOTREADY}), wrong owner or
 * mode ({@code SHMX_EPERMS}), or corrupt shared data ({@code SHMX_ECORRUPT},
 * {@code SHMX_EBADSLOT}).
 */
public class SegmentValidationException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code
     * @param nativeMessage shmx_strerror(code)
     */
    public SegmentValidationException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
