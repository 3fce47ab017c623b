package io.shmx;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A private socket directory and segment directory holding hosts in every
 * state, for the HostNames and ls/clean tests: they must never look at the
 * user's real ones, where other programs' hosts live.
 *
 * <ul>
 *   <li>{@code live}: a lock file and a segment of this boot, locked by a child JVM
 *       ({@link LockHolder}) as a host locks them, and a socket this JVM listens on;</li>
 *   <li>{@code dead}: a lock file with a record of this JVM's boot, not held, a socket nobody
 *       listens on;</li>
 *   <li>{@code orphan}: a socket without a lock file, nobody listening;</li>
 *   <li>{@code old}: a segment of another boot.</li>
 * </ul>
 */
public final class NamesFixture implements AutoCloseable {
    public final Path socketDir;
    public final Path shmDir;
    public final String uid;
    private final List<AutoCloseable> held = new ArrayList<>();
    private Process holder;

    public NamesFixture() throws IOException {
        socketDir = Files.createTempDirectory("shmxnames", PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rwx------")));
        shmDir = Files.createTempDirectory("shmxshm");
        uid = String.valueOf(Files.getAttribute(socketDir, "unix:uid"));
        try {
            String boot = Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).trim();
            holder = startHolder(writeFile(socketDir.resolve("live.lock"), ""), writeFile(segment("live", boot), "x"));
            writeFile(socketDir.resolve("live.lock"), record(holder.pid(), boot));
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            held.add(server);
            server.bind(UnixDomainSocketAddress.of(socketDir.resolve("live.sock")));

            writeFile(socketDir.resolve("dead.lock"), record(1, boot));
            staleSocket(socketDir.resolve("dead.sock"));
            staleSocket(socketDir.resolve("orphan.sock"));
            writeFile(segment("old", "0badb007-0000"), "x");
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    /** @return the pid of the process that holds live.lock */
    public long holderPid() {
        return holder.pid();
    }

    /*
     * The lock is held by another process: a POSIX lock (what FileChannel.lock takes) held by
     * this JVM would be dropped by the kernel as soon as the library, in this same process,
     * closes its own descriptor of the file after probing it.
     */
    private static Process startHolder(Path lockFile, Path segment) throws IOException {
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
                System.getProperty("java.class.path"), LockHolder.class.getName(), lockFile.toString(),
                segment.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = r.readLine();
        if (!"locked".equals(line)) {
            p.destroyForcibly();
            throw new IOException("the lock holder did not lock " + lockFile + " and " + segment + ": said " + line);
        }
        return p;
    }

    /**
     * Holds a write lock on the lock file args[0] and a read lock on the segment args[1], as a
     * host does, until its standard input closes (the test ends or dies).
     */
    public static final class LockHolder {
        public static void main(String[] args) throws IOException {
            try (FileChannel lockFile = FileChannel.open(Path.of(args[0]), StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
                    FileChannel segment = FileChannel.open(Path.of(args[1]), StandardOpenOption.READ);
                    FileLock exclusive = lockFile.lock();
                    FileLock shared = segment.lock(0, Long.MAX_VALUE, true)) {
                System.out.println("locked");
                System.out.flush();
                while (System.in.read() >= 0) {
                    // wait for EOF
                }
            }
        }
    }

    /** @return the segment file of {@code name} for the boot whose id is {@code boot} */
    public Path segment(String name, String boot) {
        return shmDir.resolve("shmx-" + uid + "-" + boot.substring(0, 8) + "-" + name);
    }

    private static String record(long pid, String boot) {
        return "shmx-names 1\npid " + pid + "\nboot " + boot + "\nstart 1700000000\nsegment memfd -\nsocket -\n";
    }

    private static Path writeFile(Path p, String text) throws IOException {
        Files.writeString(p, text, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-------"));
        return p;
    }

    /** A socket file nobody listens on: Java leaves the file behind when the channel closes. */
    private static void staleSocket(Path p) throws IOException {
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(p));
        }
    }

    @Override
    public void close() throws IOException {
        if (holder != null) {
            holder.destroyForcibly();
            try {
                holder.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            holder = null;
        }
        for (int i = held.size() - 1; i >= 0; i--) {
            try {
                held.get(i).close();
            } catch (Exception e) {
                // best effort: the directories go anyway
            }
        }
        held.clear();
        for (Path dir : new Path[] {socketDir, shmDir}) {
            if (dir != null && Files.exists(dir)) {
                try (Stream<Path> s = Files.walk(dir)) {
                    for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
    }
}
