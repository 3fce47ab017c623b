package io.shmx;

/**
 * How a polling loop spends the time when it found no work, in the style of
 * Agrona's {@code IdleStrategy}. Implementations: {@link BusySpinIdleStrategy},
 * {@link YieldingIdleStrategy}, {@link BackoffIdleStrategy}.
 *
 * <p>The blocking native waits (spin, yield, then a futex sleep in C; see
 * {@link Channel#setNativeIdle(long, long)}) are the default for a receive
 * with a timeout; an idle strategy is for loops that poll with timeout 0,
 * for example {@link Channel#receive(Message, IdleStrategy, long)} or a loop
 * over several channels.
 *
 * <pre>{@code
 * IdleStrategy idle = new BackoffIdleStrategy();
 * while (running) {
 *     int work = pollAllChannels();   // receive(m, 0) on each
 *     idle.idle(work);
 * }
 * }</pre>
 */
public interface IdleStrategy {
    /**
     * Idles if {@code workCount} is 0, and resets the strategy's state otherwise.
     *
     * @param workCount how much work the last poll did
     */
    default void idle(int workCount) {
        if (workCount > 0) {
            reset();
        } else {
            idle();
        }
    }

    /** Idles once (the loop found no work), escalating per the strategy. */
    void idle();

    /** Forgets the escalation: the next idle starts from the cheapest step. */
    void reset();
}
