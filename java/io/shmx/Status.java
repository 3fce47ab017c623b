package io.shmx;

import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

/**
 * Status codes returned by the hot-path methods of {@link Channel}. Success
 * is {@link #OK} (0) or a positive value (a message id, a count, a length);
 * everything else is a negative code from {@code include/shmx/errors.h}
 * ({@code -SHMX_E...}) or a negative {@code errno}. "Would block", "empty" and
 * "closed" are ordinary outcomes, never exceptions.
 *
 * <pre>{@code
 * long id = channel.send(Channel.TYPE_DATA, bytes, 0, bytes.length, 0);
 * if (id == Status.WOULD_BLOCK) { ... try again later ... }
 * else if (id < 0) System.err.println(Status.toString((int) id));
 * }</pre>
 */
public final class Status {
    private Status() {
    }

    /** Success. */
    public static final int OK = 0;
    /** Ring full or pool empty and no time left to wait ({@code -SHMX_EWOULDBLOCK}). */
    public static final int WOULD_BLOCK = -4110;
    /** Nothing to receive within the timeout ({@code -SHMX_EEMPTY}). */
    public static final int EMPTY = -4111;
    /** The channel was closed by either side, and drained ({@code -SHMX_ECLOSED}). */
    public static final int CLOSED = -4112;
    /** The destination is too small for the message; nothing was consumed ({@code -SHMX_ESHORT}). */
    public static final int BUFFER_TOO_SMALL = -4097;
    /** The received message failed its CRC-32 check and was dropped ({@code -SHMX_ECRC}). */
    public static final int CRC_MISMATCH = -4103;
    /** Payload larger than the channel allows ({@code -SHMX_ETOOBIG}). */
    public static final int TOO_BIG = -4101;
    /** The peer broke the ring protocol ({@code -SHMX_ECORRUPT}): close the channel. */
    public static final int CORRUPT = -4130;
    /** A slot reference was invalid or reclaimed ({@code -SHMX_EBADSLOT}). */
    public static final int BAD_SLOT = -4131;
    /**
     * The host is gone (guest side, {@code -SHMX_EHOSTGONE}). Channel calls throw {@link HostGoneException}
     * with this code rather than return it.
     */
    public static final int HOST_GONE = -4144;
    /**
     * The host expelled this guest for leaving its messages unconsumed too long ({@code -SHMX_EEXPELLED}).
     * Channel calls throw {@link ExpelledException} with this code rather than return it.
     */
    public static final int EXPELLED = -4146;
    /** A fragment of another message interrupted a message ({@code -SHMX_EFRAGMENT}). */
    public static final int FRAGMENT = -4136;

    private static final String[] SHMX_NAMES = new String[64];

    static {
        String[][] names = {
            {"4096", "SHMX_EBASE"}, {"4097", "SHMX_ESHORT"}, {"4098", "SHMX_EMAGIC"}, {"4099", "SHMX_EVERSION"},
            {"4100", "SHMX_EFLAGS"}, {"4101", "SHMX_ETOOBIG"}, {"4102", "SHMX_ETRUNC"}, {"4103", "SHMX_ECRC"},
            {"4110", "SHMX_EWOULDBLOCK"}, {"4111", "SHMX_EEMPTY"}, {"4112", "SHMX_ECLOSED"},
            {"4120", "SHMX_EINVAL"}, {"4121", "SHMX_ESTATE"}, {"4122", "SHMX_EORDER"}, {"4123", "SHMX_ECONFIG"},
            {"4130", "SHMX_ECORRUPT"}, {"4131", "SHMX_EBADSLOT"}, {"4132", "SHMX_EHEADER"},
            {"4133", "SHMX_ENOTREADY"}, {"4134", "SHMX_ESEALS"}, {"4135", "SHMX_EPERMS"},
            {"4136", "SHMX_EFRAGMENT"},
            {"4140", "SHMX_EPROTO"}, {"4141", "SHMX_EPEERCRED"}, {"4142", "SHMX_EFULL"},
            {"4143", "SHMX_ETRANSPORT"}, {"4144", "SHMX_EHOSTGONE"}, {"4145", "SHMX_ENOHOST"},
            {"4146", "SHMX_EEXPELLED"}, {"4147", "SHMX_EBACKOFF"},
        };
        for (String[] n : names) {
            SHMX_NAMES[Integer.parseInt(n[0]) - 4096] = n[1];
        }
    }

    /**
     * The symbolic name of a status or code.
     *
     * @param status 0, a negative code, or a positive success value
     * @return e.g. {@code "OK"}, {@code "SHMX_EEMPTY"}, {@code "ETIMEDOUT"}, {@code "errno 99"}
     */
    public static String name(long status) {
        if (status >= 0) {
            return status == 0 ? "OK" : "OK(" + status + ")";
        }
        long c = -status;
        if (c >= 4096 && c < 4096 + SHMX_NAMES.length && SHMX_NAMES[(int) (c - 4096)] != null) {
            return SHMX_NAMES[(int) (c - 4096)];
        }
        switch ((int) c) {
            case 1: return "EPERM";
            case 2: return "ENOENT";
            case 4: return "EINTR";
            case 9: return "EBADF";
            case 11: return "EAGAIN";
            case 12: return "ENOMEM";
            case 13: return "EACCES";
            case 17: return "EEXIST";
            case 22: return "EINVAL";
            case 24: return "EMFILE";
            case 28: return "ENOSPC";
            case 32: return "EPIPE";
            case 36: return "ENAMETOOLONG";
            case 38: return "ENOSYS";
            case 98: return "EADDRINUSE";
            case 104: return "ECONNRESET";
            case 110: return "ETIMEDOUT";
            case 111: return "ECONNREFUSED";
            default: return "errno " + c;
        }
    }

    /**
     * A readable description: the name and, when the native library is
     * loaded, {@code shmx_strerror}'s sentence. Not for the hot path (it allocates).
     *
     * @param status 0, a negative code, or a positive success value
     * @return for example {@code "SHMX_EEMPTY (-4111): nothing to receive ..."}
     */
    public static String toString(long status) {
        if (status >= 0) {
            return name(status);
        }
        String text = null;
        if (status >= Integer.MIN_VALUE) {
            try {
                NativeLoader.ensureLoaded();
                text = Native.strerror((int) status);
            } catch (RuntimeException | LinkageError e) {
                text = null;
            }
        }
        return name(status) + " (" + status + ")" + (text != null ? ": " + text : "");
    }

    /**
     * @param status a value returned by a channel method
     * @return true for {@link #OK} and positive results
     */
    public static boolean isOk(long status) {
        return status >= 0;
    }
}
