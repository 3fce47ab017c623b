package io.shmx.internal;

import io.shmx.ConfigurationException;
import io.shmx.ConnectionRefusedException;
import io.shmx.HostExistsException;
import io.shmx.NoHostException;
import io.shmx.SegmentValidationException;
import io.shmx.ShmxException;
import io.shmx.Status;

/**
 * Turns native codes into the typed exceptions of io.shmx. One mapping for
 * both sides: the cold JNI natives call {@link #newException} (cached in
 * {@code JNI_OnLoad}) and throw what it returns; Java code calls
 * {@link #exception}.
 */
public final class Errors {
    private Errors() {
    }

    /** errno EADDRINUSE on Linux. */
    public static final int EADDRINUSE = 98;
    /** errno ECONNREFUSED on Linux. */
    public static final int ECONNREFUSED = 111;
    /** errno ETIMEDOUT on Linux. */
    public static final int ETIMEDOUT = 110;

    /** Called from C (shmx_jni_throw); must not throw. */
    static Throwable newException(int code, String operation, String detail) {
        return exception(code, operation, detail);
    }

    /**
     * Builds the exception for a failed setup operation.
     *
     * @param code      the code the C library returned (sign ignored)
     * @param operation what failed, e.g. {@code shmx_guest_connect("name", shm)}
     * @param detail    more context (e.g. the configuration problem), or null
     * @return the typed exception (not thrown)
     */
    public static ShmxException exception(int code, String operation, String detail) {
        int c = code > 0 ? -code : code;
        String text;
        try {
            text = Native.strerror(c);
        } catch (LinkageError e) {
            text = "code " + c;
        }
        StringBuilder msg = new StringBuilder();
        msg.append(operation).append(" failed: ").append(text).append(" (").append(Status.name(c)).append(", ")
                .append(c).append(')');
        if (detail != null && !detail.isEmpty()) {
            msg.append(": ").append(detail);
        }
        String m = msg.toString();
        switch (-c) {
            case 4145: // SHMX_ENOHOST
                return new NoHostException(m, c, text);
            case 4140: // SHMX_EPROTO
            case 4141: // SHMX_EPEERCRED
            case 4142: // SHMX_EFULL
            case 4143: // SHMX_ETRANSPORT
            case 4144: // SHMX_EHOSTGONE
            case ECONNREFUSED:
                return new ConnectionRefusedException(m, c, text);
            case 4130: // SHMX_ECORRUPT
            case 4131: // SHMX_EBADSLOT
            case 4132: // SHMX_EHEADER
            case 4133: // SHMX_ENOTREADY
            case 4134: // SHMX_ESEALS
            case 4135: // SHMX_EPERMS
                return new SegmentValidationException(m, c, text);
            case 4123: // SHMX_ECONFIG
                return new ConfigurationException(m, c, text);
            case EADDRINUSE:
                return new HostExistsException(m, c, text);
            default:
                return new ShmxException(m, c, text);
        }
    }
}
