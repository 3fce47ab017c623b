package io.shmx;

import java.util.OptionalInt;

/**
 * What a {@link Host} reports when one of its guests ends (see
 * {@link Host#onPeerEvent(PeerListener)}): the Java face of a C
 * {@code shmx_peer_event_t}. Immutable.
 *
 * <p>By the time the event is delivered the host has taken back every pool
 * slot the guest held or was writing ({@link #reclaimedSlots()}), closed both
 * rings of its channel (the host's waits wake; messages the guest committed
 * before it ended can still be received, then {@link Status#CLOSED}), and a
 * guest that connects later on the same entry gets a larger epoch.
 */
public final class PeerEvent {
    /** Why a guest ended ({@code enum shmx_peer_reason}). */
    public enum Reason {
        /** The guest closed its channel and hung up. */
        CLOSED(1),
        /** Its bootstrap socket hung up without a close: the process exited or was killed. */
        DIED(2),
        /** A spawned guest's process ended (seen through its pidfd); {@link #exitStatus()} says how. */
        EXITED(3),
        /** It left the host's messages unconsumed for longer than {@link ShmxConfig#livenessMillis()}. */
        EXPELLED(4),
        /**
         * Quarantined: a call of the host's found it breaking the protocol in shared memory;
         * {@link #violation()} says how.
         */
        VIOLATION(5);

        private final int code;

        Reason(int code) {
            this.code = code;
        }

        /** @return the C value ({@code SHMX_PEER_CLOSED} = 1 ... {@code SHMX_PEER_VIOLATION} = 5) */
        public int code() {
            return code;
        }

        /**
         * @param code a C reason value
         * @return the matching constant
         * @throws IllegalArgumentException for an unknown value
         */
        public static Reason fromCode(int code) {
            for (Reason r : values()) {
                if (r.code == code) {
                    return r;
                }
            }
            throw new IllegalArgumentException("unknown peer reason " + code);
        }
    }

    private final int peer;
    private final long epoch;
    private final Reason reason;
    private final int pid;
    private final OptionalInt exitStatus;
    private final int reclaimedSlots;
    private final int violation;
    private final long noticedNanos;

    /**
     * @param peer           the guest's channel index
     * @param epoch          the incarnation that ended (unsigned 32-bit)
     * @param reason         why it ended
     * @param pid            the guest's process id, 0 if unknown
     * @param exitStatus     the wait status, present only for {@link Reason#EXITED}
     * @param reclaimedSlots pool slots taken back
     * @param noticedNanos   when the host noticed, on the {@link System#nanoTime()} clock
     */
    public PeerEvent(int peer, long epoch, Reason reason, int pid, OptionalInt exitStatus, int reclaimedSlots,
            long noticedNanos) {
        this(peer, epoch, reason, pid, exitStatus, reclaimedSlots, 0, noticedNanos);
    }

    /**
     * @param peer           the guest's channel index
     * @param epoch          the incarnation that ended (unsigned 32-bit)
     * @param reason         why it ended
     * @param pid            the guest's process id, 0 if unknown
     * @param exitStatus     the wait status, present only for {@link Reason#EXITED}
     * @param reclaimedSlots pool slots taken back
     * @param violation      for {@link Reason#VIOLATION}, the negative shmx code the host met; else 0
     * @param noticedNanos   when the host noticed, on the {@link System#nanoTime()} clock
     */
    public PeerEvent(int peer, long epoch, Reason reason, int pid, OptionalInt exitStatus, int reclaimedSlots,
            int violation, long noticedNanos) {
        this.peer = peer;
        this.epoch = epoch;
        this.reason = java.util.Objects.requireNonNull(reason, "reason");
        this.pid = pid;
        this.exitStatus = java.util.Objects.requireNonNull(exitStatus, "exitStatus");
        this.reclaimedSlots = reclaimedSlots;
        this.violation = violation;
        this.noticedNanos = noticedNanos;
    }

    /**
     * @return the guest's peer id ({@link Channel#index()} of the host's channel): shm entries are
     *         0 .. maxChannels - 1, uds guests maxChannels + k (k &lt; maxChannels), so the two never collide
     */
    public int peer() {
        return peer;
    }

    /**
     * @return the incarnation that ended ({@link Channel#epoch()} of its channel); a later guest on the same
     *         peer id gets a new one
     */
    public long epoch() {
        return epoch;
    }

    /** @return why the guest ended */
    public Reason reason() {
        return reason;
    }

    /** @return the guest's process id as the kernel named it (peer credentials or spawn), 0 if unknown */
    public int pid() {
        return pid;
    }

    /**
     * @return for {@link Reason#EXITED}, the raw wait status ({@code WIFEXITED}/{@code WEXITSTATUS} encoding:
     *         {@code status >> 8} is the exit code of a normal exit, {@code status & 0x7f} the terminating
     *         signal); empty for every other reason
     */
    public OptionalInt exitStatus() {
        return exitStatus;
    }

    /** @return how many pool slots the host took back from the guest */
    public int reclaimedSlots() {
        return reclaimedSlots;
    }

    /**
     * @return for {@link Reason#VIOLATION}, the negative shmx code the host's call met
     *         ({@code -SHMX_ECORRUPT} for its ring, {@code -SHMX_EBADSLOT} for a slot reference;
     *         {@link Status} names it); 0 for every other reason
     */
    public int violation() {
        return violation;
    }

    /**
     * @return when the host noticed the end, in nanoseconds of {@code CLOCK_MONOTONIC}: the clock of
     *         {@link System#nanoTime()} on Linux, so {@code System.nanoTime() - noticedNanos()} is the delivery
     *         delay
     */
    public long noticedNanos() {
        return noticedNanos;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof PeerEvent)) {
            return false;
        }
        PeerEvent e = (PeerEvent) o;
        return peer == e.peer && epoch == e.epoch && reason == e.reason && pid == e.pid
                && exitStatus.equals(e.exitStatus) && reclaimedSlots == e.reclaimedSlots
                && violation == e.violation && noticedNanos == e.noticedNanos;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(peer, epoch, reason, pid, exitStatus, reclaimedSlots, violation, noticedNanos);
    }

    @Override
    public String toString() {
        return "PeerEvent{peer=" + peer + ", epoch=" + epoch + ", " + reason + ", pid=" + pid
                + (exitStatus.isPresent() ? ", exitStatus=0x" + Integer.toHexString(exitStatus.getAsInt()) : "")
                + ", reclaimed=" + reclaimedSlots + (violation != 0 ? ", violation=" + violation : "")
                + ", noticedNanos=" + noticedNanos + "}";
    }
}
