package io.shmx;

/** A live host already listens under the requested name ({@code EADDRINUSE}). */
public class HostExistsException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code
     * @param nativeMessage shmx_strerror(code)
     */
    public HostExistsException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
