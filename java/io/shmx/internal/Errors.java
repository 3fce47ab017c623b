package io.shmx.internal;

import io.shmx.ConfigurationException;
import io.shmx.ConnectionRefusedException;
import io.shmx.ExpelledException;
import io.shmx.HostExistsException;
import io.shmx.HostGoneException;
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

    /** -SHMX_EHOSTGONE. */
    public static final int EHOSTGONE = -4144;
    /** -SHMX_EEXPELLED. */
    public static final int EEXPELLED = -4146;

    /**
     * Builds the exception for a channel call that found its channel finished
     * for good: {@link HostGoneException} for {@code -SHMX_EHOSTGONE} (the
     * guest's host died or was destroyed), {@link ExpelledException} for
     * {@code -SHMX_EEXPELLED}; any other code as {@link #exception}.
     *
     * @param code      the code the C library returned (sign ignored)
     * @param operation what failed, e.g. {@code receive}
     * @return the typed exception (not thrown)
     */
    public static ShmxException channelException(int code, String operation) {
        int c = code > 0 ? -code : code;
        if (c != EHOSTGONE && c != EEXPELLED) {
            return exception(c, operation, null);
        }
        String text;
        try {
            text = Native.strerror(c);
        } catch (LinkageError e) {
            text = "code " + c;
        }
        String m = operation + " failed: " + text + " (" + Status.name(c) + ", " + c + ")";
        return c == EHOSTGONE ? new HostGoneException(m, c, text) : new ExpelledException(m, c, text);
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
            case 4147: // SHMX_EBACKOFF
            case ECONNREFUSED:
                return new ConnectionRefusedException(m, c, text);
            case 4146: // SHMX_EEXPELLED
                return new ExpelledException(m, c, text);
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
