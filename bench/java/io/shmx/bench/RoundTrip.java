package io.shmx.bench;

import io.shmx.Channel;
import io.shmx.Guest;
import io.shmx.Message;
import io.shmx.Status;
import io.shmx.Transport;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.HdrHistogram.Histogram;

/**
 * Round-trip latency from this JVM to a ping-protocol host ({@code shmx pong}
 * or {@code shmx-pong}), recorded in an HdrHistogram: the Java twin of the C
 * program {@code shmx-bench-rtt}, with the same options and output, except
 * that one JVM measures several sizes in turn (one JVM start and one JIT
 * warm-up for all of them).
 *
 * <pre>
 * java -cp 'target/classes:target/test-classes:target/dependency/*' io.shmx.bench.RoundTrip \
 *     --name NAME [--transport shm|uds] [--size B[,B...]] [--count N[,N...]] [--warmup N[,N...]]
 *     [--rate R] [--hgrm FILE]
 * </pre>
 *
 * A count or warm-up list gives one value per size (or one for all). Back to
 * back by default. With {@code --rate R} request i is due at start + i/R and
 * its sample runs from when it was due, so an echo that delays later requests
 * is charged to them too (coordinated omission). Each echo is checked (type,
 * id, length, bytes) outside the timed span. Prints one JSON object per size
 * in nanoseconds ({@code size, p50, p90, p99, p999, max, mean, count}) and
 * writes the percentile distribution in microseconds to the .hgrm file ({@code %d}
 * in its name is replaced by the size). Exit status 0, 1 on a wrong or
 * missing echo, 2 on bad usage.
 */
public final class RoundTrip {
    private static final long REPLY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long HIGHEST_NANOS = TimeUnit.MINUTES.toNanos(1);

    private RoundTrip() {
    }

    /**
     * Runs the measurements and exits with their status.
     *
     * @param argv the options above
     */
    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    private static int run(String[] argv) {
        String name;
        Transport transport;
        long[] sizes;
        long[] counts;
        long[] warmups;
        long rate;
        String hgrm;
        try {
            BenchArgs a = BenchArgs.parse(argv, Set.of("name", "transport", "size", "count", "warmup", "rate", "hgrm"));
            name = a.string("name", null);
            transport = Transport.valueOf(a.string("transport", "shm").toUpperCase(Locale.ROOT));
            sizes = a.list("size", 64);
            counts = a.numbers("count", 100_000, sizes.length);
            warmups = a.numbers("warmup", 20_000, sizes.length);
            rate = a.number("rate", 0);
            hgrm = a.string("hgrm", "");
            for (long s : sizes) {
                Math.toIntExact(s);
            }
        } catch (IllegalArgumentException | ArithmeticException e) {
            System.err.println("bench RoundTrip: " + e.getMessage());
            return 2;
        }
        try (Guest guest = Guest.connect(name, transport, Duration.ofSeconds(10))) {
            for (int k = 0; k < sizes.length; k++) {
                Histogram h = new Histogram(HIGHEST_NANOS, 3);
                int size = (int) sizes[k];
                if (!measure(guest.channel(), size, counts[k], warmups[k], rate, h)) {
                    return 1;
                }
                System.out.printf(Locale.ROOT,
                        "{\"size\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d,\"mean\":%.1f,\"count\":%d}%n",
                        size, h.getValueAtPercentile(50), h.getValueAtPercentile(90), h.getValueAtPercentile(99),
                        h.getValueAtPercentile(99.9), h.getMaxValue(), h.getMean(), h.getTotalCount());
                if (!hgrm.isEmpty()) {
                    String file = hgrm.replace("%d", Integer.toString(size));
                    try (PrintStream out = new PrintStream(new FileOutputStream(file), false, "UTF-8")) {
                        h.outputPercentileDistribution(out, 5, 1000.0);
                    } catch (IOException e) {
                        System.err.println("bench RoundTrip: writing " + file + ": " + e.getMessage());
                        return 1;
                    }
                }
            }
        }
        return 0;
    }

    /** Warm-up plus count round trips of size bytes into h; false (and a message) on a failure. */
    private static boolean measure(Channel ch, int size, long count, long warmup, long rate, Histogram h) {
        byte[] payload = new byte[size];
        for (int i = 0; i < size; i++) {
            payload[i] = (byte) (i * 7);
        }
        byte[] echo = new byte[size];
        Message m = new Message();
        long interval = rate > 0 ? TimeUnit.SECONDS.toNanos(1) / rate : 0;
        long start = 0;
        for (long i = 0; i < warmup + count; i++) {
            if (size > 0) {
                payload[0] = (byte) i; // each request differs, so a stale echo can not pass
            }
            if (i == warmup) {
                start = System.nanoTime();
            }
            long t0;
            if (interval > 0 && i >= warmup) {
                t0 = start + (i - warmup) * interval; // when this request was due
                while (System.nanoTime() < t0) {
                    Thread.onSpinWait();
                }
            } else {
                t0 = System.nanoTime();
            }
            long id = ch.send(Channel.TYPE_DATA, payload, 0, size, REPLY_TIMEOUT_NANOS);
            if (id <= 0) {
                System.err.println("bench RoundTrip: send failed at request " + i + ": " + Status.toString(id));
                return false;
            }
            int rc = ch.receive(m, REPLY_TIMEOUT_NANOS);
            long t1 = System.nanoTime();
            if (rc != Status.OK) {
                System.err.println("bench RoundTrip: no echo of request " + i + ": " + Status.toString(rc));
                return false;
            }
            boolean ok = m.type() == Channel.TYPE_RESPONSE && m.id() == id && m.length() == size;
            if (ok) {
                m.copyTo(echo, 0);
            }
            ch.release(m);
            if (!ok || !Arrays.equals(echo, payload)) {
                System.err.println("bench RoundTrip: wrong echo of " + size + "-byte request " + i);
                return false;
            }
            if (i >= warmup) {
                h.recordValue(t1 - t0);
            }
        }
        return true;
    }
}
