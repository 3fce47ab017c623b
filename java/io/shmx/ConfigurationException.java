package io.shmx;

/**
 * A configuration was rejected ({@code SHMX_ECONFIG}); the message names the
 * field, as {@code shmx_config_problem()} reports it.
 */
public class ConfigurationException extends ShmxException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message       the full message, including the problem
     * @param code          the negative native code
     * @param nativeMessage shmx_strerror(code)
     */
    public ConfigurationException(String message, int code, String nativeMessage) {
        super(message, code, nativeMessage);
    }
}
