package io.shmx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * RELIABILITY.md S5: S1-S3 with a JVM host. A hostile guest JVM
 * ({@link SegmentAttacker}) tries to shrink, grow and re-describe the segment
 * it was given; a JVM host is created under a file-size limit. The host JVM
 * must see Java exceptions or nothing at all, never crash (no hs_err_pid*.log
 * appears in the working directory), and must go on serving.
 */
@Tag("cross-process")
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class SegmentAttackProcessTest {
    private Set<String> crashLogsBefore;

    private static Set<String> crashLogs() throws IOException {
        Set<String> logs = new java.util.HashSet<>();
        try (DirectoryStream<Path> d = Files.newDirectoryStream(Path.of("").toAbsolutePath(), "hs_err_pid*.log")) {
            for (Path p : d) {
                logs.add(p.getFileName().toString());
            }
        }
        return logs;
    }

    @BeforeEach
    void rememberCrashLogs() throws IOException {
        crashLogsBefore = crashLogs();
    }

    @AfterEach
    void expectNoNewCrashLog() throws IOException {
        Set<String> now = crashLogs();
        now.removeAll(crashLogsBefore);
        assertTrue(now.isEmpty(), "a JVM crashed: " + now);
    }

    private static GuestProcess attacker(String mode, String name) throws IOException {
        List<String> cmd = GuestProcess.jvm();
        cmd.addAll(1, List.of("-Xshare:auto", "-XX:TieredStopAtLevel=1"));
        cmd.add(SegmentAttacker.class.getName());
        cmd.add(mode);
        cmd.add(name);
        return GuestProcess.of(cmd);
    }

    /** The host's half of the attacker's round trip, then a fresh in-process guest's. */
    private static void expectHostServes(Host host, Channel ch, GuestProcess g) throws Exception {
        byte[] got = ch.receiveMessage(new MessageInfo(), TestSupport.seconds(10));
        assertNotNull(got, "the attacker's message");
        assertEquals(100, got.length);
        assertTrue(ch.send(Channel.TYPE_DATA, new byte[100], 0, 100, TestSupport.seconds(5)) > 0);
        assertEquals("ROUNDTRIP ok", g.await("ROUNDTRIP", 15000));
        ch.close();
        CompletableFuture<Guest> next = CompletableFuture.supplyAsync(
                () -> Guest.connect(host.name(), Transport.SHM, Duration.ofSeconds(10)));
        Channel c2 = host.accept(Duration.ofSeconds(10));
        assertNotNull(c2, "the next guest");
        try (Guest guest = next.get(10, TimeUnit.SECONDS)) {
            assertTrue(guest.channel().send(Channel.TYPE_DATA, new byte[10], 0, 10, TestSupport.seconds(5)) > 0);
            assertNotNull(c2.receiveMessage(new MessageInfo(), TestSupport.seconds(5)));
        }
        c2.close();
    }

    /** S1 + S5: shrinking and growing the segment through /proc/self/fd is refused; the JVM host serves on. */
    @Test
    void shouldRefuseAGuestJvmResizingTheSegmentAndKeepTheJvmHostServing() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("sa"), null);
                GuestProcess g = attacker("shrink", host.name())) {
            long mapped = host.mappedBytes();
            Channel ch = host.accept(Duration.ofSeconds(15));
            assertNotNull(ch, "the attacker connects");
            String attacked = g.await("ATTACKED", 15000);
            assertFalse(attacked.equals("ATTACKED 0"), "the attacker found no segment fd:\n" + g.output());
            String out = g.output();
            assertFalse(out.contains("RESIZED"), "a resize went through:\n" + out);
            assertTrue(out.contains("REFUSED setLength-shrink"), out);
            assertTrue(out.contains("REFUSED setLength-grow"), out);
            for (String line : out.split("\n")) {
                if (line.startsWith("LENGTH ")) {
                    String[] f = line.split(" ");
                    assertEquals(f[3], f[1], "the size changed: " + line);
                }
            }
            expectHostServes(host, ch, g);
            assertEquals(mapped, host.mappedBytes());
        }
    }

    /** S2 + S5: a larger size claimed in the shared header changes nothing the JVM host uses. */
    @Test
    void shouldKeepTheJvmHostsOwnSizeWhenAGuestJvmClaimsALargerOne() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("sa"), null);
                GuestProcess g = attacker("header", host.name())) {
            long mapped = host.mappedBytes();
            ShmxConfig config = host.config();
            Channel ch = host.accept(Duration.ofSeconds(15));
            assertNotNull(ch, "the attacker connects");
            assertEquals("ATTACKED 1", g.await("ATTACKED", 15000));
            byte[] got = ch.receiveMessage(new MessageInfo(), TestSupport.seconds(10));
            assertNotNull(got);
            assertTrue(ch.send(Channel.TYPE_DATA, new byte[100], 0, 100, TestSupport.seconds(5)) > 0);
            assertEquals("ROUNDTRIP ok", g.await("ROUNDTRIP", 15000));
            assertEquals(mapped, host.mappedBytes());
            assertEquals(config, host.config());
            ch.close();
        }
    }

    /** S3 + S5: a JVM host under a 1 MiB file-size limit gets an exception (shm only) or the socket fallback. */
    @Test
    void shouldThrowForAJvmHostWhoseSegmentExceedsTheFileSizeLimit() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/prlimit")), "prlimit (util-linux) is missing");
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/prlimit", "--fsize=1048576:1048576", "--"));
        List<String> jvm = GuestProcess.jvm();
        jvm.addAll(1, List.of("-Xshare:auto", "-XX:TieredStopAtLevel=1"));
        cmd.addAll(jvm);
        cmd.addAll(List.of(SegmentAttacker.class.getName(), "limit", TestSupport.uniqueName("sa")));
        try (GuestProcess p = GuestProcess.of(cmd)) {
            String shmOnly = p.await("SHMONLY", 20000);
            // EFBIG has no symbolic name in Status: "errno 27".
            assertTrue(shmOnly.matches("SHMONLY \\w*Exception (errno 27|ENOMEM|ENOSPC) .*"), shmOnly);
            String fallback = p.await("FALLBACK", 20000);
            assertEquals("FALLBACK [UDS]", fallback);
            assertTrue(p.process.waitFor(20, TimeUnit.SECONDS));
            assertEquals(0, p.process.exitValue(), "the host JVM died:\n" + p.output());
        }
    }
}
