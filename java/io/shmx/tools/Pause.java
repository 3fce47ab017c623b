package io.shmx.tools;

/** A short sleep for retry loops of the tools: a persistent failure must not spin a core. */
final class Pause {
    private Pause() {
    }

    /**
     * Sleeps, keeping an interrupt as the thread's interrupt status (the loop checks its own stop flag).
     *
     * @param millis how long
     */
    static void quietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
