package io.shmx.bench;

import io.shmx.Channel;
import io.shmx.Claim;
import io.shmx.Guest;
import io.shmx.Host;
import io.shmx.Message;
import io.shmx.MessageBatch;
import io.shmx.Status;
import io.shmx.Transport;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The channel hot paths on one thread, in-process host and guest: a 64-byte
 * message from the guest to the host and back through the API (send, then
 * receive and release on the other side), the zero-copy claim/commit path,
 * and a batch receive of 32. Run with {@code -prof gc}: every benchmark
 * should show about 0 B/op.
 *
 * <pre>
 * java -cp target/classes:target/test-classes:target/dependency/* org.openjdk.jmh.Main ChannelBench -prof gc
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class ChannelBench {
    private static final int BATCH = 32;

    @Param({"SHM"})
    public Transport transport;

    @Param({"64"})
    public int size;

    private Host host;
    private Guest guest;
    private Channel hostChannel;
    private Channel guestChannel;
    private byte[] payload;
    private Message message;
    private MessageBatch batch;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        host = Host.create("bench-" + ProcessHandle.current().pid() + "-" + System.nanoTime() % 1_000_000);
        CompletableFuture<Guest> g = CompletableFuture.supplyAsync(
                () -> Guest.connect(host.name(), transport, Duration.ofSeconds(10)));
        hostChannel = host.accept(Duration.ofSeconds(10));
        guest = g.get(10, TimeUnit.SECONDS);
        guestChannel = guest.channel();
        payload = new byte[size];
        message = new Message();
        batch = new MessageBatch(BATCH);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        guest.close();
        host.close();
    }

    /** Copying send of 64 bytes (guest), zero-copy receive and release (host). */
    @Benchmark
    public long sendReceiveRelease() {
        long id = guestChannel.send(Channel.TYPE_DATA, payload, 0, size, -1);
        if (hostChannel.receive(message, -1) != Status.OK) {
            throw new IllegalStateException("receive failed");
        }
        long got = message.id() + message.length();
        hostChannel.release(message);
        return id + got;
    }

    /** Zero-copy claim, write two longs, commit (guest); receive, read, release (host). */
    @Benchmark
    public long claimCommitReceiveRelease() {
        Claim c = guestChannel.claim(size, -1);
        c.putLong(0, 42L).putLong(8, 7L);
        long id = c.commit(Channel.TYPE_DATA);
        if (hostChannel.receive(message, -1) != Status.OK) {
            throw new IllegalStateException("receive failed");
        }
        long v = message.getLong(0) + message.getLong(8);
        hostChannel.release(message);
        return id + v;
    }

    /** 32 copying sends, then batch receives (one native call each) and releases; per message. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long sendThenBatchReceive32() {
        for (int i = 0; i < BATCH; i++) {
            guestChannel.send(Channel.TYPE_DATA, payload, 0, size, -1);
        }
        long sum = 0;
        int got = 0;
        while (got < BATCH) {
            int n = hostChannel.receiveBatch(batch, -1);
            if (n <= 0) {
                throw new IllegalStateException("batch receive failed: " + n);
            }
            for (int i = 0; i < n; i++) {
                sum += batch.get(i).length();
            }
            hostChannel.releaseAll(batch);
            got += n;
        }
        return sum;
    }
}
