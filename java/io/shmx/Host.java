package io.shmx;

import io.shmx.internal.ConfigLayout;
import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The process that owns a shared segment and serves guests: it listens on a
 * Unix socket under a name, checks each guest's credentials and gives it a
 * {@link Channel}. The Java face of a C {@code shmx_host_t}.
 *
 * <pre>{@code
 * try (Host host = Host.create("orders", ShmxConfig.defaults())) {
 *     System.err.println("listening on " + host.socketPath());
 *     Channel ch = host.accept(Duration.ofSeconds(10));   // null on timeout
 *     if (ch != null) {
 *         Message m = new Message();
 *         while (ch.receive(m, -1) == Status.OK) {
 *             ch.send(Channel.TYPE_RESPONSE, 0, m.id(), m.buffer(), -1);  // echo
 *             ch.release(m);
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>Threads: one thread at a time may {@link #accept}. {@link #close()} must
 * not race with an accept in progress or with calls on the channels it
 * closes: {@link Channel#shutdown()} them first and let their threads return.
 */
public final class Host implements AutoCloseable {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]{1,64}");

    private final String name;
    private final long handle;
    private final String socketPath;
    private final ShmxConfig config;
    private final Map<Channel, Boolean> channels = new IdentityHashMap<>(); // guarded by this
    private boolean closed; // guarded by this

    private Host(String name, long handle) {
        this.name = name;
        this.handle = handle;
        this.socketPath = Native.hostSocketPath(handle);
        int[] v = new int[ConfigLayout.LENGTH];
        Native.hostConfig(handle, v);
        this.config = ShmxConfig.ofValues(v);
    }

    /**
     * Creates a host with the library's default configuration.
     *
     * @param name 1 to 64 characters of {@code [A-Za-z0-9._-]}
     * @return the listening host
     * @throws HostExistsException if a live host already has that name
     * @throws ShmxException       if the segment or socket cannot be created
     */
    public static Host create(String name) {
        return create(name, null);
    }

    /**
     * Creates the shared segment described by {@code config} and listens under
     * {@code name} (socket at {@code $XDG_RUNTIME_DIR/shmx/NAME.sock} or
     * {@code /tmp/shmx-UID/NAME.sock}). A stale socket of a dead host with the
     * same name is replaced.
     *
     * @param name   1 to 64 characters of {@code [A-Za-z0-9._-]}
     * @param config the configuration, or null for the defaults
     * @return the listening host
     * @throws IllegalArgumentException if the name is malformed
     * @throws ConfigurationException   if the configuration is rejected
     * @throws HostExistsException      if a live host already has that name
     * @throws NativeLibraryException   if libshmx cannot be loaded
     * @throws ShmxException            for other failures (memory, permissions), with the native code
     */
    public static Host create(String name, ShmxConfig config) {
        checkName(name);
        NativeLoader.ensureLoaded();
        long h = Native.hostCreate(name, config != null ? config.values() : null);
        return new Host(name, h);
    }

    /**
     * Where a host called {@code name} listens (whether or not one runs now):
     * {@code $XDG_RUNTIME_DIR/shmx/NAME.sock} or {@code /tmp/shmx-UID/NAME.sock}.
     *
     * @param name 1 to 64 characters of {@code [A-Za-z0-9._-]}
     * @return the socket path
     * @throws IllegalArgumentException if the name is malformed
     */
    public static String socketPath(String name) {
        checkName(name);
        NativeLoader.ensureLoaded();
        return Native.socketPath(name);
    }

    static void checkName(String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("a host name is 1 to 64 characters of [A-Za-z0-9._-]: " + name);
        }
    }

    /**
     * Waits for one guest and returns the host side of its channel.
     *
     * @param timeout how long to wait; negative waits without limit
     * @return the channel, or null when no guest came within the timeout
     * @throws ConnectionRefusedException if a guest was refused (credentials, no free channel, transport,
     *                                    malformed hello); the host goes on: accept again
     * @throws IllegalStateException      if the host is closed
     */
    public Channel accept(Duration timeout) {
        return accept(toNanos(timeout));
    }

    /**
     * Waits for one guest and returns the host side of its channel.
     *
     * @param timeoutNanos how long to wait: 0 checks once, &lt; 0 waits without limit
     * @return the channel, or null when no guest came within the timeout
     * @throws ConnectionRefusedException if a guest was refused; the host goes on: accept again
     * @throws IllegalStateException      if the host is closed
     */
    public Channel accept(long timeoutNanos) {
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("host " + name + " is closed");
            }
        }
        long ch = Native.hostAccept(handle, timeoutNanos);
        if (ch == 0) {
            return null;
        }
        Channel c;
        try {
            c = new Channel(ch, this, null);
        } catch (RuntimeException | Error e) {
            Native.channelFree(ch); // the guest is let go and its entry returned
            throw e;
        }
        synchronized (this) {
            channels.put(c, Boolean.TRUE);
        }
        return c;
    }

    static long toNanos(Duration d) {
        if (d.isNegative()) {
            return -1L;
        }
        try {
            return d.toNanos();
        } catch (ArithmeticException e) {
            return -1L;
        }
    }

    synchronized void forget(Channel c) {
        channels.remove(c);
    }

    /** @return the name the host listens under */
    public String name() {
        return name;
    }

    /** @return the path of the listening Unix socket */
    public String socketPath() {
        return socketPath;
    }

    /** @return the configuration as recorded in the segment */
    public ShmxConfig config() {
        return config;
    }

    /**
     * @return bytes of shared memory the host has mapped
     * @throws IllegalStateException if the host is closed
     */
    public synchronized long mappedBytes() {
        if (closed) {
            throw new IllegalStateException("host " + name + " is closed");
        }
        return Native.hostMappedBytes(handle);
    }

    /** @return the channels accepted and not yet closed (a snapshot) */
    public synchronized List<Channel> channels() {
        return new ArrayList<>(channels.keySet());
    }

    /** @return true once closed */
    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Stops listening, closes and frees every channel this host accepted (their
     * {@link Channel} objects report closed afterwards), unmaps the segment and
     * removes the socket. Idempotent.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Channel c : channels.keySet()) {
            c.markClosedByOwner();
        }
        channels.clear();
        Native.hostDestroy(handle);
    }

    @Override
    public String toString() {
        return "Host{" + name + " at " + socketPath + (isClosed() ? ", closed" : "") + "}";
    }
}
