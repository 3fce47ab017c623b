package io.shmx;

/**
 * The host expelled this guest ({@code SHMX_EEXPELLED}): the guest left the
 * host's messages unconsumed for longer than the host's
 * {@link ShmxConfig#livenessMillis()} (it was stopped, hung or too slow), so
 * the host reclaimed its slots and closed its rings. Thrown by the guest side
 * of {@link Channel}'s calls, as {@link HostGoneException} is; the channel is
 * finished: close the {@link Guest} and connect again for a fresh entry.
 * Nothing addressed to the expelled incarnation reaches the next one.
 */
public class ExpelledException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message
     * @param code          the negative native code ({@code -SHMX_EEXPELLED})
     * @param nativeMessage shmx_strerror(code)
     */
    public ExpelledException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
