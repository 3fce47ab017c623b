package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.Claim;
import io.shmx.ConnectionRefusedException;
import io.shmx.Host;
import io.shmx.Message;
import io.shmx.ShmxConfig;
import io.shmx.ShmxException;
import io.shmx.Status;
import io.shmx.Transport;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The pong service (normative protocol, DESIGN.md section 5) in this JVM: a
 * {@link Host} that serves every guest in its own thread.
 * <ul>
 *   <li>type 2 (DATA): reply with the same payload, type 4 (RESPONSE), id = the request's id;</li>
 *   <li>type 256 (sink): count it and add its length, no reply;</li>
 *   <li>type 257 (sink end): reply type 4, id = the request's id, 16 bytes: u64 LE count of sink messages
 *       since the previous sink end, u64 LE their total bytes;</li>
 *   <li>anything else is ignored.</li>
 * </ul>
 * When a guest's channel closes or its peer is gone, the channel is freed and
 * the others go on. Used by {@code shmx pong}, {@code shmx demo} and the tests.
 */
public final class PongServer implements AutoCloseable {
    /** Frame type of a sink message. */
    public static final int TYPE_SINK = 256;
    /** Frame type of the sink end request. */
    public static final int TYPE_SINK_END = 257;

    private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long REPLY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final Host host;
    private final boolean busySpin;
    private final long spin;
    private final PrintStream log;
    private final Thread acceptor;
    private final List<Thread> workers = new ArrayList<>(); // guarded by this
    private final AtomicLong guestsServed = new AtomicLong();
    private final AtomicLong failures = new AtomicLong();
    private volatile boolean running = true;
    private boolean closed; // guarded by this

    /**
     * Creates the host and starts accepting.
     *
     * @param name       host name
     * @param transports transports offered
     * @param maxGuests  guests served at once
     * @param spin       native spin iterations for the channels, or -1 for the library default
     * @param busySpin   true: the service threads never sleep while waiting (lowest latency, a core each)
     * @param log        where to report problems (stderr)
     * @throws ShmxException if the host cannot be created
     */
    public PongServer(String name, Set<Transport> transports, int maxGuests, long spin, boolean busySpin,
                      PrintStream log) {
        ShmxConfig.Builder b = ShmxConfig.builder().maxChannels(maxGuests).transports(transports);
        if (spin >= 0) {
            b.spinIterations(spin);
        }
        this.host = Host.create(name, b.build());
        this.busySpin = busySpin;
        this.spin = spin;
        this.log = log;
        this.acceptor = new Thread(this::acceptLoop, "pong-accept-" + name);
        this.acceptor.setDaemon(true);
        this.acceptor.start();
    }

    /** @return the host */
    public Host host() {
        return host;
    }

    /** @return the socket path the host listens on */
    public String socketPath() {
        return host.socketPath();
    }

    /** @return guests accepted so far */
    public long guestsServed() {
        return guestsServed.get();
    }

    /** @return problems seen (failed replies, corrupt channels, refused guests) */
    public long failures() {
        return failures.get();
    }

    private void acceptLoop() {
        while (running) {
            Channel ch;
            try {
                ch = host.accept(POLL_NANOS);
            } catch (ConnectionRefusedException e) {
                failures.incrementAndGet();
                log.println("pong: refused a guest: " + e.getMessage());
                continue;
            } catch (IllegalStateException e) {
                return; // closed
            } catch (ShmxException e) {
                failures.incrementAndGet();
                log.println("pong: accept failed: " + e.getMessage());
                Pause.quietly(10);
                continue;
            }
            if (ch == null) {
                continue;
            }
            guestsServed.incrementAndGet();
            if (busySpin) {
                ch.setNativeIdle(Channel.SPIN_FOREVER, 0);
            } else if (spin >= 0) {
                ch.setNativeIdle(spin, host.config().yieldIterations());
            }
            Thread t = new Thread(() -> serve(ch), "pong-" + host.name() + "-" + ch.index());
            t.setDaemon(true);
            synchronized (this) {
                if (closed) {
                    ch.close();
                    return;
                }
                workers.removeIf(w -> !w.isAlive());
                workers.add(t);
            }
            t.start();
        }
    }

    /** Serves one guest until its channel closes, its peer is gone or the server stops. */
    private void serve(Channel ch) {
        Message m = new Message();
        byte[][] spare = {new byte[0]};
        long sinkCount = 0;
        long sinkBytes = 0;
        try {
            while (running) {
                int rc = ch.receive(m, POLL_NANOS);
                if (rc == Status.OK) {
                    boolean ok = true;
                    try {
                        int type = m.type();
                        if (type == Channel.TYPE_DATA) {
                            ok = reply(ch, m, spare);
                        } else if (type == TYPE_SINK) {
                            if ((m.flags() & Channel.FLAG_MORE) == 0) {
                                sinkCount++; // a message counts once, at its last fragment
                            }
                            sinkBytes += m.length();
                        } else if (type == TYPE_SINK_END) {
                            ok = replySinkEnd(ch, m.id(), sinkCount, sinkBytes);
                            sinkCount = 0;
                            sinkBytes = 0;
                        }
                    } finally {
                        if (m.isHeld()) {
                            ch.release(m);
                        }
                    }
                    if (!ok) {
                        break;
                    }
                } else if (rc == Status.EMPTY) {
                    if (!ch.peerAlive()) {
                        break;
                    }
                } else if (rc == Status.CLOSED || rc == Status.HOST_GONE) {
                    break;
                } else if (rc == Status.CORRUPT || rc == Status.BAD_SLOT) {
                    failures.incrementAndGet();
                    log.println("pong: channel " + ch.index() + ": " + Status.toString(rc) + "; dropping the guest");
                    break;
                } else {
                    // a frame that failed decoding was consumed and dropped; go on
                    failures.incrementAndGet();
                    log.println("pong: channel " + ch.index() + ": dropped a message: " + Status.toString(rc));
                }
            }
        } catch (RuntimeException e) {
            failures.incrementAndGet();
            log.println("pong: channel " + ch.index() + " failed: " + e);
        } finally {
            ch.close();
        }
    }

    /**
     * Echo: same payload, type 4, the request's id. The reply is claimed without
     * waiting and copied straight across. If there is no room right now, the
     * request is copied out and released first, and only then does the reply
     * wait: guests sending large messages at once could otherwise hold every
     * slot while each reply waits for one. The caller releases {@code m} if it
     * is still held.
     */
    private boolean reply(Channel ch, Message m, byte[][] spare) {
        int len = m.length();
        long id = m.id();
        int flags = m.flags() & Channel.FLAG_MORE; // a fragment is echoed as a fragment
        Claim c = ch.claim(len, 0);
        if (c != null) {
            if (len > 0) {
                c.putBytes(0, m.buffer(), m.offset(), len);
            }
            long r = c.commit(Channel.TYPE_RESPONSE, flags, id);
            return r > 0 || replyFailed(ch, r);
        }
        int status = ch.lastClaimStatus();
        if (status != Status.WOULD_BLOCK) {
            return replyFailed(ch, status);
        }
        if (spare[0].length < len) {
            spare[0] = new byte[len]; // grows once per size, never per message
        }
        m.copyTo(spare[0], 0);
        ch.release(m);
        long r = ch.send(Channel.TYPE_RESPONSE, flags, id, spare[0], 0, len, REPLY_TIMEOUT_NANOS);
        return r > 0 || replyFailed(ch, r);
    }

    private boolean replySinkEnd(Channel ch, long id, long count, long bytes) {
        Claim c = ch.claim(16, REPLY_TIMEOUT_NANOS);
        if (c == null) {
            return replyFailed(ch, ch.lastClaimStatus());
        }
        c.putLong(0, count).putLong(8, bytes);
        long r = c.commit(Channel.TYPE_RESPONSE, 0, id);
        return r > 0 || replyFailed(ch, r);
    }

    private boolean replyFailed(Channel ch, long status) {
        if (status != Status.CLOSED) {
            failures.incrementAndGet();
            log.println("pong: channel " + ch.index() + ": reply failed: " + Status.toString(status));
        }
        return false;
    }

    /**
     * Stops accepting, wakes and joins the service threads (bounded), and
     * closes the host. Idempotent.
     */
    @Override
    public void close() {
        List<Thread> ws;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            running = false;
            ws = new ArrayList<>(workers);
        }
        joinQuietly(acceptor, 5_000);
        for (Channel c : host.channels()) {
            c.shutdown();
        }
        for (Thread t : ws) {
            joinQuietly(t, 5_000);
        }
        host.close();
    }

    private static void joinQuietly(Thread t, long millis) {
        try {
            t.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

}
