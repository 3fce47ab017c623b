package io.shmx.internal;

/**
 * Where libshmx's log messages go in a JVM: {@code System.Logger} "io.shmx".
 * {@code JNI_OnLoad} installs a C handler ({@code shmx_log_set_handler}) that
 * calls {@link #log}, instead of the C default of one "shmx: warning: ..." line
 * on stderr, so each message appears once, in the application's logging. The
 * library logs only what an operator should know: a hybrid fallback to the
 * Unix socket, a guest expelled.
 */
public final class NativeLog {
    private static final System.Logger LOGGER = System.getLogger("io.shmx");

    private NativeLog() {
    }

    /**
     * Called from C (native/jni/shmx_jni_liveness.c), on any thread.
     *
     * @param level   enum shmx_log_level: 1 warning, 2 info
     * @param message one line
     */
    static void log(int level, String message) {
        LOGGER.log(level == 1 ? System.Logger.Level.WARNING : System.Logger.Level.INFO, "shmx: " + message);
    }
}
