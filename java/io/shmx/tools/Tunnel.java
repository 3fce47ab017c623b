package io.shmx.tools;

import io.shmx.ConfigurationException;
import io.shmx.HostExistsException;
import io.shmx.ShmxException;
import io.shmx.Transport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * {@code shmx tunnel listen|connect}: carries TCP connections over shmx.
 *
 * <pre>
 * scripts/shmx tunnel connect --name web --target 127.0.0.1:8080 &amp;   # the shmx host, next to the server
 * scripts/shmx tunnel listen --listen 127.0.0.1:9090 --name web &amp;    # clients connect to 127.0.0.1:9090
 * </pre>
 *
 * <p>Design: the connect end is the shmx host ({@link TunnelConnector}) with
 * one channel per stream; the listen end ({@link TunnelListener}) accepts TCP
 * connections and connects one guest per connection, so streams share
 * nothing but the host and each has its own rings, flow control and
 * failure. Each end runs two threads per stream, one per direction (socket to
 * channel, channel to socket); the channel waits sleep on the futex (shm) or in
 * poll (uds) without spinning first ({@code --spin N} adds N busy polls, for
 * machines with cores to spare), so idle streams cost no CPU and busy ones
 * leave the cores to the real work. The byte protocol
 * ({@code OPEN}, {@code DATA}, {@code END} for a FIN, {@code RESET} for a
 * failure) is described in {@link TunnelStream}. {@code --transport uds} runs
 * the same tunnel over the library's Unix-socket transport.
 *
 * <p>Either end prints one line to stderr when it is ready, reports every
 * failure with the stream's number and cause, keeps serving the other
 * streams, and on SIGTERM or SIGINT aborts the open streams, closes cleanly
 * and exits 0. Exit status 2 is a usage error, 1 a failure to start.
 */
final class Tunnel {
    static final String USAGE_LISTEN = "tunnel listen --listen HOST:PORT --name NAME [--transport shm|uds]"
            + " [--max-streams N] [--connect-timeout-ms T] [--spin N]";
    static final String USAGE_CONNECT = "tunnel connect --name NAME --target HOST:PORT [--transport shm|uds|both]"
            + " [--max-streams N] [--ring-bytes B] [--spin N]";
    /** Streams open at once by default. */
    static final int DEFAULT_MAX_STREAMS = 64;

    private Tunnel() {
    }

    static int run(String[] argv) {
        if (argv.length == 0 || !(argv[0].equals("listen") || argv[0].equals("connect"))) {
            System.err.println("tunnel: the first argument is listen or connect");
            System.err.println("usage: shmx " + USAGE_LISTEN);
            System.err.println("       shmx " + USAGE_CONNECT);
            return Main.EXIT_USAGE;
        }
        String[] rest = Arrays.copyOfRange(argv, 1, argv.length);
        return argv[0].equals("listen") ? listen(rest) : connect(rest);
    }

    private static int listen(String[] argv) {
        TunnelListener listener;
        try {
            Args a = Args.parse(argv, Set.of("listen", "name", "transport", "max-streams", "connect-timeout-ms",
                    "spin"), Set.of());
            InetSocketAddress at = address(a.required("listen"), "--listen");
            String name = a.required("name");
            Transport t = transport(a.string("transport", "shm"));
            int max = (int) a.number("max-streams", DEFAULT_MAX_STREAMS, 1, 1024);
            long timeoutMs = a.number("connect-timeout-ms", 10_000, 0, 3_600_000);
            long spin = a.number("spin", -1, 0, 0xFFFF_FFFFL);
            try {
                listener = new TunnelListener(at, name, t, max, TimeUnit.MILLISECONDS.toNanos(timeoutMs), spin,
                        System.err);
            } catch (IOException e) {
                System.err.println("tunnel listen: cannot listen on " + a.required("listen") + ": "
                        + TunnelStream.describe(e));
                return Main.EXIT_FAILURE;
            }
            System.err.println("tunnel listen: " + at.getHostString() + ":" + listener.localPort() + " -> host " + name + " over "
                    + t.name().toLowerCase(Locale.ROOT) + " (" + max + " streams at most)");
        } catch (Args.UsageException | IllegalArgumentException e) {
            System.err.println("tunnel listen: " + e.getMessage());
            System.err.println("usage: shmx " + USAGE_LISTEN);
            return Main.EXIT_USAGE;
        }
        return serveUntilSignalled(listener, "tunnel-listen-shutdown");
    }

    private static int connect(String[] argv) {
        TunnelConnector connector;
        String name;
        try {
            Args a = Args.parse(argv, Set.of("name", "target", "transport", "max-streams", "ring-bytes", "spin"),
                    Set.of());
            name = a.required("name");
            InetSocketAddress target = address(a.required("target"), "--target");
            Set<Transport> ts = transports(a.string("transport", "both"));
            int max = (int) a.number("max-streams", DEFAULT_MAX_STREAMS, 1, 1024);
            int ring = (int) a.number("ring-bytes", TunnelConnector.DEFAULT_RING_BYTES, 4096, 1 << 30);
            long spin = a.number("spin", -1, 0, 0xFFFF_FFFFL);
            try {
                connector = new TunnelConnector(name, ts, target, max, ring, spin, System.err);
            } catch (HostExistsException e) {
                System.err.println("tunnel connect: a host named " + name + " is already running: " + e.getMessage());
                return Main.EXIT_FAILURE;
            } catch (ConfigurationException e) {
                System.err.println("tunnel connect: " + e.getMessage());
                return Main.EXIT_USAGE;
            } catch (ShmxException e) {
                System.err.println("tunnel connect: cannot create host " + name + ": " + e.getMessage());
                return Main.EXIT_FAILURE;
            }
            System.err.println("tunnel connect: host " + name + " (" + connector.host().socketPath() + ") -> "
                    + target.getHostString() + ":" + target.getPort() + " (" + max + " streams at most)");
        } catch (Args.UsageException | IllegalArgumentException e) {
            System.err.println("tunnel connect: " + e.getMessage());
            System.err.println("usage: shmx " + USAGE_CONNECT);
            return Main.EXIT_USAGE;
        }
        return serveUntilSignalled(connector, "tunnel-connect-shutdown");
    }

    /** Serves until SIGTERM or SIGINT, then closes {@code end} and exits 0 (not the JVM's 128 + signal). */
    private static int serveUntilSignalled(AutoCloseable end, String hookName) {
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                end.close();
            } catch (Exception e) {
                System.err.println("tunnel: closing failed: " + e);
            }
            done.countDown();
            System.out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(Main.EXIT_OK);
        }, hookName));
        System.err.flush();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return Main.EXIT_OK;
    }

    /** HOST:PORT, the port 0 .. 65535. */
    static InetSocketAddress address(String text, String option) throws Args.UsageException {
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw new Args.UsageException(option + " needs HOST:PORT: '" + text + "'");
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new Args.UsageException(option + " needs a numeric port: '" + text + "'");
        }
        if (port < 0 || port > 65535) {
            throw new Args.UsageException(option + " port must be in 0 .. 65535: '" + text + "'");
        }
        InetSocketAddress a = new InetSocketAddress(text.substring(0, colon), port);
        if (a.isUnresolved()) {
            throw new Args.UsageException(option + ": unknown host '" + text.substring(0, colon) + "'");
        }
        return a;
    }

    private static Transport transport(String name) throws Args.UsageException {
        try {
            return Transport.parse(name);
        } catch (IllegalArgumentException e) {
            throw new Args.UsageException("--transport must be shm or uds: '" + name + "'");
        }
    }

    private static Set<Transport> transports(String name) throws Args.UsageException {
        if (name.equals("both")) {
            return EnumSet.of(Transport.SHM, Transport.UDS);
        }
        return EnumSet.of(transport(name));
    }
}
