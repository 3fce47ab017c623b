package io.shmx;

/** No host listens under the requested name (within the connect timeout): {@code SHMX_ENOHOST}. */
public class NoHostException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code
     * @param nativeMessage shmx_strerror(code)
     */
    public NoHostException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
