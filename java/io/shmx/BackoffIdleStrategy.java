package io.shmx;

import java.util.concurrent.locks.LockSupport;

/**
 * Spins, then yields, then parks with a doubling duration up to a cap, the
 * way Agrona's {@code BackoffIdleStrategy} does. Not thread-safe: one
 * instance per polling thread.
 */
public final class BackoffIdleStrategy implements IdleStrategy {
    /** Default spins before yielding. */
    public static final long DEFAULT_MAX_SPINS = 10_000;
    /** Default yields before parking. */
    public static final long DEFAULT_MAX_YIELDS = 50;
    /** Default first park (1 microsecond). */
    public static final long DEFAULT_MIN_PARK_NANOS = 1_000;
    /** Default longest park (1 millisecond). */
    public static final long DEFAULT_MAX_PARK_NANOS = 1_000_000;

    private final long maxSpins;
    private final long maxYields;
    private final long minParkNanos;
    private final long maxParkNanos;
    private long spins;
    private long yields;
    private long parkNanos;

    /** Creates a strategy with the defaults (10000 spins, 50 yields, parks of 1 us up to 1 ms). */
    public BackoffIdleStrategy() {
        this(DEFAULT_MAX_SPINS, DEFAULT_MAX_YIELDS, DEFAULT_MIN_PARK_NANOS, DEFAULT_MAX_PARK_NANOS);
    }

    /**
     * @param maxSpins     spins before yielding
     * @param maxYields    yields before parking
     * @param minParkNanos first park duration
     * @param maxParkNanos cap of the doubling park duration
     */
    public BackoffIdleStrategy(long maxSpins, long maxYields, long minParkNanos, long maxParkNanos) {
        if (maxSpins < 0 || maxYields < 0 || minParkNanos < 1 || maxParkNanos < minParkNanos) {
            throw new IllegalArgumentException("need maxSpins, maxYields >= 0 and 1 <= minParkNanos <= maxParkNanos");
        }
        this.maxSpins = maxSpins;
        this.maxYields = maxYields;
        this.minParkNanos = minParkNanos;
        this.maxParkNanos = maxParkNanos;
        this.parkNanos = minParkNanos;
    }

    /** Spins, yields or parks, depending on how long the loop has been idle. */
    @Override
    public void idle() {
        if (spins < maxSpins) {
            spins++;
            Thread.onSpinWait();
        } else if (yields < maxYields) {
            yields++;
            Thread.yield();
        } else {
            LockSupport.parkNanos(parkNanos);
            parkNanos = Math.min(parkNanos << 1, maxParkNanos);
        }
    }

    /** Back to spinning. */
    @Override
    public void reset() {
        spins = 0;
        yields = 0;
        parkNanos = minParkNanos;
    }
}
