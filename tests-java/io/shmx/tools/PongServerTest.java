package io.shmx.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.shmx.Channel;
import io.shmx.Guest;
import io.shmx.Message;
import io.shmx.Status;
import io.shmx.TestSupport;
import io.shmx.Transport;

import java.io.PrintStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class PongServerTest {
    private static final int MIB = 1 << 20;

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void shouldEchoLargeMessagesOfMoreGuestsThanTheLargestClassHasSlots() throws Exception {
        // The default pool has four 1 MiB slots. Five guests each hold one for a request
        // at times: a pong that kept its request while it waited for a reply slot would
        // stall until its reply timed out, and drop the guests.
        ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
        PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);
        String name = TestSupport.uniqueName("pongbig");
        int guests = 5;
        int rounds = 8;
        AtomicInteger bad = new AtomicInteger();
        try (PongServer pong = new PongServer(name, EnumSet.of(Transport.SHM), 8, -1, false, log)) {
            List<Thread> threads = new ArrayList<>();
            for (int g = 0; g < guests; g++) {
                int seed = g;
                Thread t = new Thread(() -> {
                    try (Guest guest = Guest.connect(name, Transport.SHM, Duration.ofSeconds(10))) {
                        Channel ch = guest.channel();
                        byte[] payload = new byte[MIB];
                        Message reply = new Message();
                        for (int r = 0; r < rounds; r++) {
                            byte mark = (byte) (seed * 16 + r);
                            payload[0] = mark;
                            payload[MIB - 1] = mark;
                            long id = ch.send(Channel.TYPE_DATA, payload, 0, MIB, TimeUnit.SECONDS.toNanos(30));
                            if (id <= 0 || ch.receive(reply, TimeUnit.SECONDS.toNanos(30)) != Status.OK) {
                                bad.incrementAndGet();
                                return;
                            }
                            if (reply.id() != id || reply.length() != MIB || reply.getByte(0) != mark
                                    || reply.getByte(MIB - 1) != mark) {
                                bad.incrementAndGet();
                            }
                            ch.release(reply);
                        }
                    } catch (RuntimeException e) {
                        bad.incrementAndGet();
                    }
                });
                threads.add(t);
                t.start();
            }
            for (Thread t : threads) {
                t.join();
            }
            assertEquals(0, bad.get(), "guests that saw a wrong or missing echo; pong said: " + logBytes);
            assertEquals(0, pong.failures(), "pong said: " + logBytes);
        }
    }
}
