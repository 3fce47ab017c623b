package io.shmx;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** Shared helpers of the JUnit tests: unique host names, the C programs, a connected host/guest pair. */
public final class TestSupport {
    private static final AtomicInteger COUNTER = new AtomicInteger();

    private TestSupport() {
    }

    /** @return a host name unique to this JVM and call */
    public static String uniqueName(String prefix) {
        return prefix + "-" + ProcessHandle.current().pid() + "-" + COUNTER.incrementAndGet();
    }

    /** @return the CMake build directory the build used (-Dshmx.build.dir, default ./build) */
    public static Path buildDir() {
        String b = System.getProperty("shmx.build.dir");
        if (b != null && !b.isEmpty()) {
            return Path.of(b);
        }
        String home = System.getProperty("shmx.home", ".");
        return Path.of(home, "build");
    }

    /** @return build/bin/NAME */
    public static Path program(String name) {
        return buildDir().resolve("bin").resolve(name);
    }

    /** @return true if build/bin/NAME exists and is executable */
    public static boolean hasProgram(String name) {
        return Files.isExecutable(program(name));
    }

    /** Nanoseconds of {@code seconds}. */
    public static long seconds(long seconds) {
        return TimeUnit.SECONDS.toNanos(seconds);
    }

    /** Payload byte k of message id: (k * 7 + id * 13) mod 256, the ping pattern. */
    public static byte[] pattern(int size, long id) {
        byte[] b = new byte[size];
        for (int k = 0; k < size; k++) {
            b[k] = (byte) (k * 7 + id * 13);
        }
        return b;
    }

    /** A host with one accepted guest. */
    public static final class Pair implements AutoCloseable {
        public final Host host;
        public final Channel hostChannel;
        public final Guest guest;

        Pair(Host host, Channel hostChannel, Guest guest) {
            this.host = host;
            this.hostChannel = hostChannel;
            this.guest = guest;
        }

        public Channel guestChannel() {
            return guest.channel();
        }

        @Override
        public void close() {
            guest.close();
            host.close();
        }
    }

    /** Creates a host (config may be null), connects a guest over {@code transport} and accepts it. */
    public static Pair connect(ShmxConfig config, Transport transport) throws Exception {
        Host host = Host.create(uniqueName("jt"), config);
        try {
            CompletableFuture<Guest> guest = CompletableFuture.supplyAsync(
                    () -> Guest.connect(host.name(), transport, Duration.ofSeconds(10)));
            Channel ch = host.accept(Duration.ofSeconds(10));
            if (ch == null) {
                throw new AssertionError("no guest within 10 s");
            }
            return new Pair(host, ch, guest.get(10, TimeUnit.SECONDS));
        } catch (Exception | Error e) {
            host.close();
            throw e;
        }
    }
}
