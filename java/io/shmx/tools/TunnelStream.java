package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.Message;
import io.shmx.MessageBatch;
import io.shmx.Status;

import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One tunnelled TCP connection at one end of the tunnel: a connected socket,
 * the shmx channel that carries its bytes, and the two pumps that move them.
 *
 * <h2>Protocol</h2>
 * Every message on a tunnel channel has one of these frame types (all at or
 * above {@link Channel#TYPE_APPLICATION}):
 * <ul>
 *   <li>{@link #TYPE_OPEN} (256), listen side to connect side, first message of
 *       a channel: u64 LE stream number, then the client's address in UTF-8;</li>
 *   <li>{@link #TYPE_DATA} (257): the next 1 to 64 KiB of the stream;</li>
 *   <li>{@link #TYPE_END} (258), empty: the sender's socket read end of file (a
 *       TCP FIN); the receiver shuts down its socket's output, so the FIN goes
 *       on, and the other direction keeps flowing;</li>
 *   <li>{@link #TYPE_RESET} (259): the sender's side failed (a reset socket, a
 *       failed write, the target refused); the payload is the reason in UTF-8.
 *       The receiver resets its socket (close with {@code SO_LINGER} 0) so the
 *       TCP peer sees the failure instead of a clean end.</li>
 * </ul>
 * Anything else, a lost message (a frame that failed its CRC) or a channel
 * that closes before {@code END} aborts the stream: both sockets are reset,
 * the reason goes to the log with the stream's number, and the other streams
 * go on. Nothing is dropped silently.
 *
 * <h2>Threads and flow</h2>
 * The up pump reads the socket into a direct buffer, up to 64 KiB at a time,
 * and copies each read into one message (the only copy:
 * {@link Channel#send(int, ByteBuffer, long)}); the down pump receives a batch
 * zero-copy, writes each view of shared memory straight to the socket and
 * releases it at once, which gives its ring space back to the sender. Flow control is the channel's own: a sender waits, in 100 ms
 * slices that check for an abort and for a dead peer, until its receiver has
 * released enough; it never drops. One lock orders the up pump's sends and a
 * {@code RESET} from the down pump (a channel has one sender at a time).
 *
 * <p>When both pumps have finished, the socket is closed and the end's
 * {@code release} action gives the channel back (the listen side closes its
 * guest; the connect side waits, bounded, for that guest to hang up and then
 * frees the channel).
 */
final class TunnelStream {
    /** First message, listen side to connect side: u64 LE stream number, then the client address (UTF-8). */
    static final int TYPE_OPEN = Channel.TYPE_APPLICATION;
    /** Stream bytes. */
    static final int TYPE_DATA = Channel.TYPE_APPLICATION + 1;
    /** End of stream in this direction (TCP FIN); empty. */
    static final int TYPE_END = Channel.TYPE_APPLICATION + 2;
    /** The sender's side failed; payload: the reason in UTF-8. */
    static final int TYPE_RESET = Channel.TYPE_APPLICATION + 3;
    /** Most bytes one message carries: 64 KiB fits every configuration's largest payload. */
    static final int CHUNK = 64 * 1024;
    /** Messages one receive takes at most (shm; a uds channel gives one at a time). */
    static final int BATCH = 16;
    /** Each wait is cut in slices this long, so aborts and dead peers are noticed within one. */
    static final long SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /**
     * Native spin iterations before a channel wait sleeps on its futex (or, for
     * uds, in poll), unless {@code --spin} says otherwise: none. A reply through
     * the tunnel takes at least two socket hops, tens of microseconds, longer
     * than any useful spin, and with two threads per stream per end every spin
     * takes a core from the client, the server and the other streams. Measured
     * with scripts/tunnel-bench on 2 shared cores: 20000 spins (the library
     * default) cut the shm tunnel on /small at 8 connections from 11,700 to
     * 1,200 requests/s; 100 spins were 0.87x uds there, 0 spins 1.00x.
     */
    static final long DEFAULT_SPIN = 0;

    private static final long RESET_SEND_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final int MAX_REASON_BYTES = 1024;

    private final long number;
    private final String prefix;
    private final SocketChannel socket;
    private final Channel channel;
    private final Runnable release;
    private final PrintStream log;
    private final ReentrantLock sendLock = new ReentrantLock();
    private final AtomicBoolean aborted = new AtomicBoolean();
    private final AtomicInteger pumpsRunning = new AtomicInteger(2);
    private final AtomicBoolean socketClosed = new AtomicBoolean();
    /** Orders an abort's use of the channel (from any thread) before the channel is given back. */
    private final Object channelGuard = new Object();
    private boolean released; // guarded by channelGuard

    /**
     * @param number  the stream's number (assigned by the listen side, carried in {@code OPEN})
     * @param prefix  how log lines about this stream begin, e.g. "tunnel listen: stream 7 (127.0.0.1:5000)"
     * @param socket  the connected socket, blocking
     * @param channel the channel carrying the stream
     * @param release run once after both pumps ended and the socket is closed: gives the channel back
     * @param log     where failures are reported
     */
    TunnelStream(long number, String prefix, SocketChannel socket, Channel channel, Runnable release,
                 PrintStream log) {
        this.number = number;
        this.prefix = prefix;
        this.socket = socket;
        this.channel = channel;
        this.release = release;
        this.log = log;
    }

    /**
     * Starts the up pump on a new thread from {@code threads} and runs the down
     * pump on the calling thread until the stream ends.
     *
     * @param threads makes the up pump's thread
     */
    void run(TunnelThreads threads) {
        threads.start("up-" + number, this::upPump);
        downPump();
    }

    // ---- socket to channel ---------------------------------------------------------

    private void upPump() {
        // One message's worth per read: the first bytes leave at once and the far end writes them
        // to its socket while this end reads the next (measured: reading four at a time was slower).
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.min(CHUNK, channel.maxPayload()));
        try {
            for (;;) {
                buf.clear();
                int n = socket.read(buf);
                if (n < 0) {
                    send(TYPE_END, buf.flip());
                    return;
                }
                if (!send(TYPE_DATA, buf.flip())) {
                    return;
                }
            }
        } catch (ClosedChannelException e) {
            // only an abort closes the socket while a pump runs, and it reported why; this call does nothing
            abort("socket closed while reading", true);
        } catch (IOException e) {
            abort("read failed: " + describe(e), true);
        } catch (RuntimeException e) {
            abort("up pump failed: " + e, true);
        } finally {
            pumpDone();
        }
    }

    /** Sends one message, waiting for room in slices; false (and the stream aborted) if it could not. */
    private boolean send(int type, ByteBuffer payload) {
        sendLock.lock();
        try {
            for (;;) {
                if (aborted.get()) {
                    return false;
                }
                long r = channel.send(type, payload, SLICE_NANOS);
                if (r > 0) {
                    return true;
                }
                if (r != Status.WOULD_BLOCK) {
                    abort("send to the other end failed: " + Status.toString(r), false);
                    return false;
                }
                if (!channel.peerAlive()) {
                    abort("the other end is gone (waiting to send)", false);
                    return false;
                }
            }
        } finally {
            sendLock.unlock();
        }
    }

    // ---- channel to socket ---------------------------------------------------------

    private void downPump() {
        MessageBatch batch = new MessageBatch(BATCH);
        try {
            for (;;) {
                int n = channel.receiveBatch(batch, SLICE_NANOS);
                if (n > 0) {
                    boolean more;
                    try {
                        more = deliver(batch, n);
                    } finally {
                        channel.releaseAll(batch); // those not released yet: after a failure or an END
                    }
                    if (!more) {
                        return;
                    }
                } else if (n == Status.EMPTY) {
                    if (aborted.get()) {
                        return;
                    }
                    if (!channel.peerAlive()) {
                        abort("the other end is gone before the end of the stream", false);
                        return;
                    }
                } else {
                    // closed before END, the host gone, or a lost (undecodable) message: the stream is broken
                    abort("receive from the other end failed: " + Status.toString(n), false);
                    return;
                }
            }
        } catch (RuntimeException e) {
            abort("down pump failed: " + e, true);
        } finally {
            pumpDone();
        }
    }

    /**
     * Acts on {@code n} received messages in order. DATA is written to the
     * socket straight from shared memory (the view is a direct buffer, so
     * nothing is copied on the way) and released as soon as it is written, so
     * its ring space goes back to the sender while the next one is written;
     * END and RESET end this direction. Returns false when this direction is
     * finished.
     */
    private boolean deliver(MessageBatch batch, int n) {
        for (int i = 0; i < n; i++) {
            Message m = batch.get(i);
            int type = m.type();
            if (type == TYPE_DATA) {
                ByteBuffer view = m.buffer();
                try {
                    while (view.hasRemaining()) {
                        socket.write(view);
                    }
                } catch (IOException e) {
                    abort("write failed: " + describe(e), true);
                    return false;
                }
                channel.release(m);
                continue;
            }
            if (type == TYPE_END) {
                try {
                    socket.shutdownOutput();
                } catch (IOException e) {
                    abort("shutting down output failed: " + describe(e), true);
                }
            } else if (type == TYPE_RESET) {
                abort("reset by the other end: " + reason(m), false);
            } else {
                abort("unexpected message type " + type + " (" + m.length() + " bytes)", true);
            }
            return false;
        }
        return true;
    }

    private static String reason(Message m) {
        int n = Math.min(m.length(), MAX_REASON_BYTES);
        byte[] b = new byte[n];
        m.buffer().get(m.offset(), b, 0, n);
        return new String(b, StandardCharsets.UTF_8);
    }

    // ---- ending ----------------------------------------------------------------

    /**
     * Aborts the stream once: reports {@code why}, resets the socket (which
     * ends a blocked read or write of the pumps), tells the other end with
     * {@code RESET} if asked, and shuts the channel down (which wakes a pump
     * waiting in it). Later calls do nothing.
     *
     * @param why      the reason, for the log and the other end
     * @param tellPeer send {@code RESET} with the reason before shutting the channel down
     */
    void abort(String why, boolean tellPeer) {
        if (!aborted.compareAndSet(false, true)) {
            return;
        }
        log.println(prefix + ": " + why);
        closeSocket(true);
        synchronized (channelGuard) {
            if (released) {
                return; // the pumps had finished and the channel is given back: nothing to wake or tell
            }
            if (tellPeer) {
                sendReset(why);
            }
            channel.shutdown();
        }
    }

    private void sendReset(String why) {
        boolean locked = false;
        try {
            // The up pump leaves the lock within one slice once it sees the abort.
            locked = sendLock.tryLock(2 * SLICE_NANOS + RESET_SEND_NANOS, TimeUnit.NANOSECONDS);
            if (!locked) {
                log.println(prefix + ": could not send RESET: the up pump held the channel");
                return;
            }
            byte[] b = why.getBytes(StandardCharsets.UTF_8);
            long r = channel.send(TYPE_RESET, b, 0, Math.min(b.length, MAX_REASON_BYTES), RESET_SEND_NANOS);
            if (r <= 0 && r != Status.CLOSED) {
                log.println(prefix + ": could not send RESET: " + Status.toString(r)
                        + "; the other end sees the channel close instead");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (locked) {
                sendLock.unlock();
            }
        }
    }

    private void pumpDone() {
        if (pumpsRunning.decrementAndGet() != 0) {
            return;
        }
        closeSocket(false);
        synchronized (channelGuard) {
            released = true; // from here on an abort from another thread must not touch the channel
        }
        release.run();
    }

    private void closeSocket(boolean reset) {
        if (!socketClosed.compareAndSet(false, true)) {
            return;
        }
        try {
            if (reset && socket.isOpen()) {
                socket.setOption(StandardSocketOptions.SO_LINGER, 0); // close sends RST, not FIN
            }
        } catch (IOException e) {
            // the socket is already broken: closing it is all that is left
        }
        try {
            socket.close();
        } catch (IOException e) {
            log.println(prefix + ": closing the socket failed: " + describe(e));
        }
    }

    /**
     * Sets how {@code ch}'s native waits spend their time: {@code spin} busy
     * polls, no yields, then a sleep; {@code spin} &lt; 0 means
     * {@link #DEFAULT_SPIN}.
     *
     * @param ch   the channel
     * @param spin spin iterations, or -1 for the default
     */
    static void setIdle(Channel ch, long spin) {
        ch.setNativeIdle(spin >= 0 ? spin : DEFAULT_SPIN, 0);
    }

    static String describe(IOException e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m;
    }

    /** @return the payload of an {@code OPEN} message: the stream number and the client address */
    static ByteBuffer openPayload(long number, String client) {
        byte[] addr = client.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + addr.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(number).put(addr).flip();
        return b;
    }
}
