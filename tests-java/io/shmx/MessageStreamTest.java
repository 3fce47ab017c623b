package io.shmx;

import static io.shmx.TestSupport.pattern;
import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Messages of any size from Java: sends above maxPayload travel as fragments,
 * receiveMessage reassembles them, and the stream classes write and read them
 * piecewise; every byte checked, in one process over both transports.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MessageStreamTest {
    private static final int MIB = 1 << 20;

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(ints = {0, 1, 1024, 1025, 4096, 4097, 65536, 65537, MIB - 1, MIB, MIB + 1, 3 * MIB + 5,
        64 * MIB})
    void shouldCarryEverySizeUpToTheMaximumMessage(int size) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            assertEquals(64 * MIB, p.hostChannel.maxMessage());
            byte[] payload = pattern(size, 7);
            CompletableFuture<Long> sent = CompletableFuture.supplyAsync(
                    () -> p.hostChannel.send(300, payload, 0, size, seconds(10)));
            MessageInfo info = new MessageInfo();
            byte[] got = p.guestChannel().receiveMessage(info, seconds(10));
            assertTrue(sent.get(10, TimeUnit.SECONDS) > 0);
            assertNotNull(got);
            assertEquals(size, info.length());
            assertEquals(300, info.type());
            assertArrayEquals(payload, got);
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldStreamAMessageInOddChunksBothWays(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            int size = 5 * p.hostChannel.maxPayload() / 2 + 333;
            byte[] payload = pattern(size, 3);
            CompletableFuture<Long> writer = CompletableFuture.supplyAsync(() -> {
                try (MessageOutputStream out = p.hostChannel.openOutputStream(301, seconds(10))) {
                    int at = 0;
                    int chunk = 1;
                    ByteBuffer direct = ByteBuffer.allocateDirect(70_000);
                    while (at < size) {
                        int n = Math.min(chunk, size - at);
                        if (chunk % 3 == 0 && n <= direct.capacity()) {
                            direct.clear();
                            direct.put(payload, at, n).flip();
                            assertEquals(n, out.write(direct));
                            assertFalse(direct.hasRemaining());
                        } else {
                            out.write(payload, at, n);
                        }
                        at += n;
                        chunk = chunk * 5 + 2;
                        if (chunk > 900_000) {
                            chunk = 3;
                        }
                    }
                    out.write(payload, 0, 0);
                    out.close();
                    return out.messageId();
                } catch (IOException e) {
                    throw new AssertionError(e);
                }
            });
            byte[] got = new byte[size];
            try (MessageInputStream in = p.guestChannel().openInputStream(seconds(10))) {
                assertNotNull(in);
                assertEquals(301, in.type());
                int at = 0;
                ByteBuffer direct = ByteBuffer.allocateDirect(12_345);
                for (int turn = 0; ; turn++) {
                    int n;
                    if (turn % 2 == 0) {
                        direct.clear();
                        n = in.read(direct);
                        if (n > 0) {
                            direct.flip().get(got, at, n);
                        }
                    } else {
                        n = in.read(got, at, Math.min(54_321, size - at));
                    }
                    if (n < 0) {
                        break;
                    }
                    at += n;
                }
                assertEquals(size, at);
                assertEquals(-1, in.read());
                assertEquals(writer.get(10, TimeUnit.SECONDS).longValue(), in.id());
            }
            assertArrayEquals(payload, got);
        }
    }

    @Test
    void shouldDropTheUnreadRestWhenTheInputStreamCloses() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            int size = 3 * p.hostChannel.maxPayload();
            CompletableFuture<Boolean> sent = CompletableFuture.supplyAsync(
                    () -> p.hostChannel.send(302, pattern(size, 1), 0, size, seconds(10)) > 0
                            && p.hostChannel.send(303, pattern(10, 2), 0, 10, seconds(10)) > 0);
            try (MessageInputStream in = p.guestChannel().openInputStream(seconds(10))) {
                assertEquals(pattern(1, 1)[0] & 0xFF, in.read());
            }
            MessageInfo info = new MessageInfo();
            assertArrayEquals(pattern(10, 2), p.guestChannel().receiveMessage(info, seconds(10)));
            assertEquals(303, info.type());
            assertTrue(sent.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void shouldReturnNullWhenNoMessageArrives() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            assertNull(p.guestChannel().receiveMessage(null, 1_000_000L));
            assertNull(p.guestChannel().openInputStream(1_000_000L));
        }
    }

    @Test
    void shouldRefuseAMessageAboveTheMaximum() throws Exception {
        ShmxConfig config = ShmxConfig.builder().maxMessage(2 * MIB).build();
        try (TestSupport.Pair p = TestSupport.connect(config, Transport.SHM)) {
            byte[] big = new byte[2 * MIB + 1];
            assertThrows(IllegalArgumentException.class, () -> p.hostChannel.send(304, big, 0, big.length, 0));
            assertThrows(IllegalArgumentException.class,
                    () -> p.hostChannel.send(304, Channel.FLAG_MORE, 0, big, 0, MIB + 1, 0));
            try (MessageOutputStream out = p.hostChannel.openOutputStream(305, seconds(10))) {
                IOException e = assertThrows(IOException.class, () -> out.write(big));
                assertTrue(e.getMessage().contains("SHMX_ETOOBIG"), e.getMessage());
                out.abort();
                assertFalse(out.isOpen());
            }
        }
    }

    @Test
    void shouldTimeOutAWriteBeforeAnythingWasSent() throws Exception {
        // One slot of the largest class and a window of one: a second writer finds no room.
        ShmxConfig config = ShmxConfig.builder().sizeClasses(new int[] {MIB}, new int[] {1})
                .poolMaxBytes(MIB).build();
        try (TestSupport.Pair p = TestSupport.connect(config, Transport.SHM)) {
            byte[] one = pattern(MIB, 1);
            assertTrue(p.hostChannel.send(306, one, 0, one.length, seconds(5)) > 0);
            try (MessageOutputStream out = p.hostChannel.openOutputStream(307, 10_000_000L)) {
                assertThrows(InterruptedIOException.class, () -> out.write(one, 0, 2000));
                out.abort();
            }
            MessageInfo info = new MessageInfo();
            assertArrayEquals(one, p.guestChannel().receiveMessage(info, seconds(5)));
            assertNull(p.guestChannel().receiveMessage(info, 1_000_000L), "the withdrawn message left no trace");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1024, 100_000})
    void shouldSendOnlyWhatAClaimFilled(int claimed) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            Claim c = p.hostChannel.claim(claimed, seconds(5));
            c.putBytes(0, pattern(5, 1), 0, 5);
            assertThrows(IllegalArgumentException.class, () -> c.commit(309, 0, 0L, claimed + 1));
            assertTrue(c.commit(309, 0, 0L, 5) > 0);
            Message m = new Message();
            assertEquals(Status.OK, p.guestChannel().receive(m, seconds(5)));
            assertEquals(5, m.length());
            byte[] got = new byte[5];
            m.copyTo(got, 0);
            assertArrayEquals(pattern(5, 1), got);
            p.guestChannel().release(m);
        }
    }

    @Test
    void shouldHandOutZeroCopyViewsOfSlotsInExtents() throws Exception {
        // One slot of the largest class: every further 1 MiB message needs an extent of the pool.
        ShmxConfig config = ShmxConfig.builder().sizeClasses(new int[] {4096, MIB}, new int[] {8, 1})
                .extentBytes(MIB).build();
        try (TestSupport.Pair p = TestSupport.connect(config, Transport.SHM)) {
            long hostBefore = p.host.mappedBytes();
            long guestBefore = p.guest.mappedBytes();
            for (long id = 1; id <= 4; id++) {
                byte[] payload = pattern(MIB, id);
                Claim c = p.hostChannel.claim(MIB, seconds(5));
                assertNotNull(c, "claim " + id + ": " + Status.toString(p.hostChannel.lastClaimStatus()));
                c.putBytes(0, payload, 0, MIB);
                assertEquals(id, c.commit(310));
            }
            assertTrue(p.host.mappedBytes() >= hostBefore + 3L * MIB, "the host mapped the extents it grew");
            Message m = new Message();
            for (long id = 1; id <= 4; id++) {
                assertEquals(Status.OK, p.guestChannel().receive(m, seconds(5)));
                assertEquals(MIB, m.length());
                assertEquals(-1, m.buffer().mismatch(java.nio.ByteBuffer.wrap(pattern(MIB, id))), "message " + id);
                p.guestChannel().release(m);
            }
            assertTrue(p.guest.mappedBytes() >= guestBefore + 3L * MIB, "the guest mapped extents on first use");
        }
    }

    @Test
    void shouldReportAClosedChannelToTheReceiverOfAnAbortedMessage() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            MessageOutputStream out = p.hostChannel.openOutputStream(308, seconds(10));
            out.write(new byte[p.hostChannel.maxPayload() + 1]);
            out.abort();
            ShmxException e = assertThrows(ShmxException.class,
                    () -> p.guestChannel().receiveMessage(null, seconds(10)));
            assertEquals(Status.CLOSED, e.code());
        }
    }
}
