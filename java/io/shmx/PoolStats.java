package io.shmx;

/**
 * One size class of a host's pool, counted by slot state: a diagnostic
 * snapshot from {@link Host#poolStats()}. The counts are taken by walking the
 * shared free lists and slot states while guests may be changing them, so a
 * busy pool can give a momentarily inconsistent picture; on a quiet pool
 * {@code free + claimed + sent == total} when nothing leaked.
 *
 * @param sizeClass the class number (0 is the smallest slot size)
 * @param free      slots on the free lists
 * @param claimed   slots claimed by a sender and not yet sent
 * @param sent      slots sent and not yet released by their receiver
 * @param total     slots of the class (the segment's plus every extent's)
 */
public record PoolStats(int sizeClass, int free, int claimed, int sent, int total) {
    /** @return true if every slot of the class is free */
    public boolean allFree() {
        return free == total && claimed == 0 && sent == 0;
    }
}
