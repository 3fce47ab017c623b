package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.ConnectionRefusedException;
import io.shmx.Guest;
import io.shmx.Host;
import io.shmx.NoHostException;
import io.shmx.ShmxException;
import io.shmx.Status;
import io.shmx.Transport;

import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The listen end of the tunnel ({@code shmx tunnel listen}): accepts TCP
 * connections and carries each one as a stream over its own shmx guest
 * connection to the host that {@link TunnelConnector} runs.
 *
 * <p>Per accepted connection: if {@code maxStreams} streams are open already,
 * the connection is closed at once and the refusal reported; otherwise a
 * thread connects a {@link Guest} (waiting up to the connect timeout for the
 * host to appear; a missing or full host is reported and the connection
 * closed), sends {@code OPEN} with the stream's number and the client address,
 * and runs the stream's pumps (see {@link TunnelStream}). Streams are numbered
 * from 1 in accept order; both ends log a stream under the same number.
 *
 * <pre>{@code
 * try (TunnelConnector c = new TunnelConnector("web", EnumSet.of(Transport.SHM), target, 64,
 *                                             TunnelConnector.DEFAULT_RING_BYTES, -1, System.err);
 *      TunnelListener l = new TunnelListener(new InetSocketAddress("127.0.0.1", 0), "web", Transport.SHM,
 *                                            64, Duration.ofSeconds(10).toNanos(), -1, System.err)) {
 *     int port = l.localPort();   // connect here; bytes come out at target
 * }
 * }</pre>
 */
public final class TunnelListener implements AutoCloseable {
    private static final long CLOSE_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final String name;
    private final Transport transport;
    private final int maxStreams;
    private final long connectTimeoutNanos;
    private final long spin;
    private final PrintStream log;
    private final ServerSocketChannel server;
    private final TunnelThreads threads = new TunnelThreads("tunnel-listen-");
    private final Set<TunnelStream> streams = ConcurrentHashMap.newKeySet();
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicLong numbers = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private volatile boolean closing;

    /**
     * Binds the listening socket and starts accepting.
     *
     * @param listen              where to listen (port 0 picks a free one: see {@link #localPort()})
     * @param name                the shmx host (the connect end) to carry streams to
     * @param transport           {@link Transport#SHM} or {@link Transport#UDS}
     * @param maxStreams          streams open at once; a connection beyond is closed and reported
     * @param connectTimeoutNanos how long a new stream waits for the host to appear
     * @param spin                native spin iterations of each channel before it sleeps on its futex, or -1
     *                            for the default (none: see {@link TunnelStream#DEFAULT_SPIN})
     * @param log                 where streams' failures and refusals are reported
     * @throws IOException              if the socket cannot be bound
     * @throws IllegalArgumentException if the name is malformed or maxStreams is below 1
     */
    public TunnelListener(InetSocketAddress listen, String name, Transport transport, int maxStreams,
                          long connectTimeoutNanos, long spin, PrintStream log) throws IOException {
        if (maxStreams < 1) {
            throw new IllegalArgumentException("maxStreams must be at least 1: " + maxStreams);
        }
        Host.socketPath(name); // checks the name now rather than once per connection
        this.name = name;
        this.transport = transport;
        this.maxStreams = maxStreams;
        this.connectTimeoutNanos = connectTimeoutNanos;
        this.spin = spin;
        this.log = log;
        this.server = ServerSocketChannel.open();
        try {
            server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            server.bind(listen, 1024);
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
        threads.start("accept", this::acceptLoop);
    }

    /** @return the TCP port connections are accepted on */
    public int localPort() {
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new IllegalStateException("the listening socket is closed", e);
        }
    }

    /** @return streams open now */
    public int openStreams() {
        return open.get();
    }

    /** @return connections refused so far (too many streams, no host, host full) */
    public long refused() {
        return refused.get();
    }

    private void acceptLoop() {
        while (!closing) {
            SocketChannel s;
            try {
                s = server.accept();
            } catch (ClosedChannelException e) {
                return; // closed by close()
            } catch (IOException e) {
                // for example EMFILE: report, and let a moment pass instead of spinning on the error
                log.println("tunnel listen: accept failed: " + TunnelStream.describe(e));
                Pause.quietly(10);
                continue;
            }
            long number = numbers.incrementAndGet();
            String client = remote(s);
            if (open.incrementAndGet() > maxStreams) {
                open.decrementAndGet();
                refuse(s, "tunnel listen: stream " + number + " (" + client + "): refused: " + maxStreams
                        + " streams are open (--max-streams)");
                continue;
            }
            threads.start("stream-" + number, () -> serve(s, number, client));
        }
    }

    /** Runs on the stream's own thread: connects the guest, announces the stream, pumps until it ends. */
    private void serve(SocketChannel s, long number, String client) {
        String prefix = "tunnel listen: stream " + number + " (" + client + ")";
        Guest guest = null;
        try {
            s.setOption(StandardSocketOptions.TCP_NODELAY, true);
            guest = Guest.connect(name, transport, connectTimeoutNanos);
        } catch (NoHostException e) {
            refuse(s, prefix + ": no tunnel host '" + name + "' came within the connect timeout: " + e.getMessage());
        } catch (ConnectionRefusedException e) {
            refuse(s, prefix + ": the tunnel host refused the stream (its --max-streams?): " + e.getMessage());
        } catch (ShmxException e) {
            refuse(s, prefix + ": connecting to the tunnel host failed: " + e.getMessage());
        } catch (IOException e) {
            refuse(s, prefix + ": socket setup failed: " + TunnelStream.describe(e));
        } catch (RuntimeException e) {
            refuse(s, prefix + ": connecting to the tunnel host failed: " + e);
        }
        if (guest == null) {
            open.decrementAndGet();
            return;
        }
        Guest g = guest;
        Channel ch = g.channel();
        TunnelStream.setIdle(ch, spin);
        TunnelStream stream = new TunnelStream(number, prefix, s, ch, () -> {
            g.close();
            open.decrementAndGet();
        }, log);
        streams.add(stream);
        try {
            long r = ch.send(TunnelStream.TYPE_OPEN, TunnelStream.openPayload(number, client), connectTimeoutNanos);
            if (r <= 0) {
                stream.abort("could not announce the stream to the host: " + Status.toString(r), false);
            } else if (closing) {
                stream.abort("tunnel closing", true);
            }
            stream.run(threads);
        } finally {
            streams.remove(stream);
        }
    }

    private void refuse(SocketChannel s, String why) {
        refused.incrementAndGet();
        log.println(why);
        try {
            s.setOption(StandardSocketOptions.SO_LINGER, 0); // reset: the client must not take it for a reply
        } catch (IOException e) {
            // already broken; close below is all that is left
        }
        try {
            s.close();
        } catch (IOException e) {
            log.println(why + " (closing failed too: " + TunnelStream.describe(e) + ")");
        }
    }

    private static String remote(SocketChannel s) {
        try {
            SocketAddress a = s.getRemoteAddress();
            if (a instanceof InetSocketAddress) {
                InetSocketAddress i = (InetSocketAddress) a;
                return i.getAddress().getHostAddress() + ":" + i.getPort();
            }
            return String.valueOf(a);
        } catch (IOException e) {
            return "unknown client";
        }
    }


    /**
     * Stops accepting, aborts every open stream (their clients see a reset and
     * the host a {@code RESET}), and waits for the threads, at most the connect
     * timeout plus 5 s. Idempotent.
     */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        try {
            server.close();
        } catch (IOException e) {
            log.println("tunnel listen: closing the listening socket failed: " + TunnelStream.describe(e));
        }
        for (TunnelStream st : streams) {
            st.abort("tunnel closing", true);
        }
        if (!threads.joinAll(connectTimeoutNanos + CLOSE_NANOS)) {
            log.println("tunnel listen: " + threads.running() + " threads still running after close");
        }
    }
}
