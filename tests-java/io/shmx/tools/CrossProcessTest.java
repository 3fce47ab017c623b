package io.shmx.tools;

import static io.shmx.TestSupport.pattern;
import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.shmx.Channel;
import io.shmx.Guest;
import io.shmx.Message;
import io.shmx.MessageInfo;
import io.shmx.MessageOutputStream;
import io.shmx.Status;
import io.shmx.TestSupport;
import io.shmx.Transport;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Real processes, every byte checked: the C guest against a Java host, a Java
 * guest against the C host, and a Java guest process against a Java host.
 */
@Tag("cross-process")
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CrossProcessTest {
    private static final Pattern RTT = Pattern.compile(
            "rtt_ns p50=\\d+ p90=\\d+ p99=\\d+ p999=\\d+ max=\\d+ count=(\\d+)");
    private static final Pattern THROUGHPUT = Pattern.compile(
            "throughput msgs_per_s=\\d+ mbytes_per_s=[0-9.]+ count=(\\d+) size=(\\d+)");

    static Stream<Arguments> transportsAndSizes() {
        List<Arguments> list = new ArrayList<>();
        // Around the inline limit, every default class boundary, one frame's maximum, fragments up to 64 MiB.
        for (int s : new int[] {0, 1, 1024, 1025, 4096, 4097, 65536, 65537, MIB - 1, MIB, MIB + 1, 3 * MIB + 5,
            64 * MIB}) {
            list.add(Arguments.of(Transport.SHM, s));
        }
        for (int s : new int[] {1, 4096, 65536, 3 * MIB + 5}) {
            list.add(Arguments.of(Transport.UDS, s));
        }
        return list.stream();
    }

    /** The sizes of transportsAndSizes that fit one frame (a claim's limit). */
    static Stream<Arguments> transportsAndFrameSizes() {
        return transportsAndSizes().filter(a -> (int) a.get()[1] <= MIB);
    }

    static Stream<Arguments> fragmentedSizes() {
        List<Arguments> list = new ArrayList<>();
        for (int s : new int[] {MIB + 1, 2 * MIB, 10 * MIB + 3, 64 * MIB}) {
            list.add(Arguments.of(Transport.SHM, s));
        }
        list.add(Arguments.of(Transport.UDS, 3 * MIB + 5));
        return list.stream();
    }

    private static final int MIB = 1 << 20;

    private static int countFor(int size) {
        return size > 4 * MIB ? 3 : size > MIB ? 10 : size >= 65536 ? 50 : 500;
    }

    private static void assumePrograms(String... names) {
        for (String n : names) {
            assumeTrue(TestSupport.hasProgram(n), "C program " + TestSupport.program(n)
                    + " is missing: build it with cmake (skipping the cross-process test)");
        }
    }

    private static final class Run {
        int exit;
        String out;
        String err;
    }

    private static Run run(List<String> cmd, long timeoutSeconds) throws IOException, InterruptedException {
        Path out = Files.createTempFile("shmx-test", ".out");
        Path err = Files.createTempFile("shmx-test", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                throw new AssertionError("timed out: " + cmd + "\n" + Files.readString(err));
            }
            Run r = new Run();
            r.exit = p.exitValue();
            r.out = Files.readString(out, StandardCharsets.UTF_8);
            r.err = Files.readString(err, StandardCharsets.UTF_8);
            return r;
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    private static PongServer javaHost(String name) {
        return new PongServer(name, EnumSet.of(Transport.SHM, Transport.UDS), 8, -1, false, System.err);
    }

    private static void assertRttLine(Run r, int count, List<String> cmd) {
        assertEquals(0, r.exit, "exit status of " + cmd + "\nstderr: " + r.err);
        var m = RTT.matcher(r.out);
        assertTrue(m.find(), "no rtt_ns line from " + cmd + ": " + r.out);
        assertEquals(count, Integer.parseInt(m.group(1)));
        assertEquals(1, r.out.lines().count(), "exactly one stdout line: " + r.out);
    }

    @ParameterizedTest(name = "{0} {1} bytes")
    @MethodSource("transportsAndSizes")
    void shouldEchoEveryByteToTheCGuestFromAJavaHost(Transport transport, int size) throws Exception {
        assumePrograms("shmx-ping");
        String name = TestSupport.uniqueName("xj");
        try (PongServer host = javaHost(name)) {
            int count = countFor(size);
            List<String> cmd = List.of(TestSupport.program("shmx-ping").toString(), "--name", name, "--transport",
                    transport.name().toLowerCase(), "--size", Integer.toString(size), "--count",
                    Integer.toString(count), "--warmup", size > MIB ? "1" : "10");
            assertRttLine(run(cmd, 90), count, cmd);
            assertEquals(0, host.failures());
        }
    }

    @Test
    void shouldCountSinkMessagesOfTheCGuestInAJavaHost() throws Exception {
        assumePrograms("shmx-ping");
        String name = TestSupport.uniqueName("xjt");
        try (PongServer host = javaHost(name)) {
            for (String t : new String[] {"shm", "uds"}) {
                List<String> cmd = List.of(TestSupport.program("shmx-ping").toString(), "--name", name, "--transport",
                        t, "--size", "100", "--count", "20000", "--throughput");
                Run r = run(cmd, 90);
                assertEquals(0, r.exit, "stderr: " + r.err);
                var m = THROUGHPUT.matcher(r.out);
                assertTrue(m.find(), r.out);
                assertEquals("20000", m.group(1));
                assertEquals("100", m.group(2));
            }
            assertEquals(2, host.guestsServed());
            assertEquals(0, host.failures());
        }
    }

    /** Starts build/bin/shmx-pong and waits for its "listening" line. */
    private static Process startCHost(String name, Path log) throws Exception {
        Process p = new ProcessBuilder(TestSupport.program("shmx-pong").toString(), "--name", name)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile()).start();
        long deadline = System.nanoTime() + seconds(10);
        while (System.nanoTime() < deadline) {
            if (Files.readString(log).contains("pong: listening on " + name)) {
                return p;
            }
            if (!p.isAlive()) {
                throw new AssertionError("shmx-pong exited with " + p.exitValue() + ": " + Files.readString(log));
            }
            Thread.sleep(10);
        }
        p.destroyForcibly();
        throw new AssertionError("shmx-pong did not start: " + Files.readString(log));
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroy();
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest(name = "{0} {1} bytes")
    @MethodSource("transportsAndFrameSizes")
    void shouldGetEveryByteEchoedByTheCHostToAJavaGuest(Transport transport, int size) throws Exception {
        assumePrograms("shmx-pong");
        String name = TestSupport.uniqueName("xc");
        Path log = Files.createTempFile("shmx-pong", ".log");
        Process pong = startCHost(name, log);
        try (Guest guest = Guest.connect(name, transport, Duration.ofSeconds(10))) {
            Channel ch = guest.channel();
            Message reply = new Message();
            int count = Math.min(countFor(size), 100);
            for (long id = 1; id <= count; id++) {
                byte[] payload = pattern(size, id);
                long sent;
                if (id % 2 == 0) {
                    sent = ch.send(Channel.TYPE_DATA, payload, 0, size, seconds(5));
                } else {
                    var c = ch.claim(size, seconds(5));
                    c.putBytes(0, payload, 0, size);
                    sent = c.commit(Channel.TYPE_DATA);
                }
                assertEquals(id, sent);
                assertEquals(Status.OK, ch.receive(reply, seconds(5)), "echo of " + id);
                assertEquals(Channel.TYPE_RESPONSE, reply.type());
                assertEquals(id, reply.id());
                assertEquals(size, reply.length());
                assertEquals(-1, reply.buffer().mismatch(ByteBuffer.wrap(payload)), "echo of " + id + " differs");
                ch.release(reply);
            }
            // sink: count and bytes since the last sink end
            for (int i = 0; i < 10; i++) {
                ch.send(PongServer.TYPE_SINK, new byte[size], 0, size, seconds(5));
            }
            long end = ch.send(PongServer.TYPE_SINK_END, new byte[0], 0, 0, seconds(5));
            assertEquals(Status.OK, ch.receive(reply, seconds(10)));
            assertEquals(end, reply.id());
            assertEquals(16, reply.length());
            assertEquals(10L, reply.getLong(0));
            assertEquals(10L * size, reply.getLong(8));
            ch.release(reply);
        } finally {
            stop(pong);
            String text = Files.readString(log);
            Files.deleteIfExists(log);
            assertTrue(text.contains("listening"), text);
        }
    }

    @ParameterizedTest(name = "{0} {1} bytes")
    @MethodSource("fragmentedSizes")
    void shouldGetFragmentedMessagesEchoedByTheCHostToAJavaGuest(Transport transport, int size) throws Exception {
        assumePrograms("shmx-pong");
        String name = TestSupport.uniqueName("xf");
        Path log = Files.createTempFile("shmx-pong", ".log");
        Process pong = startCHost(name, log);
        ExecutorService receiver = Executors.newSingleThreadExecutor();
        try (Guest guest = Guest.connect(name, transport, Duration.ofSeconds(10))) {
            Channel ch = guest.channel();
            for (long id = 1; id <= 3; id++) {
                byte[] payload = pattern(size, id);
                // The C pong echoes each fragment as it arrives: take the echo while the request goes out.
                MessageInfo info = new MessageInfo();
                Future<byte[]> echo = receiver.submit(() -> ch.receiveMessage(info, seconds(30)));
                long sent;
                if (id == 2) {
                    try (MessageOutputStream out = ch.openOutputStream(Channel.TYPE_DATA, seconds(10))) {
                        for (int at = 0; at < size; at += 100_003) {
                            out.write(payload, at, Math.min(100_003, size - at));
                        }
                        out.close();
                        sent = out.messageId();
                    }
                } else {
                    sent = ch.send(Channel.TYPE_DATA, payload, 0, size, seconds(10));
                }
                assertEquals(id, sent);
                byte[] got = echo.get(60, TimeUnit.SECONDS);
                assertEquals(Channel.TYPE_RESPONSE, info.type());
                assertEquals(id, info.id());
                assertEquals(size, got.length);
                assertEquals(-1, Arrays.mismatch(payload, got), "echo of " + id + " differs");
            }
        } finally {
            receiver.shutdownNow();
            stop(pong);
            Files.deleteIfExists(log);
        }
    }

    private static List<String> javaPing(String name, String... args) {
        List<String> cmd = new ArrayList<>(Demo.javaCommand());
        cmd.add("ping");
        cmd.addAll(List.of("--name", name));
        cmd.addAll(List.of(args));
        return cmd;
    }

    @Test
    void shouldServeAJavaGuestProcessFromAJavaHost() throws Exception {
        String name = TestSupport.uniqueName("xjj");
        try (PongServer host = javaHost(name)) {
            for (String[] a : new String[][] {
                {"--transport", "shm", "--size", "0", "--count", "300", "--warmup", "10"},
                {"--transport", "shm", "--size", "1025", "--count", "300", "--warmup", "10"},
                {"--transport", "shm", "--size", "1048576", "--count", "20", "--warmup", "2"},
                {"--transport", "shm", "--size", "10485763", "--count", "3", "--warmup", "1"},
                {"--transport", "uds", "--size", "4096", "--count", "300", "--warmup", "10"},
                {"--transport", "auto", "--size", "4096", "--count", "300", "--warmup", "10"}}) {
                List<String> cmd = javaPing(name, a);
                assertRttLine(run(cmd, 90), Integer.parseInt(a[5]), cmd);
            }
            List<String> cmd = javaPing(name, "--size", "64", "--count", "50000", "--throughput");
            Run r = run(cmd, 90);
            assertEquals(0, r.exit, r.err);
            assertTrue(THROUGHPUT.matcher(r.out).find(), r.out);
            assertEquals(0, host.failures());
        }
    }

    @Test
    void shouldExitWithThreeWhenNoHostAnswers() throws Exception {
        List<String> cmd = javaPing(TestSupport.uniqueName("nobody"), "--timeout-ms", "100");
        Run r = run(cmd, 60);
        assertEquals(3, r.exit, r.err);
        assertTrue(r.err.startsWith("ping: "), r.err);
        assertEquals("", r.out);
    }

    @Test
    void shouldRunTheJavaPongUntilTerminated() throws Exception {
        assumePrograms("shmx-ping");
        String name = TestSupport.uniqueName("xpong");
        List<String> cmd = new ArrayList<>(Demo.javaCommand());
        cmd.addAll(List.of("pong", "--name", name, "--transport", "both"));
        Path log = Files.createTempFile("shmx-jpong", ".log");
        Process pong = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + seconds(20);
            while (!Files.readString(log).contains("pong: listening on " + name)) {
                assertTrue(pong.isAlive(), Files.readString(log));
                assertTrue(System.nanoTime() < deadline, "no listening line: " + Files.readString(log));
                Thread.sleep(20);
            }
            List<String> ping = List.of(TestSupport.program("shmx-ping").toString(), "--name", name, "--size",
                    "64", "--count", "1000");
            assertRttLine(run(ping, 60), 1000, ping);
            pong.destroy(); // SIGTERM: clean close
            assertTrue(pong.waitFor(15, TimeUnit.SECONDS), "pong stops on SIGTERM");
            assertEquals(0, pong.exitValue(), "a clean close exits 0: " + Files.readString(log));
        } finally {
            if (pong.isAlive()) {
                pong.destroyForcibly();
            }
            Files.deleteIfExists(log);
        }
    }

    @Test
    void shouldPrintTheDemoTablesWithEveryPath() throws Exception {
        assumePrograms("shmx-ping", "shmx-pong", "shmx-floor");
        List<String> cmd = new ArrayList<>(Demo.javaCommand());
        cmd.addAll(List.of("demo", "--count", "300", "--warmup", "100"));
        Run r = run(cmd, 110);
        assertEquals(0, r.exit, r.out + "\n" + r.err);
        assertTrue(r.out.contains("floor (two processes bouncing one cache line): p50="), r.out);
        for (String path : new String[] {"C guest -> Java host", "Java guest -> Java host", "C guest -> C host"}) {
            // 2 transports x 2 sizes in each table
            assertEquals(8, r.out.lines().filter(l -> l.startsWith(path)).count(), path + "\n" + r.out);
        }
        assertTrue(r.out.contains("Commands:"), r.out);
    }

    @Test
    void shouldRejectAUsageErrorWithTwo() {
        PrintStream saved = System.err;
        try {
            System.setErr(new PrintStream(new java.io.ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            assertEquals(2, Main.run(new String[] {"ping"}));
            assertEquals(2, Main.run(new String[] {"ping", "--name", "x", "--size", "-1"}));
            assertEquals(2, Main.run(new String[] {"pong", "--name", "x", "--transport", "tcp"}));
            assertEquals(2, Main.run(new String[] {"frobnicate"}));
        } finally {
            System.setErr(saved);
        }
    }
}
