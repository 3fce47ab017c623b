package io.shmx;

import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * RELIABILITY.md "Process death and liveness" with a JVM host or a JVM guest
 * and real processes: guests killed with SIGKILL (L1, L2), a host killed (L3),
 * a guest replaced (L4), a guest stopped past the liveness timeout. The
 * detection times are printed; the bound asserted is the 100 ms of the
 * design plus scheduling slack where noted.
 */
@Tag("cross-process")
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class LivenessProcessTest {
    private static final int SIZE = 2048; // payload of LivenessGuest's messages: a 4 KiB pool slot

    private static PeerEvent next(BlockingQueue<PeerEvent> q, long millis) throws InterruptedException {
        PeerEvent e = q.poll(millis, TimeUnit.MILLISECONDS);
        assertNotNull(e, "no peer event within " + millis + " ms");
        return e;
    }

    private static void assumeProgram(String name) {
        assumeTrue(TestSupport.hasProgram(name), "C program " + TestSupport.program(name) + " is missing");
    }

    private static void assertPoolAllFree(Host host) throws InterruptedException {
        long deadline = System.nanoTime() + seconds(5);
        List<PoolStats> stats = host.poolStats();
        while (!stats.stream().allMatch(PoolStats::allFree) && System.nanoTime() < deadline) {
            Thread.sleep(5);
            stats = host.poolStats();
        }
        for (PoolStats s : stats) {
            assertTrue(s.allFree(), "slots left behind: " + s);
        }
    }

    /** Accepts one guest, failing after 15 s. */
    private static Channel accept(Host host) {
        Channel ch = host.accept(Duration.ofSeconds(15));
        assertNotNull(ch, "no guest within 15 s");
        return ch;
    }

    private static long millisSince(long t0Nanos, long tNanos) {
        return TimeUnit.NANOSECONDS.toMillis(tNanos - t0Nanos);
    }

    /** Drains the host channel: the ids in order of arrival, each message released. */
    private static List<Long> drain(Channel ch) {
        List<Long> ids = new ArrayList<>();
        Message m = new Message();
        for (;;) {
            int rc = ch.receive(m, seconds(2));
            if (rc != Status.OK) {
                assertEquals(Status.CLOSED, rc, "after the committed messages: " + Status.toString(rc));
                return ids;
            }
            ids.add(m.id());
            assertEquals(-1, m.buffer().mismatch(java.nio.ByteBuffer.wrap(TestSupport.pattern(m.length(), m.id()))),
                    "payload of " + m.id());
            assertEquals(Status.OK, ch.release(m));
        }
    }

    private static void assertExactlyOnce(List<Long> ids, long count) {
        assertEquals(count, ids.size(), "committed messages received: " + ids);
        for (int i = 0; i < ids.size(); i++) {
            assertEquals(i + 1L, ids.get(i), "ids in order, each once");
        }
    }

    @Test
    void shouldReclaimAndDeliverOnceWhenAJvmGuestIsKilledHoldingAnOpenClaim() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("l1j"));
                GuestProcess g = GuestProcess.java("publish", host.name(), "10")) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(events::add);
            Channel ch = accept(host);
            g.await("READY", 15_000);
            long t0 = System.nanoTime();
            g.process.destroyForcibly();
            PeerEvent e = next(events, 5_000);
            System.out.println("L1 (JVM guest, open claim): DIED noticed " + millisSince(t0, e.noticedNanos())
                    + " ms after SIGKILL; " + e);
            assertEquals(PeerEvent.Reason.DIED, e.reason());
            assertEquals(ch.index(), e.peer());
            assertEquals(ch.epoch(), e.epoch());
            assertEquals(g.pid(), e.pid());
            assertTrue(e.reclaimedSlots() >= 1, "the open claim's slot is taken back: " + e);
            assertTrue(e.noticedNanos() - t0 < TimeUnit.MILLISECONDS.toNanos(100),
                    "noticed within 100 ms of the kill: " + millisSince(t0, e.noticedNanos()) + " ms");
            assertExactlyOnce(drain(ch), 10);
            ch.close();
            assertPoolAllFree(host);
        }
    }

    @Test
    void shouldReclaimAndDeliverOnceWhenACGuestIsKilledWhileBlockedOnAFullPool() throws Exception {
        assumeProgram("shmx-ping");
        // No growth: the pool is the segment's own, so the C ping fills it and waits for a slot.
        ShmxConfig cfg = ShmxConfig.builder().poolMaxBytes(ShmxConfig.defaults().toBuilder().build().sizeClassBytes(0)
                * 128L + 65536L * 32 + 1048576L * 4).build();
        try (Host host = Host.create(TestSupport.uniqueName("l1c"), cfg);
                GuestProcess g = GuestProcess.of(List.of(TestSupport.program("shmx-ping").toString(), "--name",
                        host.name(), "--throughput", "--size", Integer.toString(SIZE), "--count", "100000000"))) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(events::add);
            Channel ch = accept(host);
            // The host receives nothing: the guest commits until its window or the pool is full, then waits
            // (for at most 5 s) in a claim. Kill it there, once the committed count has settled.
            long deadline = System.nanoTime() + seconds(10);
            int committed = -1;
            long settled = System.nanoTime();
            while (System.nanoTime() < deadline) {
                int sent = host.poolStats().stream().mapToInt(PoolStats::sent).sum();
                if (sent != committed) {
                    committed = sent;
                    settled = System.nanoTime();
                } else if (sent > 0 && System.nanoTime() - settled > TimeUnit.MILLISECONDS.toNanos(100)) {
                    break;
                }
                Thread.sleep(5);
            }
            assertTrue(committed > 0 && g.process.isAlive(), "the C guest committed and now waits: " + committed);
            long t0 = System.nanoTime();
            g.process.destroyForcibly();
            PeerEvent e = next(events, 5_000);
            System.out.println("L1 (C guest, waiting on a full pool): DIED noticed " + millisSince(t0, e.noticedNanos())
                    + " ms after SIGKILL; " + e);
            assertEquals(PeerEvent.Reason.DIED, e.reason());
            assertEquals(g.pid(), e.pid());
            assertTrue(e.noticedNanos() - t0 < TimeUnit.MILLISECONDS.toNanos(100),
                    "noticed within 100 ms of the kill: " + millisSince(t0, e.noticedNanos()) + " ms");
            assertExactlyOnce(drain(ch), committed);
            ch.close();
            assertPoolAllFree(host);
        }
    }

    @Test
    void shouldReclaimEveryMessageAKilledGuestHeldUnreleased() throws Exception {
        int n = 20;
        try (Host host = Host.create(TestSupport.uniqueName("l2"));
                GuestProcess g = GuestProcess.java("hold", host.name(), Integer.toString(n))) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(events::add);
            Channel ch = accept(host);
            for (int i = 1; i <= n; i++) {
                assertEquals(i, ch.send(Channel.TYPE_DATA, TestSupport.pattern(SIZE, i), 0, SIZE, seconds(5)));
            }
            g.await("READY", 15_000);
            PoolStats held = host.poolStats().get(0);
            assertEquals(n, held.sent(), "the guest holds " + n + " slots: " + held);
            long t0 = System.nanoTime();
            g.process.destroyForcibly();
            PeerEvent e = next(events, 5_000);
            System.out.println("L2: DIED noticed " + millisSince(t0, e.noticedNanos()) + " ms after SIGKILL; " + e);
            assertEquals(PeerEvent.Reason.DIED, e.reason());
            assertEquals(n, e.reclaimedSlots(), "all " + n + " held slots reclaimed");
            assertPoolAllFree(host);
            ch.close();
        }
    }

    private static Process startPong(String name, Path log) throws Exception {
        Process p = new ProcessBuilder(TestSupport.program("shmx-pong").toString(), "--name", name)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile()).start();
        long deadline = System.nanoTime() + seconds(10);
        while (!Files.readString(log).contains("pong: listening on " + name)) {
            assertTrue(p.isAlive(), "shmx-pong exited: " + Files.readString(log));
            assertTrue(System.nanoTime() < deadline, "shmx-pong did not start: " + Files.readString(log));
            Thread.sleep(10);
        }
        return p;
    }

    @Test
    void shouldFailAPendingReceiveWithHostGoneWhenTheHostIsKilled() throws Exception {
        assumeProgram("shmx-pong");
        String name = TestSupport.uniqueName("l3");
        Path log = Files.createTempFile("shmx-pong", ".log");
        Process pong = startPong(name, log);
        try (Guest guest = Guest.connect(name, Transport.SHM, Duration.ofSeconds(10))) {
            Channel ch = guest.channel();
            Message m = new Message();
            assertEquals(1, ch.send(Channel.TYPE_DATA, new byte[16], 0, 16, seconds(5)));
            assertEquals(Status.OK, ch.receive(m, seconds(5)), "pong echoes");
            ch.release(m);
            CompletableFuture<Long> pending = CompletableFuture.supplyAsync(() -> {
                try {
                    ch.receive(new Message(), seconds(20));
                    return -1L;
                } catch (HostGoneException e) {
                    return System.nanoTime();
                }
            });
            Thread.sleep(200); // the receive is asleep on the futex by now
            long t0 = System.nanoTime();
            pong.destroyForcibly();
            long failed = pending.get(10, TimeUnit.SECONDS);
            assertTrue(failed > 0, "the pending receive fails with HostGoneException");
            long ms = millisSince(t0, failed);
            System.out.println("L3: pending receive failed with HostGoneException " + ms + " ms after SIGKILL of pong");
            assertTrue(ms < 500, "within 100 ms plus scheduling slack: " + ms + " ms");
            assertThrows(HostGoneException.class, () -> ch.send(Channel.TYPE_DATA, new byte[8], 0, 8, 0));
            assertThrows(HostGoneException.class, () -> ch.receive(new Message(), 0));
            assertThrows(HostGoneException.class, () -> ch.claim(8, 0));
            guest.close();
            assertTrue(guest.isClosed());
        } finally {
            pong.destroyForcibly();
            pong.waitFor(5, TimeUnit.SECONDS);
            Files.deleteIfExists(log);
        }
    }

    private static List<String> javaPing(String name) {
        List<String> cmd = GuestProcess.jvm();
        cmd.addAll(List.of("io.shmx.tools.Main", "ping"));
        cmd.addAll(List.of("--name", name, "--throughput", "--count", "1000000000"));
        return cmd;
    }

    @Test
    void shouldExitPingWithTheHostGoneStatusWhenPongIsKilled() throws Exception {
        assumeProgram("shmx-pong");
        assumeProgram("shmx-ping");
        for (boolean java : new boolean[] {true, false}) {
            String name = TestSupport.uniqueName("l3p");
            Path log = Files.createTempFile("shmx-pong", ".log");
            Path err = Files.createTempFile("shmx-ping", ".err");
            Process pong = startPong(name, log);
            Process ping = null;
            try {
                List<String> cmd = java ? javaPing(name) : List.of(TestSupport.program("shmx-ping").toString(),
                        "--name", name, "--throughput", "--count", "1000000000");
                ping = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                        .redirectError(err.toFile()).start();
                Thread.sleep(java ? 1500 : 300); // connected and pinging by then
                assertTrue(ping.isAlive(), "ping runs: " + Files.readString(err));
                pong.destroyForcibly();
                assertTrue(ping.waitFor(10, TimeUnit.SECONDS), "ping ends once the host is gone");
                String text = Files.readString(err);
                assertEquals(4, ping.exitValue(), (java ? "Java" : "C") + " ping's exit status; stderr: " + text);
                assertEquals(1, text.lines().count(), "one stderr line: " + text);
                assertTrue(text.startsWith("ping: the host is gone"), text);
                System.out.println("L3 " + (java ? "Java" : "C") + " ping: exit 4, " + text.strip());
            } finally {
                if (ping != null) {
                    ping.destroyForcibly();
                }
                pong.destroyForcibly();
                pong.waitFor(5, TimeUnit.SECONDS);
                Files.deleteIfExists(log);
                Files.deleteIfExists(err);
            }
        }
    }

    @Test
    void shouldGiveAReplacementGuestALargerEpochAndNothingOfTheOldOne() throws Exception {
        ShmxConfig one = ShmxConfig.builder().maxChannels(1).build();
        try (Host host = Host.create(TestSupport.uniqueName("l4"), one);
                GuestProcess old = GuestProcess.java("idle", host.name())) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(events::add);
            Channel ch = accept(host);
            String line = old.await("EPOCH", 15_000);
            long oldEpoch = Long.parseLong(line.split(" ")[1]);
            assertEquals(ch.epoch(), oldEpoch);
            old.await("READY", 15_000);
            for (int i = 1; i <= 5; i++) {
                ch.send(Channel.TYPE_DATA, TestSupport.pattern(SIZE, i), 0, SIZE, seconds(5)); // never consumed
            }
            ch.send(Channel.TYPE_DATA, new byte[8], 0, 8, seconds(5)); // and one inline record
            old.process.destroyForcibly();
            PeerEvent e = next(events, 5_000);
            assertEquals(PeerEvent.Reason.DIED, e.reason());
            assertEquals(oldEpoch, e.epoch());
            ch.close(); // the entry goes to the next guest
            CompletableFuture<Guest> g = CompletableFuture.supplyAsync(
                    () -> Guest.connect(host.name(), Transport.SHM, Duration.ofSeconds(10)));
            Channel again = accept(host);
            try (Guest fresh = g.get(10, TimeUnit.SECONDS)) {
                assertEquals(ch.index(), again.index(), "the same entry");
                assertTrue(fresh.channel().epoch() > oldEpoch, fresh.channel().epoch() + " > " + oldEpoch);
                assertEquals(again.epoch(), fresh.channel().epoch());
                assertEquals(Status.EMPTY, fresh.channel().receive(new Message(), TimeUnit.MILLISECONDS.toNanos(200)),
                        "nothing addressed to the old incarnation");
                assertPoolAllFree(host);
                System.out.println("L4: epoch " + oldEpoch + " -> " + fresh.channel().epoch() + " on entry "
                        + again.index());
            }
        }
    }

    @Test
    void shouldExpelAStoppedGuestAndFailItsNextCallWhenItResumes() throws Exception {
        ShmxConfig cfg = ShmxConfig.builder().livenessMillis(200).build();
        try (Host host = Host.create(TestSupport.uniqueName("stop"), cfg);
                GuestProcess g = GuestProcess.java("stall", host.name())) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(events::add);
            Channel ch = accept(host);
            g.await("READY", 15_000);
            g.signal("STOP");
            long t0 = System.nanoTime();
            for (int i = 1; i <= 3; i++) {
                ch.send(Channel.TYPE_DATA, TestSupport.pattern(SIZE, i), 0, SIZE, seconds(5));
            }
            PeerEvent e = next(events, 5_000);
            System.out.println("SIGSTOP: EXPELLED noticed " + millisSince(t0, e.noticedNanos())
                    + " ms after the messages were left (liveness 200 ms); " + e);
            assertEquals(PeerEvent.Reason.EXPELLED, e.reason());
            assertEquals(g.pid(), e.pid());
            assertTrue(e.noticedNanos() - t0 >= TimeUnit.MILLISECONDS.toNanos(200), "not before livenessMillis");
            assertEquals(Status.CLOSED, ch.receive(new Message(), seconds(1)), "the host side is closed");
            assertPoolAllFree(host);
            g.signal("CONT");
            g.writeLine("GO");
            String send = g.await("SEND", 10_000);
            String receive = g.await("RECEIVE", 10_000);
            System.out.println("SIGSTOP: the resumed guest got: " + send + "; " + receive);
            assertEquals("SEND ExpelledException SHMX_EEXPELLED", send);
            assertTrue(receive.startsWith("RECEIVE ExpelledException"), receive);
            ch.close();
        }
    }
}
