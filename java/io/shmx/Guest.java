package io.shmx;

import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A process attached to a host's segment through one {@link Channel}: the
 * Java face of a C {@code shmx_guest_t}.
 *
 * <pre>{@code
 * try (Guest guest = Guest.connect("orders", Transport.SHM, Duration.ofSeconds(10))) {
 *     Channel ch = guest.channel();
 *     ByteBuffer request = ByteBuffer.allocateDirect(64);
 *     long id = ch.send(Channel.TYPE_DATA, request, -1);
 *     ...
 * }
 * }</pre>
 */
public final class Guest implements AutoCloseable {
    private final String name;
    private final long handle;
    private final Channel channel;
    private boolean closed; // guarded by this

    private Guest(String name, long handle) {
        this.name = name;
        this.handle = handle;
        this.channel = new Channel(Native.guestChannel(handle), null, this);
    }

    /**
     * Connects to the host called {@code name}, waiting up to {@code timeout}
     * for it to appear (the directory is watched; nothing is polled).
     *
     * @param name      the host's name
     * @param transport {@link Transport#SHM}, {@link Transport#UDS}, or {@link Transport#AUTO} (shared memory
     *                  when the host can give it, else the Unix socket: {@link Channel#transport()} says which,
     *                  and a fallback is logged once as a warning through {@link System.Logger})
     * @param timeout   how long to wait for the host; negative waits without limit
     * @return the connected guest
     * @throws NoHostException             if no host listens under that name within the timeout
     * @throws ConnectionRefusedException  if the host refused (credentials, full, transport not offered)
     * @throws SegmentValidationException  if the segment failed validation
     * @throws NativeLibraryException      if libshmx cannot be loaded
     * @throws ShmxException               for other failures, with the native code
     */
    public static Guest connect(String name, Transport transport, Duration timeout) {
        return connect(name, transport, Host.toNanos(timeout));
    }

    /**
     * As {@link #connect(String, Transport, Duration)} with a timeout in nanoseconds.
     *
     * @param name         the host's name
     * @param transport    {@link Transport#SHM}, {@link Transport#UDS} or {@link Transport#AUTO}
     * @param timeoutNanos how long to wait for the host: 0 once, &lt; 0 without limit
     * @return the connected guest
     */
    public static Guest connect(String name, Transport transport, long timeoutNanos) {
        Host.checkName(name);
        NativeLoader.ensureLoaded();
        long h = Native.guestConnect(name, transport.code(), timeoutNanos);
        try {
            return new Guest(name, h);
        } catch (RuntimeException | Error e) {
            Native.guestClose(h); // hang up rather than leave a connected guest no one owns
            throw e;
        }
    }

    /**
     * Attaches as a guest its host spawned ({@link Host#spawn}, or
     * {@code shmx_host_spawn} in C), by the spawn ticket the host put in this
     * process's environment as {@code SHMX_TICKET}; nothing is looked up by
     * name. Waits up to 10 s for the host's welcome (it is normally queued
     * already).
     *
     * <pre>{@code
     * try (Guest guest = Guest.attachTicket()) {
     *     Channel ch = guest.channel();
     *     ...
     * }
     * }</pre>
     *
     * @return the attached guest; {@link #name()} is {@code "(spawned)"}
     * @throws ShmxException              code SHMX_EINVAL if there is no valid ticket (not spawned by a host)
     * @throws ConnectionRefusedException if the host's welcome does not match the ticket, or the host is gone
     * @throws SegmentValidationException if the segment failed validation
     */
    public static Guest attachTicket() {
        return attachTicket(TimeUnit.SECONDS.toNanos(10));
    }

    /**
     * As {@link #attachTicket()}, waiting up to {@code timeoutNanos} (at least 2 s) for the welcome.
     *
     * @param timeoutNanos how long to wait: &lt; 0 without limit
     * @return the attached guest
     */
    public static Guest attachTicket(long timeoutNanos) {
        NativeLoader.ensureLoaded();
        long h = Native.guestAttachTicket(null, timeoutNanos);
        try {
            return new Guest("(spawned)", h);
        } catch (RuntimeException | Error e) {
            Native.guestClose(h);
            throw e;
        }
    }

    /** @return the guest's channel to its host (owned by the guest; freed by {@link #close()}) */
    public Channel channel() {
        return channel;
    }

    /** @return the host's name ({@code "(spawned)"} for a guest attached by {@link #attachTicket()}) */
    public String name() {
        return name;
    }

    /**
     * @return bytes of shared memory the guest has mapped (0 for uds)
     * @throws IllegalStateException if the guest is closed
     */
    public synchronized long mappedBytes() {
        if (closed) {
            throw new IllegalStateException("guest of " + name + " is closed");
        }
        return Native.guestMappedBytes(handle);
    }

    /** @return true once closed */
    public synchronized boolean isClosed() {
        return closed;
    }

    /** Closes the channel, unmaps the segment and hangs up. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        channel.markClosedByOwner();
        Native.guestClose(handle);
    }

    @Override
    public String toString() {
        return "Guest{" + name + ", " + channel.transport() + (isClosed() ? ", closed" : "") + "}";
    }
}
