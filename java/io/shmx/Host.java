package io.shmx;

import io.shmx.internal.ConfigLayout;
import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
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
 * <p>Guests that end (close, die, exit, or are expelled for leaving messages
 * unconsumed past {@link ShmxConfig#livenessMillis()}) are noticed at once by
 * the host's service thread, which takes back their slots and tells the
 * {@link PeerListener} set with {@link #onPeerEvent(PeerListener)}:
 *
 * <pre>{@code
 * host.onPeerEvent(e -> log.info("guest " + e.peer() + " " + e.reason() + ", " + e.reclaimedSlots()
 *         + " slots taken back"));
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
    private volatile PeerListener peerListener;
    private long peerHook; // guarded by this: the native trampoline's state (holds a global ref to this), or 0
    private volatile Thread serviceThread; // the thread events arrive on, once one did

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
     * <p>A process one of whose guests was quarantined waits before its next connection is admitted:
     * 10 ms after a first violation, twice as long after each further one (at most 1 s), and again
     * after each admission until it is forgotten, 10 s after its last violation. Its connection is held
     * unanswered meanwhile (one per process: a newer one replaces it, and the older is refused with
     * {@code SHMX_EBACKOFF}) while other guests are admitted; the call running when its wait ends, or
     * the next one, admits it. Guests in this process never wait.
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

    /**
     * Starts {@code command} as a guest of this host, with this process's
     * environment and working directory. See
     * {@link #spawn(List, Map, Path)}.
     *
     * @param command the program and its arguments
     * @return the running child with the host's channel to it
     */
    public SpawnedGuest spawn(List<String> command) {
        return spawn(command, null, null);
    }

    /**
     * Starts {@code command} as a guest of this host over shared memory
     * ({@code shmx_host_spawn}): a channel entry is reserved with a fresh
     * epoch, and the child gets its end of the host's socket as descriptor 3
     * and {@code SHMX_TICKET} in its environment, so it attaches with
     * {@link Guest#attachTicket()} (or {@code shmx_guest_attach_ticket}, or
     * {@code shmx-ping --ticket}) without a name. The child inherits
     * descriptors 0, 1 and 2 and nothing else. {@link ProcessBuilder} cannot
     * do this: it cannot pass a descriptor. The child's exit reaches the
     * host's peer listener at once (pidfd).
     *
     * <pre>{@code
     * SpawnedGuest g = host.spawn(List.of("java", "-cp", cp, "com.example.Worker"));
     * Channel ch = g.channel();   // like one from accept()
     * }</pre>
     *
     * @param command     the program (searched in PATH when it has no '/') and its arguments
     * @param environment the child's whole environment, or null for this process's
     *                    ({@code SHMX_TICKET} is set either way)
     * @param directory   the child's working directory, or null for this process's
     * @return the running child with the host's channel to it (the channel is the host's, like an accepted one)
     * @throws IllegalArgumentException   if the command is empty
     * @throws ConnectionRefusedException if no channel entry is free or the host serves no shared memory
     * @throws ShmxException              if the program cannot be run (code -ENOENT, -EACCES, ...) or
     *                                    another system call failed
     * @throws IllegalStateException      if the host is closed
     */
    public SpawnedGuest spawn(List<String> command, Map<String, String> environment, Path directory) {
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("host " + name + " is closed");
            }
        }
        return SpawnedGuest.start(this, handle, command, environment, directory);
    }

    /** Takes a spawned guest's channel into the host's care (as accept does). */
    synchronized void adopt(Channel c) {
        channels.put(c, Boolean.TRUE);
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

    /**
     * @return the transports this host can give now: its configuration's, without {@link Transport#SHM} if the
     *         segment could not be created (hybrid fallback: guests asking for {@link Transport#AUTO} then get
     *         {@link Transport#UDS})
     * @throws IllegalStateException if the host is closed
     */
    public synchronized Set<Transport> transports() {
        if (closed) {
            throw new IllegalStateException("host " + name + " is closed");
        }
        int bits = Native.hostTransports(handle);
        EnumSet<Transport> s = EnumSet.noneOf(Transport.class);
        if ((bits & Transport.SHM.code()) != 0) {
            s.add(Transport.SHM);
        }
        if ((bits & Transport.UDS.code()) != 0) {
            s.add(Transport.UDS);
        }
        return s;
    }

    /**
     * Sets the listener told whenever a guest of this host ends: it closed, died (its socket hung up without a
     * close), a spawned guest exited, or it was expelled. One listener at a time; {@code null} removes it.
     * Events come on the host's service thread; see {@link PeerListener} for what a listener may do there.
     * Events of a guest that ended while no listener was set are not replayed.
     *
     * @param listener the listener, or null
     * @throws IllegalStateException if the host is closed
     */
    public void onPeerEvent(PeerListener listener) {
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException("host " + name + " is closed");
            }
            peerListener = listener;
            if (listener != null && peerHook == 0) {
                // Installed once and kept until close: the C side may be about to call the old hook
                // right now (it calls without its lock), so it is never freed while the host lives.
                peerHook = Native.hostListen(handle, this);
            }
        }
    }

    /** Called from C (native/jni/shmx_jni_liveness.c) on the service thread; must not throw. */
    @SuppressWarnings("unused")
    private void peerEvent(int peer, int epoch, int reason, int pid, int exitStatus, int reclaimed, int violation,
            long noticed) {
        serviceThread = Thread.currentThread();
        PeerListener l = peerListener;
        if (l == null) {
            return;
        }
        try {
            PeerEvent.Reason r = PeerEvent.Reason.fromCode(reason);
            l.onPeerEvent(new PeerEvent(peer, Integer.toUnsignedLong(epoch), r, pid,
                    r == PeerEvent.Reason.EXITED ? OptionalInt.of(exitStatus) : OptionalInt.empty(), reclaimed,
                    violation, noticed));
        } catch (Throwable t) { // a listener's failure must not reach the service thread
            try {
                System.getLogger(Host.class.getName()).log(System.Logger.Level.WARNING,
                        "peer listener of host " + name + " threw", t);
            } catch (Throwable ignored) {
                // nothing more to do: logging itself failed (e.g. out of memory)
            }
        }
    }

    /** Closing from the listener would wait for the service thread, which is the caller. */
    void checkNotServiceThread(String what) {
        if (Thread.currentThread() == serviceThread) {
            throw new IllegalStateException("cannot " + what + " from a PeerListener (the host's service thread):"
                    + " hand it to another thread");
        }
    }

    /**
     * Counts the host's pool slots by state, per size class. A diagnostic: it walks the shared lists (cost
     * grows with the pool) and is only a consistent picture on a quiet pool. Empty for a host without a
     * segment (uds only).
     *
     * @return one entry per size class, smallest first
     * @throws IllegalStateException if the host is closed
     */
    public synchronized List<PoolStats> poolStats() {
        if (closed) {
            throw new IllegalStateException("host " + name + " is closed");
        }
        int[] v = new int[1 + 4 * 8];
        int n = Native.hostPoolStats(handle, v);
        List<PoolStats> list = new ArrayList<>(n);
        for (int c = 0; c < n; c++) {
            int at = 1 + 4 * c;
            list.add(new PoolStats(c, v[at], v[at + 1], v[at + 2], v[at + 3]));
        }
        return List.copyOf(list);
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
     * removes the socket. Stops the service thread first: once close returns, no
     * {@link PeerListener} call is running or will run. Idempotent.
     *
     * @throws IllegalStateException if called from a {@link PeerListener}
     */
    @Override
    public void close() {
        checkNotServiceThread("close the host");
        long hook;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            for (Channel c : channels.keySet()) {
                c.markClosedByOwner();
            }
            channels.clear();
            hook = peerHook;
            peerHook = 0;
        }
        // Outside the monitor: destroy joins the service thread, and a listener running on it may still
        // call this host's synchronized methods (they see it closed).
        Native.hostDestroy(handle);
        peerListener = null;
        if (hook != 0) {
            Native.hostListenFree(hook); // no callback can run any more: the thread is gone
        }
    }

    @Override
    public String toString() {
        return "Host{" + name + " at " + socketPath + (isClosed() ? ", closed" : "") + "}";
    }
}
