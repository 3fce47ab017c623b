package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.ConnectionRefusedException;
import io.shmx.Host;
import io.shmx.Message;
import io.shmx.ShmxConfig;
import io.shmx.ShmxException;
import io.shmx.Status;
import io.shmx.Transport;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The connect end of the tunnel ({@code shmx tunnel connect}): the shmx host
 * that the listen end ({@link TunnelListener}) connects one guest to per
 * tunnelled TCP connection. For every guest it receives {@code OPEN}, opens
 * the matching TCP connection to the target and runs the stream's pumps (see
 * {@link TunnelStream}); a target that cannot be reached is answered with
 * {@code RESET} and the reason.
 *
 * <h2>Memory and flow control</h2>
 * The host has one channel per stream ({@code maxStreams}; a guest beyond is
 * refused by the library and reported here and on the listen end). Its rings
 * are {@code ringBytes} each and its inline limit is half a ring, so every
 * message of up to 64 KiB travels inside its own stream's ring: a stream's
 * bytes in flight are bounded by its two rings, and a client that stops
 * reading stalls only its own stream, never the shared pool that every other
 * stream would need. The cost is fixed and known at start:
 * {@code maxStreams x 2 x ringBytes} of shared memory (64 streams of 256 KiB
 * rings: 32 MiB). A ring smaller than 128 KiB sends the larger messages
 * through the pool instead, where the pool's own waiting is the flow control.
 */
public final class TunnelConnector implements AutoCloseable {
    /** Ring bytes per direction by default: four 64 KiB messages in flight per direction of a stream. */
    public static final int DEFAULT_RING_BYTES = 256 * 1024;

    private static final long OPEN_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final int TARGET_CONNECT_MILLIS = 10_000;
    private static final long HANG_UP_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long CLOSE_NANOS = TimeUnit.SECONDS.toNanos(15);
    /** An inline record carries an 8-byte record header and the 24-byte frame header. */
    private static final int INLINE_OVERHEAD = 32;

    private final Host host;
    private final InetSocketAddress target;
    private final String targetText;
    private final int maxStreams;
    private final long spin;
    private final PrintStream log;
    private final TunnelThreads threads = new TunnelThreads("tunnel-connect-");
    private final Set<TunnelStream> streams = ConcurrentHashMap.newKeySet();
    private final AtomicLong refused = new AtomicLong();
    private final AtomicInteger open = new AtomicInteger();
    private volatile boolean closing;

    /**
     * Creates the host and starts accepting streams.
     *
     * @param name       the host's name (the listen end's {@code --name})
     * @param transports what the listen end may connect over
     * @param target     where each stream's TCP connection goes
     * @param maxStreams streams open at once (the host's channel count)
     * @param ringBytes  bytes of each ring, a power of two of at least 4096
     * @param spin       native spin iterations of each channel before it sleeps on its futex, or -1 for the
     *                   default (none: see {@link TunnelStream#DEFAULT_SPIN})
     * @param log        where streams' failures and refusals are reported
     * @throws io.shmx.HostExistsException    if a live host already has that name
     * @throws io.shmx.ConfigurationException if maxStreams or ringBytes are rejected
     * @throws ShmxException                  if the host cannot be created
     */
    public TunnelConnector(String name, Set<Transport> transports, InetSocketAddress target, int maxStreams,
                           int ringBytes, long spin, PrintStream log) {
        ShmxConfig config = ShmxConfig.builder()
                .maxChannels(maxStreams)
                .transports(transports)
                .ringBytes(ringBytes)
                .inlineMax(Math.min(TunnelStream.CHUNK, ringBytes / 2 - INLINE_OVERHEAD))
                .build();
        this.host = Host.create(name, config);
        this.target = target;
        this.targetText = target.getHostString() + ":" + target.getPort();
        this.maxStreams = maxStreams;
        this.spin = spin;
        this.log = log;
        threads.start("accept", this::acceptLoop);
    }

    /** @return the host the listen end connects to */
    public Host host() {
        return host;
    }

    /** @return channels in use now: streams open, starting, or waiting for their guest to hang up */
    public int openStreams() {
        return open.get();
    }

    /** @return guests the host refused so far (more than maxStreams at once) */
    public long refused() {
        return refused.get();
    }

    private void acceptLoop() {
        while (!closing) {
            Channel ch;
            try {
                ch = host.accept(TunnelStream.SLICE_NANOS);
            } catch (ConnectionRefusedException e) {
                refused.incrementAndGet();
                log.println("tunnel connect: refused a stream (" + maxStreams + " streams at most, --max-streams): "
                        + e.getMessage());
                continue;
            } catch (IllegalStateException e) {
                return; // the host was closed
            } catch (ShmxException e) {
                log.println("tunnel connect: accept failed: " + e.getMessage());
                Pause.quietly(10); // a persistent failure must not spin a core
                continue;
            }
            if (ch == null) {
                continue;
            }
            TunnelStream.setIdle(ch, spin);
            open.incrementAndGet();
            threads.start("channel-" + ch.index(), () -> serveOrFree(ch));
        }
    }

    /** A failure before the stream's pumps own the channel is reported, and the channel given back. */
    private void serveOrFree(Channel ch) {
        try {
            serve(ch);
        } catch (RuntimeException e) {
            log.println("tunnel connect: channel " + ch.index() + ": setting up the stream failed: " + e);
            ch.shutdown();
            free(ch, new Message());
        }
    }

    /** Runs on the stream's own thread: reads OPEN, connects the target, pumps until the stream ends. */
    private void serve(Channel ch) {
        Message m = new Message();
        String where = "tunnel connect: channel " + ch.index();
        int rc = receiveOpen(ch, m);
        if (rc != Status.OK) {
            log.println(where + ": no OPEN from the listen end: " + Status.toString(rc));
            free(ch, m);
            return;
        }
        if (m.type() != TunnelStream.TYPE_OPEN || m.length() < 8) {
            log.println(where + ": the first message is not OPEN (type " + m.type() + ", " + m.length() + " bytes)");
            ch.release(m);
            ch.shutdown();
            free(ch, m);
            return;
        }
        long number = m.getLong(0);
        byte[] addr = new byte[Math.min(m.length() - 8, 256)];
        m.buffer().get(m.offset() + 8, addr);
        ch.release(m);
        String prefix = "tunnel connect: stream " + number + " (" + new String(addr, StandardCharsets.UTF_8) + ")";

        SocketChannel s;
        try {
            s = connectTarget();
        } catch (IOException e) {
            String why = "connecting to " + targetText + " failed: " + TunnelStream.describe(e);
            log.println(prefix + ": " + why);
            byte[] b = why.getBytes(StandardCharsets.UTF_8);
            long r = ch.send(TunnelStream.TYPE_RESET, b, 0, b.length, TunnelStream.SLICE_NANOS * 10);
            if (r <= 0) {
                log.println(prefix + ": could not send RESET: " + Status.toString(r));
            }
            free(ch, m);
            return;
        }
        TunnelStream stream = new TunnelStream(number, prefix, s, ch, () -> free(ch, m), log);
        streams.add(stream);
        try {
            if (closing) {
                stream.abort("tunnel closing", true);
            }
            stream.run(threads);
        } finally {
            streams.remove(stream);
        }
    }

    /** Waits for the first message in slices, giving up when the guest hangs up, the host closes, or 10 s pass. */
    private int receiveOpen(Channel ch, Message m) {
        long deadline = System.nanoTime() + OPEN_TIMEOUT_NANOS;
        for (;;) {
            int rc = ch.receive(m, TunnelStream.SLICE_NANOS);
            if (rc != Status.EMPTY) {
                return rc;
            }
            if (closing || !ch.peerAlive() || System.nanoTime() - deadline >= 0) {
                return Status.EMPTY;
            }
        }
    }

    private SocketChannel connectTarget() throws IOException {
        SocketChannel s = SocketChannel.open();
        try {
            s.setOption(StandardSocketOptions.TCP_NODELAY, true);
            s.socket().connect(target, TARGET_CONNECT_MILLIS);
            return s;
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
    }

    /**
     * Gives the channel back once the guest has hung up (bounded): freeing it
     * earlier could take the last messages from a guest that has not read them.
     * Anything that still arrives is past the stream's end and released unread.
     */
    private void free(Channel ch, Message m) {
        if (ch.isClosed()) {
            return; // given back already (a failure after the stream's own release)
        }
        long deadline = System.nanoTime() + HANG_UP_NANOS;
        while (System.nanoTime() - deadline < 0 && !closing) {
            int rc = ch.receive(m, TunnelStream.SLICE_NANOS);
            if (rc == Status.OK) {
                ch.release(m);
            } else if (rc != Status.EMPTY || !ch.peerAlive()) {
                break;
            }
        }
        ch.close();
        open.decrementAndGet();
    }


    /**
     * Stops accepting, aborts every open stream (their targets see a reset and
     * the listen end a {@code RESET}), waits for the threads (bounded), and
     * closes the host. Idempotent.
     */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        for (TunnelStream st : streams) {
            st.abort("tunnel closing", true);
        }
        for (Channel c : host.channels()) {
            c.shutdown(); // wakes a stream still waiting for OPEN or for its guest to hang up
        }
        if (!threads.joinAll(CLOSE_NANOS)) {
            log.println("tunnel connect: " + threads.running() + " threads still running after close;"
                    + " keeping the host mapped");
            return;
        }
        host.close();
    }
}
