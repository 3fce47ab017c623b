package io.shmx;

/**
 * A host refused a guest, or a guest's hello was unusable:
 * credentials ({@code SHMX_EPEERCRED}), no free channel ({@code SHMX_EFULL}),
 * transport not offered ({@code SHMX_ETRANSPORT}), malformed bootstrap
 * ({@code SHMX_EPROTO}), the host hung up during the handshake
 * ({@code SHMX_EHOSTGONE}) or {@code ECONNREFUSED}. Thrown by
 * {@link Guest#connect} and, on the host side, by {@link Host#accept} (the
 * host stays usable: accept again).
 */
public class ConnectionRefusedException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code
     * @param nativeMessage shmx_strerror(code)
     */
    public ConnectionRefusedException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
