package io.shmx.tools;

import java.util.ArrayList;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The threads of one tunnel end: named daemon threads (so a stuck one can
 * never keep the JVM alive), tracked until they return, so that closing the
 * end can wait for all of them with a bound.
 */
final class TunnelThreads {
    private final String prefix;
    private final Set<Thread> live = ConcurrentHashMap.newKeySet();

    /** @param prefix thread names begin with it, e.g. "tunnel-listen-" */
    TunnelThreads(String prefix) {
        this.prefix = prefix;
    }

    /**
     * Starts {@code task} on a new daemon thread named prefix + name.
     *
     * @param name the thread's name after the prefix
     * @param task what it runs
     * @return the started thread
     */
    Thread start(String name, Runnable task) {
        Thread t = new Thread(() -> {
            try {
                task.run();
            } finally {
                live.remove(Thread.currentThread());
            }
        }, prefix + name);
        t.setDaemon(true);
        live.add(t);
        t.start();
        return t;
    }

    /**
     * Waits until every thread started here has returned, at most {@code nanos}.
     *
     * @param nanos the bound
     * @return true if all returned, false if some still run after the bound
     */
    boolean joinAll(long nanos) {
        long deadline = System.nanoTime() + nanos;
        while (!live.isEmpty()) {
            for (Thread t : new ArrayList<>(live)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return live.isEmpty();
                }
                try {
                    t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
        return true;
    }

    /** @return how many threads started here are still running */
    int running() {
        return live.size();
    }
}
