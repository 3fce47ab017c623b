package io.shmx;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A hostile guest JVM for {@link SegmentAttackProcessTest} (RELIABILITY.md S5),
 * or a JVM host under a file-size limit. Prints one line per outcome.
 *
 * <ul>
 * <li>{@code shrink NAME}: connects over shm, reopens every shmx memfd it holds through
 * /proc/self/fd read-write and tries to shrink and grow it; prints {@code REFUSED what: message}
 * or {@code RESIZED what}; then {@code ATTACKED n} and a round trip.</li>
 * <li>{@code header NAME}: connects, writes a four times larger total size into the shared
 * header, prints {@code ATTACKED 1} and does a round trip.</li>
 * <li>{@code limit NAME}: creates a host with shm only ({@code SHMONLY class code}) and one with
 * both transports ({@code FALLBACK transports}); run under {@code prlimit --fsize}.</li>
 * </ul>
 * A round trip: sends 100 bytes, waits for 100 bytes back, prints {@code ROUNDTRIP ok}.
 */
public final class SegmentAttacker {
    private SegmentAttacker() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String name = args[1];
        if (mode.equals("limit")) {
            limit(name);
            return;
        }
        try (Guest guest = Guest.connect(name, Transport.SHM, Duration.ofSeconds(10))) {
            List<Path> fds = shmxMemfds(name);
            int n = 0;
            for (Path fd : fds) {
                if (mode.equals("shrink")) {
                    try (RandomAccessFile f = new RandomAccessFile(fd.toFile(), "rw")) {
                        long len = f.length();
                        attempt("setLength-shrink", () -> f.setLength(4096));
                        attempt("truncate", () -> f.getChannel().truncate(0));
                        attempt("setLength-grow", () -> f.setLength(len * 2));
                        System.out.println("LENGTH " + f.length() + " WAS " + len);
                    }
                } else {
                    try (RandomAccessFile f = new RandomAccessFile(fd.toFile(), "rw")) {
                        MappedByteBuffer m = f.getChannel().map(FileChannel.MapMode.READ_WRITE, 0, 4096);
                        m.order(ByteOrder.LITTLE_ENDIAN);
                        m.putLong(16, m.getLong(16) * 4); // total_bytes (layout.h)
                        m.force();
                    }
                }
                n++;
            }
            System.out.println("ATTACKED " + n);
            Channel ch = guest.channel();
            long id = ch.send(Channel.TYPE_DATA, TestSupport.pattern(100, 1), 0, 100, TestSupport.seconds(5));
            if (id <= 0) {
                throw new AssertionError("send: " + Status.toString(id));
            }
            byte[] back = ch.receiveMessage(new MessageInfo(), TestSupport.seconds(10));
            System.out.println(back != null && back.length == 100 ? "ROUNDTRIP ok" : "ROUNDTRIP bad");
            System.out.flush();
        }
    }

    private interface Attempt {
        void run() throws IOException;
    }

    private static void attempt(String what, Attempt a) {
        try {
            a.run();
            System.out.println("RESIZED " + what);
        } catch (IOException e) {
            System.out.println("REFUSED " + what + ": " + e.getMessage());
        }
    }

    /** The /proc/self/fd entries of this process that are memfds named "shmx:NAME". */
    private static List<Path> shmxMemfds(String name) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> d = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path p : d) {
                try {
                    String target = Files.readSymbolicLink(p).toString();
                    if (target.startsWith("/memfd:shmx:" + name + " ")) {
                        out.add(p);
                    }
                } catch (IOException e) {
                    // closed meanwhile (the directory stream's own fd)
                }
            }
        }
        return out;
    }

    private static void limit(String name) {
        ShmxConfig shmOnly = ShmxConfig.builder().transports(Transport.SHM).build();
        try (Host h = Host.create(name, shmOnly)) {
            System.out.println("SHMONLY created " + h.transports());
        } catch (ShmxException e) {
            System.out.println("SHMONLY " + e.getClass().getSimpleName() + " " + e.codeName() + " " + e.getMessage());
        }
        try (Host h = Host.create(name, ShmxConfig.defaults())) {
            System.out.println("FALLBACK " + h.transports());
        } catch (ShmxException e) {
            System.out.println("FALLBACK " + e.getClass().getSimpleName() + " " + e.getMessage());
        }
        System.out.flush();
    }
}
