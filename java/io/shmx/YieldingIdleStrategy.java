package io.shmx;

/** Each idle is one {@link Thread#yield()}: low latency, other threads still get the core. */
public final class YieldingIdleStrategy implements IdleStrategy {
    /** The shared instance (stateless). */
    public static final YieldingIdleStrategy INSTANCE = new YieldingIdleStrategy();

    /** Creates a yielding strategy. */
    public YieldingIdleStrategy() {
    }

    /** One yield. */
    @Override
    public void idle() {
        Thread.yield();
    }

    /** Nothing to reset. */
    @Override
    public void reset() {
    }
}
