package io.shmx;

import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The peer listener, the end-of-channel exceptions, epochs, transports and
 * pool counts within one JVM (the cross-process cases are in
 * {@link LivenessProcessTest}). Also run under -Xcheck:jni: the listener is
 * called from a native thread the JVM attaches.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class PeerEventTest {
    private static PeerEvent next(BlockingQueue<PeerEvent> q) throws InterruptedException {
        PeerEvent e = q.poll(10, TimeUnit.SECONDS);
        assertNotNull(e, "no peer event within 10 s");
        return e;
    }

    private static long serviceThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals("shmx-host")).count();
    }

    @Test
    void shouldReportAGuestThatClosedWithItsEntryAndEpoch() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            AtomicReference<Thread> on = new AtomicReference<>();
            p.host.onPeerEvent(e -> {
                on.set(Thread.currentThread());
                events.add(e);
            });
            assertEquals(p.hostChannel.epoch(), p.guestChannel().epoch());
            assertTrue(p.hostChannel.epoch() > 0);
            p.guest.close();
            PeerEvent e = next(events);
            assertEquals(PeerEvent.Reason.CLOSED, e.reason());
            assertEquals(p.hostChannel.index(), e.peer());
            assertEquals(p.hostChannel.epoch(), e.epoch());
            assertEquals(ProcessHandle.current().pid(), e.pid());
            assertFalse(e.exitStatus().isPresent());
            assertTrue(e.noticedNanos() <= System.nanoTime(), "noticedNanos is on the System.nanoTime clock");
            assertTrue(System.nanoTime() - e.noticedNanos() < seconds(10));
            assertEquals("shmx-host", on.get().getName());
            assertTrue(on.get().isDaemon(), "the service thread is attached as a daemon");
        }
    }

    @Test
    void shouldKeepReportingAfterAListenerThrows() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("throw"))) {
            BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
            host.onPeerEvent(e -> {
                events.add(e);
                throw new IllegalStateException("listener failure (expected by the test)");
            });
            for (int i = 0; i < 2; i++) {
                CompletableFuture<Guest> g = CompletableFuture.supplyAsync(
                        () -> Guest.connect(host.name(), Transport.SHM, Duration.ofSeconds(10)));
                Channel ch = host.accept(Duration.ofSeconds(10));
                g.get(10, TimeUnit.SECONDS).close();
                assertEquals(PeerEvent.Reason.CLOSED, next(events).reason());
                ch.close();
            }
        }
    }

    @Test
    void shouldStopReportingWhenTheListenerIsRemovedOrReplaced() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("replace"))) {
            BlockingQueue<PeerEvent> first = new LinkedBlockingQueue<>();
            BlockingQueue<PeerEvent> second = new LinkedBlockingQueue<>();
            host.onPeerEvent(first::add);
            host.onPeerEvent(null);
            connectAndClose(host);
            host.onPeerEvent(second::add);
            connectAndClose(host);
            assertEquals(PeerEvent.Reason.CLOSED, next(second).reason());
            assertNull(first.poll(100, TimeUnit.MILLISECONDS), "a removed listener hears nothing");
        }
    }

    private static void connectAndClose(Host host) throws Exception {
        CompletableFuture<Guest> g = CompletableFuture.supplyAsync(
                () -> Guest.connect(host.name(), Transport.SHM, Duration.ofSeconds(10)));
        Channel ch = host.accept(Duration.ofSeconds(10));
        g.get(10, TimeUnit.SECONDS).close();
        Thread.sleep(50); // the service thread notices the hang-up; the event (if any listener) goes out
        ch.close();
    }

    @Test
    void shouldRefuseToCloseTheHostOrAChannelFromTheListener() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            BlockingQueue<Throwable> seen = new LinkedBlockingQueue<>();
            p.host.onPeerEvent(e -> {
                seen.add(assertThrows(IllegalStateException.class, p.hostChannel::close));
                seen.add(assertThrows(IllegalStateException.class, p.host::close));
                assertEquals(1, p.host.channels().size()); // synchronized host methods still work here
                seen.add(new RuntimeException("done"));
            });
            p.guest.close();
            for (int i = 0; i < 3; i++) {
                assertNotNull(seen.poll(10, TimeUnit.SECONDS));
            }
            assertFalse(p.host.isClosed());
        }
    }

    @Test
    void shouldDetachTheServiceThreadWhenTheHostCloses() throws Exception {
        long before = serviceThreads();
        for (int i = 0; i < 3; i++) {
            try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
                BlockingQueue<PeerEvent> events = new LinkedBlockingQueue<>();
                p.host.onPeerEvent(events::add);
                p.guest.close();
                next(events);
                assertEquals(before + 1, serviceThreads(), "the attached service thread is visible to Java");
            }
        }
        long deadline = System.nanoTime() + seconds(5);
        while (serviceThreads() > before && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(before, serviceThreads(), "no Java thread left behind by closed hosts");
    }

    @Test
    void shouldThrowHostGoneToTheGuestOfAClosedHost() throws Exception {
        TestSupport.Pair p = TestSupport.connect(null, Transport.SHM);
        try {
            Channel ch = p.guestChannel();
            CompletableFuture<Integer> pending = CompletableFuture.supplyAsync(() -> ch.receive(new Message(),
                    seconds(30)));
            Thread.sleep(100);
            p.host.close();
            Throwable t = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> pending.get(10, TimeUnit.SECONDS)).getCause();
            assertTrue(t instanceof HostGoneException, String.valueOf(t));
            assertEquals(Status.HOST_GONE, ((HostGoneException) t).code());
            assertThrows(HostGoneException.class, () -> ch.send(Channel.TYPE_DATA, new byte[8], 0, 8, 0));
            assertThrows(HostGoneException.class, () -> ch.receive(new byte[8], 0, 8, null, 0));
        } finally {
            p.close();
        }
    }

    @Test
    void shouldGiveAnAutoGuestTheSocketWhenEveryEntryIsTaken() throws Exception {
        List<LogRecord> records = new CopyOnWriteArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger jul = Logger.getLogger("io.shmx");
        jul.addHandler(h);
        ShmxConfig one = ShmxConfig.builder().maxChannels(1).build();
        try (TestSupport.Pair p = TestSupport.connect(one, Transport.AUTO)) {
            assertEquals(Transport.SHM, p.guestChannel().transport(), "AUTO takes shm while there is an entry");
            assertEquals(EnumSet.of(Transport.SHM, Transport.UDS), p.host.transports());
            // every entry taken: AUTO falls back to the socket, SHM is refused as full
            CompletableFuture<Guest> auto = CompletableFuture.supplyAsync(
                    () -> Guest.connect(p.host.name(), Transport.AUTO, Duration.ofSeconds(10)));
            Channel hostSide = p.host.accept(Duration.ofSeconds(10));
            try (Guest g = auto.get(10, TimeUnit.SECONDS)) {
                assertEquals(Transport.UDS, g.channel().transport());
                assertEquals(Transport.UDS, hostSide.transport());
                byte[] hello = "over the socket".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                long id = g.channel().send(Channel.TYPE_DATA, hello, 0, hello.length, seconds(5));
                byte[] got = new byte[64];
                MessageInfo info = new MessageInfo();
                assertEquals(hello.length, hostSide.receive(got, 0, got.length, info, seconds(5)));
                assertEquals(id, info.id());
                hostSide.send(Channel.TYPE_RESPONSE, 0, id, got, 0, hello.length, seconds(5));
                assertEquals(hello.length, g.channel().receive(got, 0, got.length, info, seconds(5)));
            }
            CompletableFuture<Guest> shm = CompletableFuture.supplyAsync(
                    () -> Guest.connect(p.host.name(), Transport.SHM, Duration.ofSeconds(10)));
            assertThrows(ConnectionRefusedException.class, () -> p.host.accept(Duration.ofSeconds(10)));
            Throwable t = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> shm.get(10, TimeUnit.SECONDS)).getCause();
            assertTrue(t instanceof ConnectionRefusedException, String.valueOf(t));
            assertEquals("SHMX_EFULL", ((ShmxException) t).codeName());
        } finally {
            jul.removeHandler(h);
        }
        long fallbacks = records.stream().filter(r -> r.getMessage().contains("hybrid fallback")).count();
        assertTrue(fallbacks >= 1, "the fallback is logged through System.Logger: " + records.size() + " records");
        assertEquals(1, records.stream().filter(r -> r.getMessage().startsWith("shmx: guest:")).count(),
                "the guest's fallback warning once");
    }

    @Test
    void shouldCountTheWholePoolAsFreeOnAQuietHost() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            List<PoolStats> stats = p.host.poolStats();
            assertEquals(p.host.config().sizeClassCount(), stats.size());
            for (PoolStats s : stats) {
                assertTrue(s.allFree(), s.toString());
                assertEquals(p.host.config().sizeClassSlots(s.sizeClass()), s.total());
            }
        }
    }

    @Test
    void shouldGiveAReconnectingGuestALargerEpoch() throws Exception {
        ShmxConfig one = ShmxConfig.builder().maxChannels(1).build();
        try (TestSupport.Pair p = TestSupport.connect(one, Transport.SHM)) {
            long old = p.guestChannel().epoch();
            p.guest.close();
            p.hostChannel.close();
            CompletableFuture<Guest> g = CompletableFuture.supplyAsync(
                    () -> Guest.connect(p.host.name(), Transport.SHM, Duration.ofSeconds(10)));
            Channel ch = p.host.accept(Duration.ofSeconds(10));
            try (Guest again = g.get(10, TimeUnit.SECONDS)) {
                assertEquals(p.hostChannel.index(), ch.index(), "the same entry");
                assertTrue(again.channel().epoch() > old, again.channel().epoch() + " > " + old);
                assertEquals(ch.epoch(), again.channel().epoch());
            }
        }
    }
}
