package io.shmx;

import static io.shmx.TestSupport.pattern;
import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** In-process host and guest: every channel operation over shm and over uds. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ChannelTest {
    private static final int[] SIZES = {0, 1, 1023, 1024, 1025, 4096, 16384, 65536, 1 << 20};
    private static ExecutorService pool;

    @BeforeAll
    static void startPool() {
        pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "channel-test");
            t.setDaemon(true);
            return t;
        });
    }

    @AfterAll
    static void stopPool() {
        pool.shutdownNow();
    }

    static Stream<Arguments> transportsAndSizes() {
        List<Arguments> list = new ArrayList<>();
        for (Transport t : Transport.values()) {
            for (int s : SIZES) {
                list.add(Arguments.of(t, s));
            }
        }
        return list.stream();
    }

    /** Sends on one thread while this thread receives, so a big uds message cannot block on a full socket. */
    private static Future<Long> sendAsync(Channel ch, int type, byte[] payload) {
        return pool.submit(() -> ch.send(type, payload, 0, payload.length, seconds(10)));
    }

    @ParameterizedTest(name = "{0} {1} bytes")
    @MethodSource("transportsAndSizes")
    void shouldCarryEveryByteFromGuestToHostZeroCopy(Transport transport, int size) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            byte[] payload = pattern(size, 1);
            Future<Long> sent = sendAsync(p.guestChannel(), Channel.TYPE_DATA, payload);
            Message m = new Message();
            assertEquals(Status.OK, p.hostChannel.receive(m, seconds(10)));
            assertEquals(1L, sent.get(10, TimeUnit.SECONDS), "the first message gets id 1");
            assertEquals(Channel.TYPE_DATA, m.type());
            assertEquals(1L, m.id());
            assertEquals(0, m.flags());
            assertEquals(size, m.length());
            ByteBuffer view = m.buffer();
            assertTrue(view.isDirect());
            assertEquals(m.offset(), view.position());
            assertEquals(size, view.remaining());
            for (int k = 0; k < size; k++) {
                if (view.get(m.offset() + k) != payload[k]) {
                    throw new AssertionError("byte " + k + " differs");
                }
            }
            assertArrayEquals(payload, m.toByteArray());
            assertEquals(Status.OK, p.hostChannel.release(m));
            assertFalse(m.isHeld());
        }
    }

    @ParameterizedTest(name = "{0} {1} bytes")
    @MethodSource("transportsAndSizes")
    void shouldCarryEveryByteFromHostToGuestByCopy(Transport transport, int size) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            byte[] payload = pattern(size, 7);
            ByteBuffer direct = ByteBuffer.allocateDirect(size);
            direct.put(payload).flip();
            Future<Long> sent = pool.submit(() -> p.hostChannel.send(Channel.TYPE_RESPONSE, 0, 99L, direct,
                    seconds(10)));
            byte[] dst = new byte[size + 8];
            MessageInfo info = new MessageInfo();
            int n = p.guestChannel().receive(dst, 8, size, info, seconds(10));
            assertEquals(99L, sent.get(10, TimeUnit.SECONDS), "an explicit id is kept");
            assertEquals(size, n);
            assertEquals(size, info.length());
            assertEquals(Channel.TYPE_RESPONSE, info.type());
            assertEquals(99L, info.id());
            for (int k = 0; k < size; k++) {
                if (dst[8 + k] != payload[k]) {
                    throw new AssertionError("byte " + k + " differs");
                }
            }
            assertEquals(0, direct.position(), "send leaves the position alone");
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldSendFromHeapDirectAndReadOnlyBuffers(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            byte[] a = pattern(300, 3);
            ByteBuffer heap = ByteBuffer.wrap(a, 10, 100);
            ByteBuffer direct = ByteBuffer.allocateDirect(300);
            direct.put(a).position(20).limit(220);
            ByteBuffer readOnly = ByteBuffer.wrap(a).asReadOnlyBuffer();
            assertEquals(1L, g.send(Channel.TYPE_DATA, heap, seconds(5)));
            assertEquals(2L, g.send(Channel.TYPE_DATA, direct, seconds(5)));
            assertEquals(3L, g.send(Channel.TYPE_DATA, direct, seconds(5)), "same direct buffer again");
            assertEquals(4L, g.send(Channel.TYPE_DATA, readOnly, seconds(5)));
            ByteBuffer dst = ByteBuffer.allocate(400);
            assertEquals(100, p.hostChannel.receive(dst, null, seconds(5)));
            assertEquals(200, p.hostChannel.receive(dst, null, seconds(5)));
            ByteBuffer dst2 = ByteBuffer.allocateDirect(1000);
            assertEquals(200, p.hostChannel.receive(dst2, null, seconds(5)));
            assertEquals(300, p.hostChannel.receive(dst2, null, seconds(5)));
            assertEquals(300, dst.position());
            assertEquals(500, dst2.position());
            for (int k = 0; k < 100; k++) {
                assertEquals(a[10 + k], dst.get(k));
            }
            for (int k = 0; k < 200; k++) {
                assertEquals(a[20 + k], dst.get(100 + k));
                assertEquals(a[20 + k], dst2.get(k));
            }
            for (int k = 0; k < 300; k++) {
                assertEquals(a[k], dst2.get(200 + k));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldPublishAClaimedPayloadOnCommit(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            Claim c = g.claim(24, seconds(5));
            assertNotNull(c);
            assertTrue(c.isOpen());
            assertEquals(24, c.length());
            assertEquals(24, c.buffer().remaining());
            assertEquals(c.offset(), c.buffer().position());
            c.putLong(0, 0x1122334455667788L).putInt(8, 42).putShort(12, (short) 7).putByte(14, (byte) 1);
            c.putBytes(16, new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, 0, 8);
            assertThrows(IndexOutOfBoundsException.class, () -> c.putLong(20, 1L));
            long id = c.commit(300);
            assertEquals(1L, id);
            assertFalse(c.isOpen());

            Message m = new Message();
            assertEquals(Status.OK, p.hostChannel.receive(m, seconds(5)));
            assertEquals(300, m.type());
            assertEquals(24, m.length());
            assertEquals(0x1122334455667788L, m.getLong(0));
            assertEquals(42, m.getInt(8));
            assertEquals(7, m.getShort(12));
            assertEquals(1, m.getByte(14));
            assertEquals(8, m.getByte(23));
            assertEquals(0x1122334455667788L, m.buffer().order(ByteOrder.LITTLE_ENDIAN).getLong(m.offset()));
            p.hostChannel.release(m);
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldSendNothingWhenAClaimIsAborted(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            for (int size : new int[] {16, 100_000}) {
                Claim c = g.claim(size, seconds(5));
                assertNotNull(c);
                c.putByte(0, (byte) 9);
                c.abort();
                assertFalse(c.isOpen());
            }
            Message m = new Message();
            assertEquals(Status.EMPTY, p.hostChannel.receive(m, TimeUnit.MILLISECONDS.toNanos(50)));
            assertEquals(1L, g.send(Channel.TYPE_DATA, new byte[1], 0, 1, seconds(5)), "aborts use no id");
        }
    }

    @Test
    void shouldRejectCommitAndAbortWithoutAClaim() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            Channel g = p.guestChannel();
            Claim c = g.claim(8, seconds(5));
            c.commit(Channel.TYPE_DATA);
            assertThrows(IllegalStateException.class, () -> c.commit(Channel.TYPE_DATA));
            assertThrows(IllegalStateException.class, c::abort);
            assertThrows(IllegalStateException.class, c::buffer);
            Claim again = g.claim(8, seconds(5));
            assertSame(c, again, "the claim flyweight is reused");
            assertThrows(IllegalStateException.class, () -> g.claim(8, 0), "only one open claim");
            assertThrows(IllegalStateException.class, () -> g.send(2, new byte[1], 0, 1, 0), "no send while claimed");
            again.abort();
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldRejectAClaimLargerThanTheMaximumPayload(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            int max = g.maxPayload();
            assertEquals(1 << 20, max);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.claim(max + 1, 0));
            assertTrue(e.getMessage().contains("maximum payload of " + max), e.getMessage());
            // A send above one frame fragments; above the maximum message it is refused.
            int maxMessage = g.maxMessage();
            IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                    () -> g.send(2, new byte[maxMessage + 1], 0, maxMessage + 1, 0));
            assertTrue(big.getMessage().contains("maximum of " + maxMessage), big.getMessage());
            assertThrows(IllegalArgumentException.class, () -> g.claim(-1, 0));
            assertThrows(IllegalArgumentException.class, () -> g.send(70000, new byte[1], 0, 1, 0), "type range");
            assertThrows(IllegalArgumentException.class, () -> g.send(2, 2, 0, new byte[1], 0, 1, 0), "flags");
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldReturnEmptyWhenNothingWasSent(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Message m = new Message();
            assertEquals(Status.EMPTY, p.hostChannel.receive(m, 0));
            assertEquals(Status.EMPTY, p.guestChannel().receive(m, 0));
            assertEquals(Status.EMPTY, p.hostChannel.receiveBatch(new MessageBatch(4), 0));
            assertEquals(Status.EMPTY, p.hostChannel.receive(new byte[10], 0, 10, null, 0));
            assertEquals(Status.EMPTY, p.hostChannel.receive(m, BusySpinIdleStrategy.INSTANCE, 1_000_000));
            long t0 = System.nanoTime();
            assertEquals(Status.EMPTY, p.hostChannel.receive(m, TimeUnit.MILLISECONDS.toNanos(100)));
            assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(90), "waited for the timeout");
            assertFalse(m.isHeld());
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldKeepAZeroCopyViewUntilRelease(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            byte[] payload = pattern(2000, 5);
            p.guestChannel().send(Channel.TYPE_DATA, payload, 0, payload.length, seconds(5));
            Message m = new Message();
            assertEquals(Status.OK, p.hostChannel.receive(m, seconds(5)));
            assertTrue(m.isHeld());
            assertThrows(IllegalStateException.class, () -> p.hostChannel.receive(m, 0), "still held");
            byte[] copy = new byte[2000];
            assertEquals(2000, m.copyTo(copy, 0));
            assertArrayEquals(payload, copy);
            ByteBuffer into = ByteBuffer.allocate(2100);
            into.position(50);
            m.copyTo(into);
            assertEquals(2050, into.position());
            assertEquals(payload[1999], into.get(2049));
            p.hostChannel.release(m);
            assertThrows(IllegalStateException.class, m::buffer, "no view after release");
            assertThrows(IllegalStateException.class, () -> p.hostChannel.release(m), "double release");
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldReceiveABatchWithOneCallAndReleaseIt(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            int total = 40;
            for (int i = 1; i <= total; i++) {
                byte[] b = pattern(i * 10, i);
                assertEquals(i, g.send(Channel.TYPE_DATA, b, 0, b.length, seconds(5)));
            }
            MessageBatch batch = new MessageBatch(32);
            int seen = 0;
            int calls = 0;
            while (seen < total) {
                int n = p.hostChannel.receiveBatch(batch, seconds(5));
                calls++;
                assertTrue(n >= 1 && n <= 32, "count " + n);
                assertEquals(n, batch.size());
                for (int i = 0; i < n; i++) {
                    Message m = batch.get(i);
                    long id = seen + i + 1;
                    assertEquals(id, m.id());
                    assertEquals(id * 10, m.length());
                    assertArrayEquals(pattern((int) id * 10, id), m.toByteArray());
                }
                assertThrows(IllegalStateException.class, () -> p.hostChannel.receiveBatch(batch, 0),
                        "the batch must be released first");
                assertEquals(Status.OK, p.hostChannel.releaseAll(batch));
                assertFalse(batch.holdsAny());
                seen += n;
            }
            assertEquals(total, seen);
            assertTrue(calls <= total, "batches took several messages per call");
            if (transport == Transport.SHM) {
                assertEquals(2, calls, "32 + 8 messages already in the ring: two calls");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldRejectAReleaseOutOfOrder(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel g = p.guestChannel();
            g.send(Channel.TYPE_DATA, new byte[10], 0, 10, seconds(5));
            g.send(Channel.TYPE_DATA, new byte[20], 0, 20, seconds(5));
            Message first = new Message();
            Message second = new Message();
            assertEquals(Status.OK, p.hostChannel.receive(first, seconds(5)));
            if (transport == Transport.UDS) {
                // The C uds transport holds one received message at a time (channel_uds.c): a clear refusal.
                IllegalStateException one = assertThrows(IllegalStateException.class,
                        () -> p.hostChannel.receive(second, seconds(5)));
                assertTrue(one.getMessage().contains("one received message at a time"), one.getMessage());
                assertFalse(second.isHeld());
                assertEquals(Status.OK, p.hostChannel.release(first));
                assertEquals(Status.OK, p.hostChannel.receive(second, seconds(5)));
                assertThrows(IllegalStateException.class, () -> p.hostChannel.release(first), "not held");
                assertEquals(Status.OK, p.hostChannel.release(second));
                return;
            }
            assertEquals(Status.OK, p.hostChannel.receive(second, seconds(5)));
            assertEquals(20, second.length());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.hostChannel.release(second));
            assertTrue(e.getMessage().contains("order"), e.getMessage());
            assertTrue(second.isHeld(), "still held after the refused release");
            assertEquals(Status.OK, p.hostChannel.release(first));
            assertEquals(Status.OK, p.hostChannel.release(second));
            assertThrows(IllegalStateException.class, () -> p.guestChannel().release(first), "not held");
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldNotConsumeAMessageTooBigForTheCopyBuffer(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            byte[] payload = pattern(500, 1);
            p.guestChannel().send(Channel.TYPE_DATA, payload, 0, 500, seconds(5));
            MessageInfo info = new MessageInfo();
            byte[] small = new byte[100];
            assertEquals(Status.BUFFER_TOO_SMALL, p.hostChannel.receive(small, 0, 100, info, seconds(5)));
            assertEquals(500, info.length());
            byte[] big = new byte[500];
            assertEquals(500, p.hostChannel.receive(big, 0, 500, info, seconds(5)));
            assertArrayEquals(payload, big);
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldWakeAWaitingCopyReceiveWhenAMessageArrives(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Future<Integer> r = pool.submit(() -> p.hostChannel.receive(new byte[64], 0, 64, null, seconds(10)));
            Thread.sleep(100);
            p.guestChannel().send(Channel.TYPE_DATA, new byte[64], 0, 64, seconds(5));
            assertEquals(64, r.get(10, TimeUnit.SECONDS));
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldReturnClosedAfterThePeerCloses(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            assertTrue(p.hostChannel.peerAlive());
            p.guestChannel().send(Channel.TYPE_DATA, new byte[3], 0, 3, seconds(5));
            p.guest.close();
            assertTrue(p.guestChannel().isClosed());
            assertEquals(Status.CLOSED, p.guestChannel().send(2, new byte[1], 0, 1, 0));
            Message m = new Message();
            assertEquals(Status.OK, p.hostChannel.receive(m, seconds(5)), "published messages stay receivable");
            p.hostChannel.release(m);
            int rc = p.hostChannel.receive(m, seconds(5));
            assertTrue(rc == Status.CLOSED || rc == Status.HOST_GONE, Status.toString(rc));
            long deadline = System.nanoTime() + seconds(5);
            while (p.hostChannel.peerAlive() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertFalse(p.hostChannel.peerAlive());
            long s = p.hostChannel.send(2, new byte[1], 0, 1, 0);
            assertEquals(Status.CLOSED, s, Status.toString(s));
        }
    }

    @Test
    void shouldReturnClosedFromAClosedChannelObject() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            p.hostChannel.close();
            p.hostChannel.close(); // idempotent
            assertTrue(p.hostChannel.isClosed());
            assertEquals(Status.CLOSED, p.hostChannel.receive(new Message(), 0));
            assertEquals(Status.CLOSED, p.hostChannel.send(2, new byte[1], 0, 1, 0));
            assertNull(p.hostChannel.claim(1, 0));
            assertEquals(Status.CLOSED, p.hostChannel.lastClaimStatus());
            assertFalse(p.hostChannel.peerAlive());
            int rc = p.guestChannel().receive(new Message(), seconds(5));
            assertTrue(rc == Status.CLOSED || rc == Status.HOST_GONE, Status.toString(rc));
        }
    }

    @Test
    void shouldWakeAWaitingReceiverOnShutdown() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            Future<Integer> r = pool.submit(() -> p.hostChannel.receive(new Message(), seconds(30)));
            Thread.sleep(100);
            p.hostChannel.shutdown();
            assertEquals(Status.CLOSED, r.get(10, TimeUnit.SECONDS));
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldReceiveWithAJavaIdleStrategy(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Message m = new Message();
            for (IdleStrategy idle : new IdleStrategy[] {new BusySpinIdleStrategy(), new YieldingIdleStrategy(),
                new BackoffIdleStrategy(100, 10, 1000, 100_000)}) {
                pool.submit(() -> {
                    Thread.sleep(20);
                    return p.guestChannel().send(Channel.TYPE_DATA, new byte[8], 0, 8, seconds(5));
                });
                assertEquals(Status.OK, p.hostChannel.receive(m, idle, seconds(5)));
                p.hostChannel.release(m);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Transport.class, names = {"SHM", "UDS"}) // AUTO is a request, never a channel's transport
    void shouldReportTheChannelsProperties(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            assertEquals(transport, p.hostChannel.transport());
            assertEquals(transport, p.guestChannel().transport());
            assertEquals(1 << 20, p.hostChannel.maxPayload());
            assertTrue(p.guestChannel().peerAlive());
            p.guestChannel().setNativeIdle(Channel.SPIN_FOREVER, 0);
            p.guestChannel().setNativeIdle(100, 10);
            if (transport == Transport.SHM) {
                assertTrue(p.guest.mappedBytes() > 0);
            }
            assertTrue(p.host.mappedBytes() > 0);
            assertEquals(List.of(p.hostChannel), p.host.channels());
            assertEquals(0, p.hostChannel.unlistedViews());
        }
    }

    @Test
    void shouldReturnNullWhenNoGuestComesBeforeTheAcceptTimeout() {
        try (Host host = Host.create(TestSupport.uniqueName("accept"))) {
            long t0 = System.nanoTime();
            assertNull(host.accept(Duration.ofMillis(100)));
            assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(90));
            assertNull(host.accept(0));
        }
    }

    @Test
    void shouldThrowNoHostWhenNobodyListens() {
        String name = TestSupport.uniqueName("missing");
        NoHostException e = assertThrows(NoHostException.class,
                () -> Guest.connect(name, Transport.SHM, Duration.ofMillis(100)));
        assertEquals(-4145, e.code());
        assertTrue(e.getMessage().contains(name), e.getMessage());
        assertFalse(e.nativeMessage().isEmpty());
    }

    @Test
    void shouldRefuseATransportTheHostDoesNotOffer() {
        ShmxConfig shmOnly = ShmxConfig.builder().transports(Transport.SHM).build();
        try (Host host = Host.create(TestSupport.uniqueName("shmonly"), shmOnly)) {
            Future<Channel> accepted = pool.submit(() -> {
                try {
                    return host.accept(seconds(5));
                } catch (ConnectionRefusedException e) {
                    return null; // the host side reports the refusal; the host goes on
                }
            });
            ConnectionRefusedException e = assertThrows(ConnectionRefusedException.class,
                    () -> Guest.connect(host.name(), Transport.UDS, Duration.ofSeconds(5)));
            assertEquals("SHMX_ETRANSPORT", e.codeName());
            try {
                accepted.get(10, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // either outcome is fine on the host side
            }
        }
    }

    @Test
    void shouldRefuseASecondHostWithTheSameName() {
        try (Host host = Host.create(TestSupport.uniqueName("twice"))) {
            assertThrows(HostExistsException.class, () -> Host.create(host.name()));
        }
    }

    @Test
    void shouldCloseAcceptedChannelsWithTheHost() throws Exception {
        TestSupport.Pair p = TestSupport.connect(null, Transport.SHM);
        try {
            p.host.close();
            p.host.close(); // idempotent
            assertTrue(p.host.isClosed());
            assertTrue(p.hostChannel.isClosed());
            assertThrows(IllegalStateException.class, () -> p.host.accept(0));
            assertThrows(HostGoneException.class, () -> p.guestChannel().receive(new Message(), seconds(5)));
        } finally {
            p.close();
        }
    }

    @Test
    void shouldServeSeveralGuestsAtOnce() throws Exception {
        try (Host host = Host.create(TestSupport.uniqueName("many"))) {
            List<Future<Guest>> guests = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Transport t = i % 2 == 0 ? Transport.SHM : Transport.UDS;
                guests.add(pool.submit(() -> Guest.connect(host.name(), t, Duration.ofSeconds(10))));
            }
            List<Channel> channels = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Channel c = host.accept(Duration.ofSeconds(10));
                assertNotNull(c);
                channels.add(c);
            }
            for (Future<Guest> f : guests) {
                Guest g = f.get(10, TimeUnit.SECONDS);
                byte[] b = pattern(100, 1);
                g.channel().send(Channel.TYPE_DATA, b, 0, b.length, seconds(5));
            }
            Message m = new Message();
            for (Channel c : channels) {
                assertEquals(Status.OK, c.receive(m, seconds(5)));
                assertArrayEquals(pattern(100, 1), m.toByteArray());
                c.release(m);
            }
            for (Future<Guest> f : guests) {
                f.get().close();
            }
        }
    }
}
