package io.shmx.bench;

import io.shmx.Channel;
import io.shmx.Claim;
import io.shmx.Guest;
import io.shmx.Message;
import io.shmx.Status;
import io.shmx.Transport;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;

/**
 * One-way throughput from this JVM into a ping-protocol host, from one or
 * several producer threads (each with its own guest connection), copying or
 * zero-copy: the Java twin of the C program {@code shmx-bench-tput}.
 *
 * <pre>
 * java -cp 'target/classes:target/test-classes:target/dependency/*' io.shmx.bench.Throughput \
 *     --name NAME [--transport shm|uds] [--size B[,B...]] [--count N[,N...]] [--producers P]
 *     [--api copy|zerocopy]
 * </pre>
 *
 * Several sizes run one after the other in this JVM, each with its count (per producer).
 * Each producer sends N sink messages (type 256) then a sink end (type 257)
 * whose reply carries the host's count and byte total, checked against what
 * was sent. copy: {@code send} from a prepared array; zerocopy: {@code claim},
 * write the payload in place, {@code commit}. The time runs from the common
 * start to the last producer's reply. Prints one JSON object per size
 * ({@code size, msgs_per_s, bytes_per_s, count, seconds}); exit status 0, 1 on a
 * failure or a wrong count, 2 on bad usage.
 */
public final class Throughput {
    private static final int TYPE_SINK = 256;
    private static final int TYPE_SINK_END = 257;
    private static final long SEND_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long SINK_END_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(30);

    private Throughput() {
    }

    /**
     * Runs the measurement and exits with its status.
     *
     * @param argv the options above
     * @throws Exception if a producer thread can not be joined
     */
    public static void main(String[] argv) throws Exception {
        System.exit(run(argv));
    }

    private static int run(String[] argv) throws Exception {
        String name;
        Transport transport;
        long[] sizes;
        long[] counts;
        int producers;
        boolean zeroCopy;
        try {
            BenchArgs a = BenchArgs.parse(argv, Set.of("name", "transport", "size", "count", "producers", "api"));
            name = a.string("name", null);
            transport = Transport.valueOf(a.string("transport", "shm").toUpperCase(Locale.ROOT));
            sizes = a.list("size", 64);
            counts = a.numbers("count", 1_000_000, sizes.length);
            producers = Math.toIntExact(a.number("producers", 1));
            String api = a.string("api", "copy");
            if (!api.equals("copy") && !api.equals("zerocopy")) {
                throw new IllegalArgumentException("--api must be copy or zerocopy");
            }
            zeroCopy = api.equals("zerocopy");
            for (long s : sizes) {
                Math.toIntExact(s);
            }
        } catch (IllegalArgumentException | ArithmeticException e) {
            System.err.println("bench Throughput: " + e.getMessage());
            return 2;
        }
        List<Guest> guests = new ArrayList<>();
        try {
            for (int i = 0; i < producers; i++) {
                guests.add(Guest.connect(name, transport, Duration.ofSeconds(10)));
            }
            for (int k = 0; k < sizes.length; k++) {
                if (!measure(guests, (int) sizes[k], counts[k], zeroCopy)) {
                    return 1;
                }
            }
            return 0;
        } finally {
            for (Guest g : guests) {
                g.close();
            }
        }
    }

    /** One run of count messages of size bytes per producer; prints its line, or a message and false. */
    private static boolean measure(List<Guest> guests, int size, long count, boolean zeroCopy)
            throws InterruptedException {
        int producers = guests.size();
        CyclicBarrier start = new CyclicBarrier(producers);
        long[] t0 = new long[producers];
        long[] t1 = new long[producers];
        String[] error = new String[producers];
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < producers; i++) {
            final int p = i;
            Channel ch = guests.get(i).channel();
            Thread t = new Thread(() -> {
                try {
                    start.await(10, TimeUnit.SECONDS);
                    t0[p] = System.nanoTime();
                    error[p] = produce(ch, size, count, zeroCopy);
                    t1[p] = System.nanoTime();
                } catch (Exception e) {
                    error[p] = e.toString();
                }
            }, "producer-" + i);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) {
            t.join();
        }
        long first = Long.MAX_VALUE;
        long last = 0;
        for (int i = 0; i < producers; i++) {
            if (error[i] != null) {
                System.err.println("bench Throughput: producer " + i + ", " + size + " B: " + error[i]);
                return false;
            }
            first = Math.min(first, t0[i]);
            last = Math.max(last, t1[i]);
        }
        double secs = (last - first) / 1e9;
        double msgs = (double) count * producers;
        System.out.printf(Locale.ROOT,
                "{\"size\":%d,\"msgs_per_s\":%.0f,\"bytes_per_s\":%.0f,\"count\":%.0f,\"seconds\":%.6f}%n",
                size, msgs / secs, msgs * size / secs, msgs, secs);
        return true;
    }

    /** Sends the sinks and the sink end; returns null or what went wrong. */
    private static String produce(Channel ch, int size, long count, boolean zeroCopy) {
        byte[] payload = new byte[size];
        Arrays.fill(payload, (byte) 0x5A);
        for (long i = 0; i < count; i++) {
            if (zeroCopy) {
                Claim c = ch.claim(size, SEND_TIMEOUT_NANOS);
                if (c == null) {
                    return "claim failed at message " + i + ": " + Status.toString(ch.lastClaimStatus());
                }
                c.putBytes(0, payload, 0, size); // the producer writes its message in place
                long id = c.commit(TYPE_SINK);
                if (id <= 0) {
                    return "commit failed at message " + i + ": " + Status.toString(id);
                }
            } else {
                long id = ch.send(TYPE_SINK, payload, 0, size, SEND_TIMEOUT_NANOS);
                if (id <= 0) {
                    return "send failed at message " + i + ": " + Status.toString(id);
                }
            }
        }
        long endId = ch.send(TYPE_SINK_END, payload, 0, 0, SEND_TIMEOUT_NANOS);
        if (endId <= 0) {
            return "sink end send failed: " + Status.toString(endId);
        }
        Message reply = new Message();
        int rc = ch.receive(reply, SINK_END_TIMEOUT_NANOS);
        if (rc != Status.OK) {
            return "no sink end reply: " + Status.toString(rc);
        }
        try {
            if (reply.type() != Channel.TYPE_RESPONSE || reply.id() != endId || reply.length() != 16) {
                return "bad sink end reply " + reply;
            }
            long gotCount = reply.getLong(0);
            long gotBytes = reply.getLong(8);
            if (gotCount != count || gotBytes != count * size) {
                return "the host counted " + gotCount + " messages / " + gotBytes + " bytes, sent " + count + " / "
                        + count * size;
            }
            return null;
        } finally {
            ch.release(reply);
        }
    }
}
