package io.shmx;

/**
 * The host this guest's channel belongs to is gone ({@code SHMX_EHOSTGONE}):
 * it died or was destroyed, and its bootstrap socket hung up. Thrown by the
 * guest side of {@link Channel}'s send, claim, commit, receive and release
 * calls (a pending receive wakes with it) and by every later call on that
 * channel. The channel can do nothing more: close the {@link Guest} and
 * connect again (a new host incarnation gives a new {@link Channel#epoch()}).
 *
 * <p>Thrown rather than returned as a {@link Status} because the channel is
 * finished for good, unlike "empty" or "would block". During
 * {@link Guest#connect} a host that hangs up mid-handshake is still reported
 * as a {@link ConnectionRefusedException}.
 */
public class HostGoneException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code ({@code -SHMX_EHOSTGONE})
     * @param nativeMessage shmx_strerror(code)
     */
    public HostGoneException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
