package io.shmx;

import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Waits for many channels at once on one thread, in one native epoll set:
 * each registered channel's {@link Channel#eventFd()} is in it, and
 * {@link #poll(long, TimeUnit)} arms every channel before it sleeps, so a
 * sender rings only channels whose receiver sleeps here.
 *
 * <pre>{@code
 * try (ChannelPoller poller = new ChannelPoller()) {
 *     poller.register(a);
 *     poller.register(b);
 *     Message m = new Message();
 *     while (running) {
 *         for (Channel ch : poller.poll(1, TimeUnit.SECONDS)) {
 *             int rc;
 *             while ((rc = ch.receive(m, 0)) == Status.OK) {
 *                 handle(ch, m);
 *                 ch.release(m);
 *             }
 *             if (rc != Status.EMPTY) poller.unregister(ch); // closed or peer gone
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>Threads: register, unregister, poll and close belong to the polling
 * thread (the one that receives on the channels); {@link #wakeup()} may be
 * called from any thread. A channel must be unregistered before it is closed.
 */
public final class ChannelPoller implements AutoCloseable {
    private static final int MAX_READY = 64;

    private final long handle;
    private final List<Channel> slots = new ArrayList<>(); // token -> channel (null: free)
    private final int[] tokens = new int[MAX_READY];
    private final List<Channel> ready = new ArrayList<>();
    private final List<Channel> readyView = Collections.unmodifiableList(ready);
    private volatile boolean closed;

    /**
     * Creates an empty poller.
     *
     * @throws ShmxException if the epoll set cannot be made (descriptor limit)
     */
    public ChannelPoller() {
        NativeLoader.ensureLoaded();
        long h = Native.pollerCreate();
        if (h < 0) {
            throw new ShmxException("ChannelPoller: " + Status.toString(h), (int) h, null);
        }
        handle = h;
    }

    /**
     * Adds a channel. A channel may be registered once.
     *
     * @param ch an open channel with doorbells (any uds channel, a shm channel of a current host and guest)
     * @throws IllegalStateException    if the poller or the channel is closed, or the channel has no doorbells
     * @throws IllegalArgumentException if the channel is registered already
     */
    public void register(Channel ch) {
        checkOpen();
        if (slots.contains(ch)) {
            throw new IllegalArgumentException("the channel is registered already: " + ch);
        }
        int token = slots.indexOf(null);
        if (token < 0) {
            token = slots.size();
            slots.add(null);
        }
        int rc = Native.pollerAdd(handle, ch.eventFd(), token);
        if (rc < 0) {
            throw new ShmxException("ChannelPoller.register: " + Status.toString(rc), rc, null);
        }
        slots.set(token, ch);
    }

    /**
     * Removes a channel (a no-op if it is not registered). Call it before closing the channel.
     *
     * @param ch the channel
     */
    public void unregister(Channel ch) {
        int token = slots.indexOf(ch);
        if (token < 0 || closed) {
            return;
        }
        slots.set(token, null);
        ready.remove(ch);
        if (!ch.isClosed()) {
            Native.pollerRemove(handle, ch.eventFd()); // a closed channel's set left epoll with it
        }
    }

    /**
     * Arms every registered channel and, if none has anything, sleeps until
     * one may or the timeout passes or {@link #wakeup()} is called. A channel
     * returned here should be received from (timeout 0) until
     * {@link Status#EMPTY} before the next poll; its state changes (closed,
     * peer gone) are reported by that receive.
     *
     * @param timeout how long to sleep (millisecond granularity); 0 only looks, negative without limit
     * @param unit    the timeout's unit
     * @return the channels that may have something to receive, in no particular order; empty on timeout or
     *         wakeup. The list is reused by the next call.
     * @throws IllegalStateException if the poller is closed
     */
    public List<Channel> poll(long timeout, TimeUnit unit) {
        checkOpen();
        ready.clear();
        for (Channel ch : slots) {
            if (ch != null && ch.arm()) {
                ready.add(ch);
            }
        }
        if (!ready.isEmpty()) {
            return readyView; // something is there: never sleep
        }
        int n = Native.pollerWait(handle, tokens, timeout < 0 ? -1L : unit.toNanos(timeout));
        if (n < 0) {
            throw new ShmxException("ChannelPoller.poll: " + Status.toString(n), n, null);
        }
        for (int i = 0; i < n; i++) {
            int t = tokens[i];
            Channel ch = t < slots.size() ? slots.get(t) : null;
            if (ch != null && !ready.contains(ch)) {
                ready.add(ch);
            }
        }
        return readyView;
    }

    /** Makes a {@link #poll(long, TimeUnit)} in progress, or the next one, return. Any thread. */
    public void wakeup() {
        synchronized (this) {
            if (!closed) {
                Native.pollerWakeup(handle);
            }
        }
    }

    /** @return the channels registered now */
    public List<Channel> channels() {
        List<Channel> list = new ArrayList<>();
        for (Channel ch : slots) {
            if (ch != null) {
                list.add(ch);
            }
        }
        return list;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the poller is closed");
        }
    }

    /** Frees the epoll set; the channels stay open. Idempotent; not concurrent with {@link #poll}. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            Native.pollerClose(handle);
        }
        slots.clear();
        ready.clear();
    }
}
