package io.shmx;

/**
 * Never gives up the CPU: each idle is one {@link Thread#onSpinWait()}. The
 * lowest latency, at the price of a whole core.
 */
public final class BusySpinIdleStrategy implements IdleStrategy {
    /** The shared instance (stateless). */
    public static final BusySpinIdleStrategy INSTANCE = new BusySpinIdleStrategy();

    /** Creates a busy-spin strategy. */
    public BusySpinIdleStrategy() {
    }

    /** One spin-wait hint. */
    @Override
    public void idle() {
        Thread.onSpinWait();
    }

    /** Nothing to reset. */
    @Override
    public void reset() {
    }
}
