package io.shmx.tools;

import io.shmx.HostEntry;
import io.shmx.HostNames;
import io.shmx.ShmxException;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * {@code shmx ls} and {@code shmx clean}: the hosts of this user, live and
 * stale, and removing the stale ones (see {@link HostNames}).
 *
 * <pre>
 * scripts/shmx ls
 * demo  live  pid=4711  socket=/run/user/1000/shmx/demo.sock
 * old   stale  pid=4242  socket=/run/user/1000/shmx/old.sock  segment=/dev/shm/shmx-1000-1a2b3c4d-old
 * scripts/shmx clean
 * removed old: lock=... socket=... segment=...
 * removed 1 stale host(s)
 * </pre>
 */
final class HostsTool {
    static final String USAGE_LS = "ls [--socket-dir DIR] [--shm-dir DIR]";
    static final String USAGE_CLEAN = "clean [--socket-dir DIR] [--shm-dir DIR]";

    private HostsTool() {
    }

    /**
     * Lists every host of this user, one line each.
     *
     * @param argv options after the command
     * @param out  where the lines go
     * @param err  where errors go
     * @return the exit status
     */
    static int ls(String[] argv, PrintStream out, PrintStream err) {
        Path[] dirs = dirs("ls", USAGE_LS, argv, out, err);
        if (dirs == null) {
            return Main.EXIT_USAGE;
        }
        if (dirs.length == 0) {
            return Main.EXIT_OK; // --help
        }
        List<HostEntry> entries;
        try {
            entries = HostNames.list(dirs[0], dirs[1]);
        } catch (ShmxException e) {
            err.println("ls: " + e.getMessage());
            return Main.EXIT_FAILURE;
        }
        for (HostEntry e : entries) {
            out.println(e.describe());
        }
        return Main.EXIT_OK;
    }

    /**
     * Removes the stale hosts of this user and says what went.
     *
     * @param argv options after the command
     * @param out  where the report goes
     * @param err  where errors go
     * @return the exit status
     */
    static int clean(String[] argv, PrintStream out, PrintStream err) {
        Path[] dirs = dirs("clean", USAGE_CLEAN, argv, out, err);
        if (dirs == null) {
            return Main.EXIT_USAGE;
        }
        if (dirs.length == 0) {
            return Main.EXIT_OK;
        }
        List<HostEntry> removed;
        try {
            removed = HostNames.clean(dirs[0], dirs[1]);
        } catch (ShmxException e) {
            err.println("clean: " + e.getMessage());
            return Main.EXIT_FAILURE;
        }
        for (HostEntry e : removed) {
            StringBuilder b = new StringBuilder("removed ").append(e.name()).append(':');
            if (!e.lockPath().isEmpty()) {
                b.append(" lock=").append(e.lockPath());
            }
            if (!e.socketPath().isEmpty()) {
                b.append(" socket=").append(e.socketPath());
            }
            if (!e.segmentPath().isEmpty()) {
                b.append(" segment=").append(e.segmentPath());
            }
            out.println(b);
        }
        out.println("removed " + removed.size() + " stale host(s)");
        return Main.EXIT_OK;
    }

    /** The two directories (null: default), an empty array after --help, or null after a usage error. */
    private static Path[] dirs(String cmd, String usage, String[] argv, PrintStream out, PrintStream err) {
        try {
            Args a = Args.parse(argv, Set.of("socket-dir", "shm-dir"), Set.of("help"));
            if (a.flag("help")) {
                out.println("usage: shmx " + usage);
                return new Path[0];
            }
            String s = a.string("socket-dir", null);
            String m = a.string("shm-dir", null);
            return new Path[] {s == null ? null : Path.of(s), m == null ? null : Path.of(m)};
        } catch (Args.UsageException e) {
            err.println(cmd + ": " + e.getMessage());
            err.println("usage: shmx " + usage);
            return null;
        }
    }
}
