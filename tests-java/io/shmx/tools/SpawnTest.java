package io.shmx.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.shmx.Channel;
import io.shmx.Guest;
import io.shmx.Host;
import io.shmx.Message;
import io.shmx.ShmxException;
import io.shmx.SpawnedGuest;
import io.shmx.Status;
import io.shmx.TestSupport;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Host.spawn: a Java host starts the C ping and the Java ping as guests that
 * attach by their spawn ticket; pid, exit status, environment, directory,
 * kill, and a program that cannot run.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SpawnTest {
    private static final Pattern RTT = Pattern.compile(
            "rtt_ns p50=\\d+ p90=\\d+ p99=\\d+ p999=\\d+ max=\\d+ count=(\\d+)");
    private static final int ENOENT = 2;
    private static final int SHMX_EINVAL = 4120;

    /** Echo every request until the guest closes its channel (the pong side, in this thread). */
    private static void serveEchoes(Channel ch, long timeoutSeconds) {
        Message m = new Message();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        while (System.nanoTime() < deadline) {
            int rc = ch.receive(m, TimeUnit.MILLISECONDS.toNanos(100));
            if (rc == Status.EMPTY) {
                continue;
            }
            if (rc != Status.OK) {
                return; // closed: the ping is done
            }
            try {
                long sent = ch.send(Channel.TYPE_RESPONSE, 0, m.id(), m.buffer(), TestSupport.seconds(5));
                assertTrue(sent >= 0, "echo failed: " + Status.toString(sent));
            } finally {
                ch.release(m);
            }
        }
        fail("the ping did not finish within " + timeoutSeconds + " s");
    }

    /** {@code command} with its standard output in {@code out}: sh hands descriptor 3 on through exec. */
    private static List<String> withOutput(Path out, List<String> command) {
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c", "exec \"$@\" >\"$0\"",
                out.toString()));
        cmd.addAll(command);
        return cmd;
    }

    private static void pingBySpawn(List<String> ping) throws Exception {
        Path out = Files.createTempFile("shmx-spawn", ".out");
        try (Host host = Host.create(TestSupport.uniqueName("spawn"))) {
            List<String> cmd = new ArrayList<>(ping);
            cmd.addAll(List.of("--ticket", "--count", "200", "--warmup", "10", "--size", "100"));
            try (SpawnedGuest g = host.spawn(withOutput(out, cmd))) {
                assertTrue(g.pid() > 0);
                serveEchoes(g.channel(), 60);
                assertTrue(g.waitFor(30, TimeUnit.SECONDS), "the ping did not exit");
                String text = Files.readString(out, StandardCharsets.UTF_8);
                assertEquals(0, g.exitValue(), "exit status of " + cmd + "; output: " + text);
                assertEquals(OptionalInt.of(0), g.exitCode());
                var m = RTT.matcher(text);
                assertTrue(m.find(), "no rtt_ns line: " + text);
                assertEquals("200", m.group(1));
            }
        } finally {
            Files.deleteIfExists(out);
        }
    }

    @Test
    @Tag("cross-process")
    void shouldServeSpawnedCPing() throws Exception {
        assumeTrue(TestSupport.hasProgram("shmx-ping"), "build/bin/shmx-ping is missing: build it with cmake");
        pingBySpawn(List.of(TestSupport.program("shmx-ping").toString()));
    }

    @Test
    @Tag("cross-process")
    void shouldServeSpawnedJavaPing() throws Exception {
        List<String> cmd = new ArrayList<>(Demo.javaCommand());
        cmd.add("ping");
        pingBySpawn(cmd);
    }

    @Test
    void shouldReportPidAndExitStatus() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("spawn"));
             SpawnedGuest g = host.spawn(List.of("/bin/sh", "-c", "exit 7"))) {
            assertTrue(g.pid() > 0);
            assertEquals(List.of(g.channel()), host.channels());
            assertEquals(7, g.waitFor());
            assertEquals(7, g.exitValue());
            assertEquals(7 << 8, g.waitStatus());
            assertEquals(OptionalInt.of(7), g.exitCode());
            assertEquals(OptionalInt.empty(), g.terminatingSignal());
            assertFalse(g.isAlive());
            assertFalse(g.kill(15), "no signal for a child that has exited");
        }
    }

    @Test
    void shouldKillSpawnedGuest() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("spawn"));
             SpawnedGuest g = host.spawn(List.of("sleep", "60"))) {
            assertTrue(g.isAlive());
            assertFalse(g.waitFor(20, TimeUnit.MILLISECONDS));
            assertThrows(IllegalThreadStateException.class, g::exitValue);
            g.destroyForcibly();
            assertTrue(g.waitFor(10, TimeUnit.SECONDS));
            assertEquals(OptionalInt.of(9), g.terminatingSignal());
            assertEquals(128 + 9, g.exitValue());
            assertEquals(OptionalInt.empty(), g.exitCode());
        }
    }

    @Test
    void shouldGiveTheChildItsEnvironmentDirectoryAndTicket() throws Exception {
        Map<String, String> env = Map.of("PATH", "/usr/bin:/bin", "SHMX_SPAWN_MARK", "42", "SHMX_TICKET", "stale");
        String check = "[ \"$(pwd)\" = / ] && [ \"$SHMX_SPAWN_MARK\" = 42 ] && [ \"$SHMX_TICKET\" != stale ]"
                + " && [ -S /proc/self/fd/3 ]";
        try (Host host = Host.create(TestSupport.uniqueName("spawn"));
             SpawnedGuest g = host.spawn(List.of("/bin/sh", "-c", check), env, Path.of("/"))) {
            assertEquals(0, g.waitFor());
        }
    }

    @Test
    void shouldThrowForMissingProgramAndTakeNoChannel() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("spawn"))) {
            ShmxException e = assertThrows(ShmxException.class,
                    () -> host.spawn(List.of("/nonexistent/shmx-no-such-program")));
            assertEquals(-ENOENT, e.code(), e.getMessage());
            assertTrue(host.channels().isEmpty());
            assertThrows(IllegalArgumentException.class, () -> host.spawn(List.of()));
            try (SpawnedGuest g = host.spawn(List.of("/bin/sh", "-c", "exit 0"))) {
                assertEquals(0, g.channel().index(), "the entry was given back");
                assertEquals(0, g.waitFor());
            }
        }
    }

    @Test
    void shouldRefuseTicketAttachWithoutTicket() {
        assumeTrue(System.getenv("SHMX_TICKET") == null, "this JVM was itself spawned with a ticket");
        ShmxException e = assertThrows(ShmxException.class, Guest::attachTicket);
        assertEquals(-SHMX_EINVAL, e.code(), e.getMessage());
    }
}
