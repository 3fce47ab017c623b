package io.shmx;

import static io.shmx.TestSupport.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Waiting in an event loop: Channel.eventFd/arm/awaitReadable and ChannelPoller. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ChannelPollerTest {
    private static long sendOne(Channel ch, int b) {
        return ch.send(Channel.TYPE_DATA, new byte[] {(byte) b}, 0, 1, seconds(5));
    }

    /** Receives one message without waiting: its first byte, or the status. */
    private static int receiveNow(Channel ch) {
        byte[] buf = new byte[16];
        int n = ch.receive(buf, 0, buf.length, null, 0);
        return n > 0 ? buf[0] : n;
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void awaitReadableShouldWakeWhenThePeerSendsAndNotBefore(Transport transport) throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, transport)) {
            Channel guest = p.guestChannel();
            assertTrue(guest.eventFd() >= 0);
            assertFalse(guest.awaitReadable(30, TimeUnit.MILLISECONDS), "nothing sent yet");
            CompletableFuture<Long> sent = CompletableFuture.supplyAsync(() -> {
                try {
                    Thread.sleep(30);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return sendOne(p.hostChannel, 7);
            });
            assertTrue(guest.awaitReadable(10, TimeUnit.SECONDS));
            assertTrue(sent.get(10, TimeUnit.SECONDS) > 0);
            assertEquals(7, receiveNow(guest));
            assertEquals(Status.EMPTY, receiveNow(guest));
            assertFalse(guest.arm(), "drained: may sleep");
        }
    }

    @Test
    void armShouldSayTrueWhenAMessageIsAlreadyThere() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            assertTrue(sendOne(p.guestChannel(), 3) > 0);
            assertTrue(p.hostChannel.arm());
            assertTrue(p.hostChannel.awaitReadable(0, TimeUnit.SECONDS));
            assertEquals(3, receiveNow(p.hostChannel));
        }
    }

    @Test
    void awaitReadableShouldWakeWhenThePeerShutsDown() throws Exception {
        try (TestSupport.Pair p = TestSupport.connect(null, Transport.SHM)) {
            Channel guest = p.guestChannel();
            CompletableFuture<Void> shut = CompletableFuture.runAsync(() -> {
                try {
                    Thread.sleep(30);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                p.hostChannel.shutdown();
            });
            assertTrue(guest.awaitReadable(10, TimeUnit.SECONDS));
            shut.get(10, TimeUnit.SECONDS);
            assertEquals(Status.CLOSED, receiveNow(guest));
        }
    }

    @Test
    void pollerShouldReturnOnlyTheChannelsThatHaveSomething() throws Exception {
        try (TestSupport.Pair a = TestSupport.connect(null, Transport.SHM);
             TestSupport.Pair b = TestSupport.connect(null, Transport.UDS);
             ChannelPoller poller = new ChannelPoller()) {
            poller.register(a.hostChannel);
            poller.register(b.hostChannel);
            assertThrows(IllegalArgumentException.class, () -> poller.register(a.hostChannel));
            assertTrue(poller.poll(20, TimeUnit.MILLISECONDS).isEmpty());

            assertTrue(sendOne(b.guestChannel(), 2) > 0);
            assertEquals(List.of(b.hostChannel), List.copyOf(poller.poll(5, TimeUnit.SECONDS)));
            assertEquals(2, receiveNow(b.hostChannel));
            assertEquals(Status.EMPTY, receiveNow(b.hostChannel));

            CompletableFuture<Long> sent = CompletableFuture.supplyAsync(() -> {
                try {
                    Thread.sleep(30);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return sendOne(a.guestChannel(), 1);
            });
            List<Channel> ready = poller.poll(10, TimeUnit.SECONDS);
            assertEquals(List.of(a.hostChannel), List.copyOf(ready), "woken by the sleeping poll");
            assertTrue(sent.get(10, TimeUnit.SECONDS) > 0);
            assertEquals(1, receiveNow(a.hostChannel));
            assertEquals(Status.EMPTY, receiveNow(a.hostChannel));

            poller.unregister(a.hostChannel);
            assertTrue(sendOne(a.guestChannel(), 5) > 0);
            assertTrue(poller.poll(20, TimeUnit.MILLISECONDS).isEmpty(), "unregistered");
            assertEquals(5, receiveNow(a.hostChannel));
        }
    }

    @Test
    void wakeupShouldEndAPollInProgress() throws Exception {
        try (TestSupport.Pair a = TestSupport.connect(null, Transport.SHM);
             ChannelPoller poller = new ChannelPoller()) {
            poller.register(a.hostChannel);
            CompletableFuture<Void> waker = CompletableFuture.runAsync(() -> {
                try {
                    Thread.sleep(30);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                poller.wakeup();
            });
            long start = System.nanoTime();
            assertTrue(poller.poll(30, TimeUnit.SECONDS).isEmpty());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "woken long before the timeout");
            waker.get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void pollerShouldDeliverEveryMessageOfABusySender() throws Exception {
        try (TestSupport.Pair a = TestSupport.connect(null, Transport.SHM);
             ChannelPoller poller = new ChannelPoller()) {
            poller.register(a.hostChannel);
            final int count = 2000;
            CompletableFuture<Void> sender = CompletableFuture.runAsync(() -> {
                for (int i = 0; i < count; i++) {
                    if (sendOne(a.guestChannel(), i) <= 0) {
                        throw new AssertionError("send " + i);
                    }
                }
            });
            int got = 0;
            byte[] buf = new byte[16];
            while (got < count) {
                for (Channel ch : poller.poll(10, TimeUnit.SECONDS)) {
                    int n;
                    while ((n = ch.receive(buf, 0, buf.length, null, 0)) == 1) {
                        assertEquals((byte) got, buf[0]);
                        got++;
                    }
                    assertEquals(Status.EMPTY, n);
                }
            }
            sender.get(10, TimeUnit.SECONDS);
        }
    }
}
