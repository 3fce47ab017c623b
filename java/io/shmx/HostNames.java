package io.shmx;

import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The hosts of this user, live and stale, and cleaning up after the dead
 * ones: the Java face of {@code include/shmx/names.h}.
 *
 * <p>A host holds a lock on {@code NAME.lock} in its socket directory for its
 * whole life; the kernel drops the lock however the host dies, so "live"
 * never depends on a process id. A starting host already removes its own
 * name's leftovers; {@link #clean()} removes everyone's, and never a file of a
 * live host or of a host starting meanwhile.
 *
 * <pre>{@code
 * for (HostEntry e : HostNames.list()) {
 *     System.out.println(e.describe());
 * }
 * List<HostEntry> removed = HostNames.clean();
 * }</pre>
 */
public final class HostNames {
    /** Strings per entry in what the natives return; mirrors the enum in native/jni/shmx_jni_names.c. */
    private static final int FIELDS = 9;

    private HostNames() {
    }

    /**
     * Every host of this user in the default socket directory, and leftovers
     * without a lock file (sockets nobody listens on, named segments of an
     * earlier boot or of no live host). Looks only.
     *
     * @return the entries, hosts with a lock file first
     * @throws ShmxException if the socket directory is unsafe (not a 0700 directory of
     *                       this user) or cannot be read
     */
    public static List<HostEntry> list() {
        return list(null, null);
    }

    /**
     * {@link #list()} in explicit directories, for another {@code XDG_RUNTIME_DIR} or tests.
     *
     * @param socketDir the socket directory, or null for the default
     * @param shmDir    where named segments live, or null for /dev/shm
     * @return the entries
     * @throws ShmxException if the socket directory is unsafe or cannot be read
     */
    public static List<HostEntry> list(Path socketDir, Path shmDir) {
        NativeLoader.ensureLoaded();
        return parse(Native.namesList(text(socketDir), text(shmDir)));
    }

    /**
     * Removes every stale entry {@link #list()} would show. For each name it
     * takes the name's lock first, as a starting host does, so a host that
     * starts meanwhile is never hurt; names a host holds are skipped.
     *
     * @return what was removed, one entry per name (only removed paths are set)
     * @throws ShmxException if the socket directory is unsafe or a removal failed
     */
    public static List<HostEntry> clean() {
        return clean(null, null);
    }

    /**
     * {@link #clean()} in explicit directories.
     *
     * @param socketDir the socket directory (must exist), or null for the default
     * @param shmDir    where named segments live, or null for /dev/shm
     * @return what was removed
     * @throws ShmxException if the socket directory is unsafe or a removal failed
     */
    public static List<HostEntry> clean(Path socketDir, Path shmDir) {
        NativeLoader.ensureLoaded();
        return parse(Native.namesClean(text(socketDir), text(shmDir)));
    }

    private static String text(Path p) {
        return p == null ? null : p.toString();
    }

    private static List<HostEntry> parse(String[] f) {
        List<HostEntry> out = new ArrayList<>(f.length / FIELDS);
        for (int i = 0; i + FIELDS <= f.length; i += FIELDS) {
            long start = Long.parseLong(f[i + 4]);
            out.add(new HostEntry(f[i], "1".equals(f[i + 1]), "0".equals(f[i + 2]), Long.parseLong(f[i + 3]),
                    start > 0 ? Optional.of(Instant.ofEpochSecond(start)) : Optional.empty(),
                    SegmentMode.fromCode(Integer.parseInt(f[i + 5])), f[i + 6], f[i + 7], f[i + 8]));
        }
        return List.copyOf(out);
    }
}
