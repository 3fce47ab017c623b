package io.shmx;

import java.time.Instant;
import java.util.Optional;

/**
 * One name found by {@link HostNames#list()} or removed by {@link HostNames#clean()}:
 * the files of one host, or leftovers of one that has no lock file.
 *
 * @param name        the host name
 * @param live        a host holds the name (its lock; without a lock file: its socket accepts, or
 *                    its named segment is guarded)
 * @param otherBoot   the files come from an earlier boot of this machine (certainly stale)
 * @param pid         the host's process id from its record, 0 when unknown; shown to people only,
 *                    never used to judge liveness
 * @param startTime   when the host started, if its record tells
 * @param segmentMode the host's segment mode from its record ({@link SegmentMode#MEMFD} when unknown)
 * @param lockPath    the lock file, "" when there is none (for a removed entry: was not removed)
 * @param socketPath  the socket file, "" when there is none
 * @param segmentPath the named segment file, "" when there is none
 */
public record HostEntry(String name, boolean live, boolean otherBoot, long pid, Optional<Instant> startTime,
        SegmentMode segmentMode, String lockPath, String socketPath, String segmentPath) {

    /**
     * One line for people: {@code NAME  live|stale  pid=...  socket=...  [segment=...]}, with
     * {@code started=...} when known and {@code (other boot)} for leftovers of an earlier boot.
     *
     * @return the line, without a line break
     */
    public String describe() {
        StringBuilder b = new StringBuilder();
        b.append(name).append("  ").append(live ? "live" : "stale");
        b.append("  pid=").append(pid > 0 ? Long.toString(pid) : "?");
        b.append("  socket=").append(socketPath.isEmpty() ? "-" : socketPath);
        if (!segmentPath.isEmpty()) {
            b.append("  segment=").append(segmentPath);
        }
        startTime.ifPresent(t -> b.append("  started=").append(t));
        if (otherBoot) {
            b.append("  (other boot)");
        }
        return b.toString();
    }
}
