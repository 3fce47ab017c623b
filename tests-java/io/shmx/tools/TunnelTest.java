package io.shmx.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.shmx.TestSupport;
import io.shmx.Transport;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The TCP tunnel end to end in this JVM: a JDK HTTP server as the target, a
 * {@link TunnelConnector} and a {@link TunnelListener} between it and real
 * clients on loopback.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class TunnelTest {
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
    private static final int LARGE = 262_125;
    private static final int HUGE = 3 * 1024 * 1024 + 4321;
    private static final long CONNECT_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final int READ_TIMEOUT_MILLIS = 20_000;

    private final ByteArrayOutputStream logBytes = new ByteArrayOutputStream();
    private final PrintStream log = new PrintStream(logBytes, true, StandardCharsets.UTF_8);
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeEverythingAndCheckNoTunnelThreadIsLeft() throws Exception {
        for (int i = toClose.size() - 1; i >= 0; i--) {
            toClose.get(i).close();
        }
        // close() joins the tunnel threads (bounded): none may be left behind.
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("tunnel-") && t.isAlive()) {
                t.join(5_000);
                assertFalse(t.isAlive(), "thread left running: " + t.getName());
            }
        }
    }

    private String logText() {
        return logBytes.toString(StandardCharsets.UTF_8);
    }

    /** Deterministic body bytes, different per size. */
    private static byte[] body(int size) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) {
            b[i] = (byte) (i * 31 + size + (i >>> 11));
        }
        return b;
    }

    private InetSocketAddress httpBackend(Map<String, byte[]> bodies) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(LOOPBACK, 0), 64);
        ExecutorService exec = Executors.newFixedThreadPool(8);
        for (Map.Entry<String, byte[]> e : bodies.entrySet()) {
            server.createContext(e.getKey(), (HttpExchange x) -> {
                byte[] b = e.getValue();
                x.getRequestBody().readAllBytes();
                x.sendResponseHeaders(200, b.length);
                try (OutputStream os = x.getResponseBody()) {
                    os.write(b);
                }
            });
        }
        server.setExecutor(exec);
        server.start();
        toClose.add(() -> {
            server.stop(0);
            exec.shutdownNow();
            exec.awaitTermination(5, TimeUnit.SECONDS);
        });
        return server.getAddress();
    }

    /** A raw TCP target: runs {@code handler} for each connection on its own thread. */
    private InetSocketAddress rawBackend(SocketHandler handler) throws IOException {
        ServerSocket server = new ServerSocket(0, 64, LOOPBACK);
        ExecutorService exec = Executors.newCachedThreadPool();
        exec.submit(() -> {
            while (!server.isClosed()) {
                Socket s;
                try {
                    s = server.accept();
                } catch (IOException e) {
                    return null; // closed
                }
                exec.submit(() -> {
                    try (Socket c = s) {
                        c.setSoTimeout(READ_TIMEOUT_MILLIS);
                        handler.handle(c);
                    }
                    return null;
                });
            }
            return null;
        });
        toClose.add(() -> {
            server.close();
            exec.shutdownNow();
            exec.awaitTermination(5, TimeUnit.SECONDS);
        });
        return new InetSocketAddress(LOOPBACK, server.getLocalPort());
    }

    interface SocketHandler {
        void handle(Socket s) throws IOException;
    }

    /** Echo until the client's end of stream, then close (FIN). */
    private static void echo(Socket s) throws IOException {
        InputStream in = s.getInputStream();
        OutputStream out = s.getOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
        }
    }

    /** Both tunnel ends: returns the port clients connect to. */
    private int tunnel(InetSocketAddress target, Transport t, int connectMax, int listenMax) throws IOException {
        String name = TestSupport.uniqueName("tunnel");
        TunnelConnector c = new TunnelConnector(name, EnumSet.of(t), target, connectMax,
                TunnelConnector.DEFAULT_RING_BYTES, -1, log);
        toClose.add(c);
        TunnelListener l = new TunnelListener(new InetSocketAddress(LOOPBACK, 0), name, t, listenMax,
                CONNECT_TIMEOUT_NANOS, -1, log);
        toClose.add(l);
        connector = c;
        listener = l;
        return l.localPort();
    }

    private TunnelConnector connector;
    private TunnelListener listener;

    private static Socket client(int port) throws IOException {
        Socket s = new Socket(LOOPBACK, port);
        s.setSoTimeout(READ_TIMEOUT_MILLIS); // a hang fails the test instead of stalling it
        return s;
    }

    /** Writes {@code text}, expects it echoed back. */
    private static void roundTrip(Socket s, String text) throws IOException {
        byte[] b = text.getBytes(StandardCharsets.US_ASCII);
        s.getOutputStream().write(b);
        assertArrayEquals(b, s.getInputStream().readNBytes(b.length));
    }

    /** The socket must end (end of stream or a reset) within the read timeout, never hang. */
    private static void assertClosedByTunnel(Socket s) {
        try {
            int r = s.getInputStream().read();
            assertEquals(-1, r, "expected the connection to end");
        } catch (SocketException e) {
            // a reset: also an end
        } catch (IOException e) {
            fail("the connection did not end: " + e);
        }
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldCarryHttpBodiesByteForByteOverEightConnectionsAtOnce(Transport transport) throws Exception {
        Map<String, byte[]> bodies = Map.of("/small", "hello, tunnel".getBytes(StandardCharsets.US_ASCII),
                "/large", body(LARGE), "/huge", body(HUGE));
        int port = tunnel(httpBackend(bodies), transport, 64, 64);
        ExecutorService clients = Executors.newFixedThreadPool(8);
        toClose.add(() -> {
            clients.shutdownNow();
            clients.awaitTermination(5, TimeUnit.SECONDS);
        });
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(clients)
                .connectTimeout(Duration.ofSeconds(10)).build();
        String[] paths = {"/small", "/large", "/huge", "/large", "/small"};
        ExecutorService users = Executors.newFixedThreadPool(8);
        toClose.add(() -> {
            users.shutdownNow();
            users.awaitTermination(5, TimeUnit.SECONDS);
        });
        List<Future<Integer>> done = new ArrayList<>();
        for (int u = 0; u < 8; u++) {
            int first = u;
            done.add(users.submit(() -> {
                int fetched = 0;
                for (int r = 0; r < paths.length; r++) {
                    String path = paths[(first + r) % paths.length];
                    HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                            .timeout(Duration.ofSeconds(30)).GET().build();
                    HttpResponse<byte[]> resp = http.send(req, HttpResponse.BodyHandlers.ofByteArray());
                    assertEquals(200, resp.statusCode(), path);
                    assertArrayEquals(bodies.get(path), resp.body(), path + " through the " + transport + " tunnel");
                    fetched++;
                }
                return fetched;
            }));
        }
        for (Future<Integer> f : done) {
            assertEquals(paths.length, f.get(45, TimeUnit.SECONDS));
        }
        assertEquals("", logText(), "nothing may fail while the clients fetch");
    }

    @ParameterizedTest
    @EnumSource(Transport.class)
    void shouldCarryEachHalfCloseToTheOtherSide(Transport transport) throws Exception {
        int port = tunnel(rawBackend(TunnelTest::echo), transport, 64, 64);
        try (Socket s = client(port)) {
            byte[] sent = body(200_000);
            s.getOutputStream().write(sent);
            s.shutdownOutput(); // our FIN ends the echo server's read; its FIN must come back
            assertArrayEquals(sent, s.getInputStream().readAllBytes());
        }
    }

    @Test
    void shouldResetTheClientWhenTheBackendResetsItsConnection() throws Exception {
        int port = tunnel(rawBackend(s -> {
            s.getInputStream().readNBytes(5);
            s.setSoLinger(true, 0); // close with RST
        }), Transport.SHM, 64, 64);
        try (Socket s = client(port)) {
            s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
            assertThrows(SocketException.class, () -> s.getInputStream().read(),
                    "the backend's reset must reach the client as a reset");
        }
        assertTrue(logText().contains("reset by the other end"), logText());
    }

    @Test
    void shouldEndTheClientWhenTheBackendClosesAfterAReply() throws Exception {
        int port = tunnel(rawBackend(s -> {
            s.getInputStream().readNBytes(5);
            s.getOutputStream().write("bye".getBytes(StandardCharsets.US_ASCII));
        }), Transport.SHM, 64, 64);
        try (Socket s = client(port)) {
            s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
            assertArrayEquals("bye".getBytes(StandardCharsets.US_ASCII), s.getInputStream().readAllBytes());
        }
    }

    @Test
    void shouldResetTheClientWhenTheTargetRefusesTheConnection() throws Exception {
        InetSocketAddress nobody;
        try (ServerSocket ss = new ServerSocket(0, 1, LOOPBACK)) {
            nobody = new InetSocketAddress(LOOPBACK, ss.getLocalPort());
        }
        int port = tunnel(nobody, Transport.SHM, 64, 64);
        try (Socket s = client(port)) {
            assertClosedByTunnel(s);
        }
        assertTrue(logText().contains("connecting to"), logText());
    }

    @ParameterizedTest
    @EnumSource(value = Limit.class)
    void shouldRefuseAStreamBeyondMaxStreamsAndServeTheOthers(Limit limit) throws Exception {
        InetSocketAddress echo = rawBackend(TunnelTest::echo);
        int port = limit == Limit.LISTEN_END ? tunnel(echo, Transport.SHM, 64, 2) : tunnel(echo, Transport.SHM, 2, 64);
        try (Socket a = client(port); Socket b = client(port)) {
            roundTrip(a, "first");
            roundTrip(b, "second");
            try (Socket c = client(port)) {
                assertClosedByTunnel(c);
            }
            assertEquals(1, limit == Limit.LISTEN_END ? listener.refused() : connector.refused(), logText());
            assertTrue(logText().contains("refused"), logText());
            roundTrip(a, "still first");
            roundTrip(b, "still second");
            a.shutdownOutput();
            assertEquals(-1, a.getInputStream().read());
        }
        // Both streams ended: their channels come back, and a new stream gets through.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while ((listener.openStreams() > 0 || connector.openStreams() > 0) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        try (Socket d = client(port)) {
            roundTrip(d, "after");
        }
    }

    /** Which end enforces the stream limit. */
    enum Limit { LISTEN_END, CONNECT_END }
}
