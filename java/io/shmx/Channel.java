package io.shmx;

import io.shmx.internal.Errors;
import io.shmx.internal.Native;
import io.shmx.internal.Regions;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ReadOnlyBufferException;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * A two-way message link between a host and one guest: the Java face of a C
 * {@code shmx_channel_t}. Get one from {@link Host#accept(java.time.Duration)}
 * or {@link Guest#channel()}.
 *
 * <h2>Sending</h2>
 * Copying: {@link #send(int, byte[], int, int, long)} and
 * {@link #send(int, ByteBuffer, long)} return the message id (&gt; 0) or a
 * negative {@link Status} ({@link Status#WOULD_BLOCK}, {@link Status#CLOSED}).
 * Zero-copy: {@link #claim(int, long)} lends the payload area inside the ring
 * or a pool slot as a {@link Claim}; write it, then {@link Claim#commit(int)}
 * or {@link Claim#abort()}.
 *
 * <h2>Receiving</h2>
 * Zero-copy: {@link #receive(Message, long)} points a reusable {@link Message}
 * at the payload in shared memory; read it, then {@link #release(Message)}.
 * Several messages may be held at once (shm; a uds channel holds one at a
 * time); they must be released in the order they were received. {@link #receiveBatch(MessageBatch, long)} takes up to
 * N messages with one native call. Copying:
 * {@link #receive(byte[], int, int, MessageInfo, long)} copies the payload out
 * and verifies the CRC-32 over the copy. A zero-copy view is only as stable as
 * the sending peer is honest (its CRC was checked when it was received, not
 * again later); use the copying receive when that matters.
 *
 * <h2>When the other side ends</h2>
 * On the guest side, once the host died or was destroyed every send, claim,
 * commit and receive (also one already waiting) throws
 * {@link HostGoneException}, and once the host expelled the guest
 * ({@link ShmxConfig#livenessMillis()}) {@link ExpelledException}; the channel
 * is finished and its {@link Guest} should be closed. {@link #release(Message)}
 * and {@link Claim#abort()} return those codes instead of throwing, so that
 * clean-up in a {@code finally} block still runs. A channel the other side
 * merely closed returns {@link Status#CLOSED} (after what was published has
 * been received). The host learns of a guest's end through
 * {@link Host#onPeerEvent(PeerListener)}.
 *
 * <h2>Timeouts and waiting</h2>
 * Timeouts are nanoseconds: 0 tries once, a negative value waits without
 * limit, a positive value waits at most that long. The native wait spins, then
 * yields, then sleeps on a shared futex ({@link #setNativeIdle(long, long)}
 * tunes it); {@link #receive(Message, IdleStrategy, long)} polls with a Java
 * {@link IdleStrategy} instead.
 *
 * <h2>Threads</h2>
 * At most one thread may send (send, claim, commit, abort) and at most one
 * thread may receive (receive, batch receive, release) at a time; the two may
 * be different threads. {@link #shutdown()} may be called from any thread and
 * wakes both. {@link #close()} (and {@link Host#close()} or
 * {@link Guest#close()}) frees native memory and unmaps the segment: it must
 * not race with a call in progress on the channel nor with reads of a held
 * {@link Message} or {@link Claim} view, which would then touch unmapped
 * memory. To stop a channel that other threads use: {@link #shutdown()}, wait
 * until those threads have returned and released their messages, then close.
 *
 * <h2>Allocation</h2>
 * In steady state send, claim/commit, receive/release and batch receive
 * allocate nothing: the flyweights, their views and the native structs are
 * created once and reused. Exceptions (misuse only) and {@link Status#toString}
 * allocate.
 *
 * <pre>{@code
 * try (Guest guest = Guest.connect("orders", Transport.SHM, Duration.ofSeconds(5))) {
 *     Channel ch = guest.channel();
 *     byte[] request = "hello".getBytes(StandardCharsets.US_ASCII);
 *     long id = ch.send(Channel.TYPE_DATA, request, 0, request.length, 1_000_000_000L);
 *     Message reply = new Message();
 *     if (ch.receive(reply, 5_000_000_000L) == Status.OK) {
 *         try {
 *             System.out.println("reply to " + reply.id() + ": " + reply.length() + " bytes");
 *         } finally {
 *             ch.release(reply);
 *         }
 *     }
 * }
 * }</pre>
 */
public final class Channel implements AutoCloseable {
    /** Frame type 1: heartbeat. */
    public static final int TYPE_HEARTBEAT = 1;
    /** Frame type 2: data. */
    public static final int TYPE_DATA = 2;
    /** Frame type 3: control. */
    public static final int TYPE_CONTROL = 3;
    /** Frame type 4: response (carries the request's id). */
    public static final int TYPE_RESPONSE = 4;
    /** First frame type free for applications (256). */
    public static final int TYPE_APPLICATION = 256;
    /** Frame flag bit 0: another fragment of this message follows. */
    public static final int FLAG_MORE = 1;
    /** Spin iterations meaning "never sleep" for {@link #setNativeIdle(long, long)} (UINT32_MAX). */
    public static final long SPIN_FOREVER = 0xFFFF_FFFFL;

    private static final int ESTATE = -4121;
    private static final int EORDER = -4122;
    private static final int EFLAGS = -4100;
    private static final int EINVAL = -4120;

    private final long handle;
    private final Host host;
    private final Guest guest;
    private final Transport transport;
    private final int maxPayload;
    private final int maxMessage;
    private final int index;
    private final long epoch;
    private volatile boolean closed;
    private volatile int endCode; // a guest's -SHMX_EHOSTGONE or -SHMX_EEXPELLED once seen: every later call throws it
    private volatile Regions regions;
    private boolean unlistedMemory; // guarded by this: the C side hands out memory outside its regions
    private volatile long unlistedViews;

    // sender side (one thread at a time)
    private final Claim claim = new Claim(this);
    private int lastClaimStatus;
    private ByteBuffer sendBuffer;
    private long sendAddress;

    // receiver side (one thread at a time)
    private final ByteBuffer copyMeta;
    private final long copyMetaAddress;
    private ByteBuffer receiveBuffer;
    private long receiveAddress;

    Channel(long handle, Host host, Guest guest) {
        this.handle = handle;
        this.host = host;
        this.guest = guest;
        this.transport = Transport.fromCode(Native.channelTransport(handle));
        int max = Native.channelMaxPayload(handle);
        this.maxPayload = max < 0 ? Integer.MAX_VALUE : max;
        int maxMsg = Native.channelMaxMessage(handle);
        this.maxMessage = maxMsg < 0 ? Integer.MAX_VALUE : maxMsg;
        this.index = Native.channelIndex(handle);
        this.epoch = Integer.toUnsignedLong(Native.channelEpoch(handle));
        this.regions = Regions.load(handle);
        this.copyMeta = Message.allocateStructs(1);
        this.copyMetaAddress = Native.bufferAddress(copyMeta);
    }

    // ---- sending ---------------------------------------------------------------

    /**
     * Copies {@code src[offset, offset + length)} into a new message and
     * publishes it, with the channel's next sequence number as id.
     *
     * @param type         frame type, 0 .. 65535 ({@link #TYPE_DATA}, or 256 and up for applications)
     * @param src          payload bytes
     * @param offset       first byte
     * @param length       number of bytes, at most {@link #maxMessage()}; above {@link #maxPayload()} the
     *                     message travels as fragments
     * @param timeoutNanos how long to wait for room: 0 once, &lt; 0 without limit (for a fragmented message:
     *                     for the first fragment; the rest waits for the receiver while the channel lives)
     * @return the message id (&gt; 0), {@link Status#WOULD_BLOCK} or {@link Status#CLOSED}
     * @throws IllegalArgumentException if length exceeds {@link #maxMessage()} or type is out of range
     * @throws IllegalStateException    if a claim is open
     */
    public long send(int type, byte[] src, int offset, int length, long timeoutNanos) {
        return send(type, 0, 0L, src, offset, length, timeoutNanos);
    }

    /**
     * Copies {@code src[offset, offset + length)} into a new message with the
     * given header fields and publishes it. The bytes go straight from the
     * array into the ring or slot (one copy).
     *
     * @param type         frame type, 0 .. 65535
     * @param flags        frame flags: 0 or {@link #FLAG_MORE}
     * @param id           0 for the channel's next sequence number, or an explicit id (a response carries its
     *                     request's id)
     * @param src          payload bytes
     * @param offset       first byte
     * @param length       number of bytes, at most {@link #maxMessage()}; above {@link #maxPayload()} the
     *                     message travels as fragments (flags must then be 0)
     * @param timeoutNanos how long to wait for room: 0 once, &lt; 0 without limit (for a fragmented message:
     *                     for the first fragment)
     * @return the message id (&gt; 0), {@link Status#WOULD_BLOCK} or {@link Status#CLOSED}
     * @throws IllegalArgumentException if length exceeds {@link #maxMessage()}, or type/flags are out of range
     * @throws IllegalStateException    if a claim is open
     */
    public long send(int type, int flags, long id, byte[] src, int offset, int length, long timeoutNanos) {
        Objects.checkFromIndexSize(offset, length, src.length);
        checkSend(type, flags, length);
        if (closed) {
            return Status.CLOSED;
        }
        checkEnded("send");
        long r = length > maxPayload
                ? Native.channelSendMessageArray(handle, type, id, src, offset, length, timeoutNanos)
                : Native.channelSendArray(handle, type, flags, id, src, offset, length, timeoutNanos);
        return r > 0 ? r : sendFailure(r, length);
    }

    /**
     * Copies the bytes between {@code src}'s position and limit into a new
     * message and publishes it. The buffer's position does not change.
     *
     * @param type         frame type, 0 .. 65535
     * @param src          payload: direct, heap or read-only
     * @param timeoutNanos how long to wait for room: 0 once, &lt; 0 without limit
     * @return the message id (&gt; 0), {@link Status#WOULD_BLOCK} or {@link Status#CLOSED}
     * @throws IllegalArgumentException if the payload exceeds {@link #maxMessage()}
     * @throws IllegalStateException    if a claim is open
     */
    public long send(int type, ByteBuffer src, long timeoutNanos) {
        return send(type, 0, 0L, src, timeoutNanos);
    }

    /**
     * Copies the bytes between {@code src}'s position and limit into a new
     * message with the given header fields and publishes it. The position does
     * not change. A direct buffer's address is resolved once and cached while
     * the same buffer object is sent again (the channel keeps a reference to
     * the last direct buffer it sent from).
     *
     * @param type         frame type, 0 .. 65535
     * @param flags        frame flags: 0 or {@link #FLAG_MORE}
     * @param id           0 for the channel's next sequence number, or an explicit id
     * @param src          payload: direct, heap or read-only
     * @param timeoutNanos how long to wait for room: 0 once, &lt; 0 without limit
     * @return the message id (&gt; 0), {@link Status#WOULD_BLOCK} or {@link Status#CLOSED}
     * @throws IllegalArgumentException if the payload exceeds {@link #maxMessage()}, or type/flags are out of range
     * @throws IllegalStateException    if a claim is open
     */
    public long send(int type, int flags, long id, ByteBuffer src, long timeoutNanos) {
        int pos = src.position();
        int length = src.limit() - pos;
        if (src.isDirect()) {
            checkSend(type, flags, length);
            if (closed) {
                return Status.CLOSED;
            }
            checkEnded("send");
            if (src != sendBuffer) {
                sendAddress = Native.bufferAddress(src);
                sendBuffer = src;
            }
            long r = Native.channelSend(handle, type, flags, id, sendAddress + pos, length, timeoutNanos);
            Reference.reachabilityFence(src);
            return r > 0 ? r : sendFailure(r, length);
        }
        if (src.hasArray()) {
            return send(type, flags, id, src.array(), src.arrayOffset() + pos, length, timeoutNanos);
        }
        // read-only heap buffer: copy through a claim
        checkSend(type, flags, length);
        if (length > maxPayload) {
            byte[] copy = new byte[length];
            src.duplicate().get(copy);
            return send(type, flags, id, copy, 0, length, timeoutNanos);
        }
        Claim c = claim(length, timeoutNanos);
        if (c == null) {
            return lastClaimStatus;
        }
        c.window.view.put(c.window.offset, src, pos, length);
        return c.commit(type, flags, id);
    }

    private void checkSend(int type, int flags, int length) {
        if ((type & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("frame type must be in 0 .. 65535: " + type);
        }
        if ((flags & ~FLAG_MORE) != 0) {
            throw new IllegalArgumentException("unknown frame flags: 0x" + Integer.toHexString(flags));
        }
        if (length > maxMessage) {
            throw tooBig(length);
        }
        if (length > maxPayload && flags != 0) {
            throw new IllegalArgumentException("a payload above maxPayload (" + maxPayload
                    + " bytes) is sent as fragments, which carry their own flags: flags must be 0");
        }
    }

    private IllegalArgumentException tooBig(int length) {
        return new IllegalArgumentException("payload of " + length + " bytes exceeds this channel's maximum of "
                + maxMessage + " bytes (ShmxConfig.maxMessage)");
    }

    private long sendFailure(long r, int length) {
        ended(r, "send");
        if (r == ESTATE) {
            throw new IllegalStateException("a claim is open on this channel: commit or abort it before sending");
        }
        if (r == Status.TOO_BIG) {
            throw tooBig(length);
        }
        if (r == EFLAGS || r == EINVAL) {
            throw new IllegalArgumentException("send rejected: " + Status.toString(r));
        }
        return r;
    }

    /**
     * Reserves room for a {@code length}-byte payload and lends it, zero-copy,
     * as this channel's reusable {@link Claim}: write the payload, then
     * {@link Claim#commit(int)} or {@link Claim#abort()}. Small payloads are a
     * region of the ring itself, larger ones a pool slot.
     *
     * <pre>{@code
     * Claim c = ch.claim(16, 1_000_000L);
     * if (c != null) {
     *     c.putLong(0, System.nanoTime()).putLong(8, 42L);
     *     long id = c.commit(Channel.TYPE_DATA);
     * } else if (ch.lastClaimStatus() == Status.CLOSED) { ... }
     * }</pre>
     *
     * @param length       payload bytes, 0 .. {@link #maxPayload()}
     * @param timeoutNanos how long to wait for ring space or a free slot: 0 once, &lt; 0 without limit
     * @return the open claim, or null when no room came within the timeout or the channel is closed
     *         ({@link #lastClaimStatus()} says which)
     * @throws IllegalArgumentException if length is negative or exceeds {@link #maxPayload()}
     * @throws IllegalStateException    if a claim is already open
     */
    public Claim claim(int length, long timeoutNanos) {
        if (length < 0) {
            throw new IllegalArgumentException("negative claim length " + length);
        }
        if (length > maxPayload) {
            throw new IllegalArgumentException("claim of " + length + " bytes exceeds this channel's maximum payload of "
                    + maxPayload + " bytes (ShmxConfig.maxPayload)");
        }
        if (claim.open) {
            throw new IllegalStateException("a claim is already open on this channel: commit or abort it first");
        }
        if (closed) {
            lastClaimStatus = Status.CLOSED;
            return null;
        }
        checkEnded("claim");
        long a = Native.channelClaim(handle, length, timeoutNanos);
        if (a < 0) {
            lastClaimStatus = (int) sendFailure(a, length);
            return null;
        }
        lastClaimStatus = Status.OK;
        claim.open(a, length);
        return claim;
    }

    /** @return the outcome of the last {@link #claim(int, long)}: OK, WOULD_BLOCK or CLOSED */
    public int lastClaimStatus() {
        return lastClaimStatus;
    }

    /** Commits the open claim; {@code length} &lt; 0 sends all of it. */
    long commitClaim(int type, int flags, long id, int length) {
        if ((type & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("frame type must be in 0 .. 65535: " + type);
        }
        if ((flags & ~FLAG_MORE) != 0) {
            throw new IllegalArgumentException("unknown frame flags: 0x" + Integer.toHexString(flags));
        }
        if (closed) {
            return Status.CLOSED;
        }
        long r = length < 0 ? Native.channelCommit(handle, type, flags, id)
                : Native.channelCommitLen(handle, length, type, flags, id);
        ended(r, "commit");
        if (r == ESTATE) {
            throw new IllegalStateException("commit without an open claim");
        }
        if (r == EFLAGS) {
            throw new IllegalArgumentException("commit rejected: " + Status.toString(r));
        }
        return r;
    }

    int abortClaim() {
        if (closed) {
            return Status.CLOSED;
        }
        int r = Native.channelAbort(handle);
        if (r == ESTATE) {
            throw new IllegalStateException("abort without an open claim");
        }
        return r;
    }

    // ---- receiving -------------------------------------------------------------

    /**
     * Takes the next message, zero-copy: on {@link Status#OK}, {@code message}
     * describes it and its {@link Message#buffer()} views the payload in
     * shared memory until {@link #release(Message)}.
     *
     * @param message      a flyweight not currently holding a message
     * @param timeoutNanos how long to wait: 0 once, &lt; 0 without limit
     * @return {@link Status#OK}, {@link Status#EMPTY}, {@link Status#CLOSED} (closed and drained),
     *         {@link Status#CRC_MISMATCH} or another decode code (that message was dropped),
     *         {@link Status#CORRUPT} (the peer broke the protocol)
     * @throws HostGoneException     (guest) the host died or was destroyed, also while waiting
     * @throws ExpelledException     (guest) the host expelled this guest
     * @throws IllegalStateException if {@code message} still holds an unreleased message, or a uds channel
     *                               already holds another message (uds holds one at a time)
     */
    public int receive(Message message, long timeoutNanos) {
        if (message.held) {
            throw new IllegalStateException("this Message still holds message " + message.id
                    + ": release it before receiving into it again");
        }
        if (closed) {
            return Status.CLOSED;
        }
        checkEnded("receive");
        int rc = Native.channelReceive(handle, message.metaAddress, timeoutNanos);
        if (rc == 0) {
            message.decode(this);
        } else if (rc == ESTATE) {
            throw holdsOne();
        } else {
            ended(rc, "receive");
        }
        return rc;
    }

    /**
     * Like {@link #receive(Message, long)}, but polls without waiting in C and
     * spends the time between polls with {@code idle} (busy spin, yield,
     * back-off) until a message comes or the timeout passes.
     *
     * @param message      a flyweight not currently holding a message
     * @param idle         how to wait between polls (reset before the first poll)
     * @param timeoutNanos how long to wait: 0 once, &lt; 0 without limit
     * @return as {@link #receive(Message, long)}
     */
    public int receive(Message message, IdleStrategy idle, long timeoutNanos) {
        idle.reset();
        long start = timeoutNanos > 0 ? System.nanoTime() : 0L;
        for (;;) {
            int rc = receive(message, 0L);
            if (rc != Status.EMPTY || timeoutNanos == 0) {
                return rc;
            }
            if (timeoutNanos > 0 && System.nanoTime() - start >= timeoutNanos) {
                return Status.EMPTY;
            }
            idle.idle(0);
        }
    }

    /** Throws when a guest's channel is finished for good: the host is gone or expelled this guest. */
    private void ended(long rc, String operation) {
        if (rc == Errors.EHOSTGONE || rc == Errors.EEXPELLED) {
            endCode = (int) rc;
            throw Errors.channelException((int) rc, operation);
        }
    }

    /**
     * Throws what an earlier call found, so that once one call saw the end every later one reports it too
     * (the C library notices a dead host on a send only when it must wait, or every few claims).
     */
    private void checkEnded(String operation) {
        int c = endCode;
        if (c != 0) {
            throw Errors.channelException(c, operation);
        }
    }

    private IllegalStateException holdsOne() {
        return new IllegalStateException("this " + transport + " channel holds one received message at a time:"
                + " release the held message before receiving another");
    }

    /**
     * Gives back a received message: its ring space and pool slot return at
     * once and its view becomes invalid. Messages must be released in the
     * order they were received.
     *
     * @param message a message received from this channel and not yet released
     * @return {@link Status#OK}, {@link Status#BAD_SLOT} (its slot was reclaimed meanwhile),
     *         {@link Status#CLOSED} (the channel was closed; nothing to give back), or on a finished guest
     *         channel {@link Status#HOST_GONE} / {@link Status#EXPELLED} (returned, not thrown: release is
     *         clean-up)
     * @throws IllegalStateException if the message is not held from this channel, or is not the oldest held
     */
    public int release(Message message) {
        if (!message.held || message.channel != this) {
            throw new IllegalStateException(message.held ? "the message was received from another channel"
                    : "the message is not held (never received, or already released)");
        }
        if (closed) {
            message.released();
            return Status.CLOSED;
        }
        int rc = Native.channelRelease(handle, message.metaAddress);
        if (rc == EORDER) {
            throw new IllegalStateException("messages must be released in the order they were received: message "
                    + message.id + " is not the oldest one held");
        }
        message.released();
        return rc;
    }

    /**
     * Receives up to {@link MessageBatch#capacity()} messages with one native
     * call, waiting (within the timeout) only for the first. Each must be
     * released, in order: {@link #releaseAll(MessageBatch)} does that.
     *
     * <pre>{@code
     * MessageBatch batch = new MessageBatch(32);
     * int n = ch.receiveBatch(batch, 1_000_000L);
     * for (int i = 0; i < n; i++) {
     *     Message m = batch.get(i);
     *     handle(m.type(), m.buffer());
     * }
     * if (n > 0) ch.releaseAll(batch);
     * }</pre>
     *
     * @param batch        a batch holding no unreleased message
     * @param timeoutNanos how long to wait for the first message: 0 once, &lt; 0 without limit
     * @return the number received (&ge; 1) or the codes of {@link #receive(Message, long)}
     * @throws IllegalStateException if the batch still holds unreleased messages
     */
    public int receiveBatch(MessageBatch batch, long timeoutNanos) {
        if (batch.holdsAny()) {
            throw new IllegalStateException("the batch still holds unreleased messages: release them first");
        }
        batch.count = 0;
        if (closed) {
            return Status.CLOSED;
        }
        checkEnded("receiveBatch");
        int n = Native.channelReceiveBatch(handle, batch.address, batch.capacity(), timeoutNanos);
        if (n == ESTATE) {
            throw holdsOne();
        }
        ended(n, "receiveBatch");
        if (n > 0) {
            batch.count = n;
            Message[] ms = batch.messages;
            for (int i = 0; i < n; i++) {
                ms[i].decode(this);
            }
        }
        return n;
    }

    /**
     * Releases every message of {@code batch} still held, oldest first.
     *
     * @param batch a batch filled by {@link #receiveBatch(MessageBatch, long)} on this channel
     * @return {@link Status#OK} or the first non-OK status of {@link #release(Message)}
     */
    public int releaseAll(MessageBatch batch) {
        int result = Status.OK;
        Message[] ms = batch.messages;
        for (int i = 0, n = batch.count; i < n; i++) {
            if (ms[i].held) {
                int rc = release(ms[i]);
                if (rc != Status.OK && result == Status.OK) {
                    result = rc;
                }
            }
        }
        return result;
    }

    /**
     * Copies the next message into {@code dst[offset, offset + capacity)},
     * verifies the CRC-32 over the copy, and releases it. The array is pinned
     * only while a message that is already there is copied; the wait happens
     * unpinned.
     *
     * @param dst          destination array
     * @param offset       where to write
     * @param capacity     room available
     * @param info         receives type, flags, id and length; may be null
     * @param timeoutNanos how long to wait: 0 once, &lt; 0 without limit
     * @return the payload length (&ge; 0), {@link Status#BUFFER_TOO_SMALL} (nothing consumed;
     *         {@code info.length()} tells the room needed), or the codes of {@link #receive(Message, long)}
     */
    public int receive(byte[] dst, int offset, int capacity, MessageInfo info, long timeoutNanos) {
        Objects.checkFromIndexSize(offset, capacity, dst.length);
        if (closed) {
            return Status.CLOSED;
        }
        checkEnded("receive");
        long r = Native.channelReceiveCopyArray(handle, dst, offset, capacity, copyMetaAddress, timeoutNanos);
        ended(r, "receive");
        if (info != null && (r >= 0 || r == Status.BUFFER_TOO_SMALL)) {
            info.set(copyMeta);
        }
        return (int) r;
    }

    /**
     * Copies the next message into {@code dst} at its position (advancing the
     * position by the payload length), verifies the CRC-32 over the copy, and
     * releases it.
     *
     * @param dst          writable destination, direct or heap
     * @param info         receives type, flags, id and length; may be null
     * @param timeoutNanos how long to wait: 0 once, &lt; 0 without limit
     * @return as {@link #receive(byte[], int, int, MessageInfo, long)}
     * @throws ReadOnlyBufferException if {@code dst} is read-only
     */
    public int receive(ByteBuffer dst, MessageInfo info, long timeoutNanos) {
        if (dst.isReadOnly()) {
            throw new ReadOnlyBufferException();
        }
        int pos = dst.position();
        int room = dst.limit() - pos;
        int r;
        if (dst.isDirect()) {
            if (closed) {
                return Status.CLOSED;
            }
            checkEnded("receive");
            if (dst != receiveBuffer) {
                receiveAddress = Native.bufferAddress(dst);
                receiveBuffer = dst;
            }
            r = (int) Native.channelReceiveCopy(handle, receiveAddress + pos, room, copyMetaAddress, timeoutNanos);
            Reference.reachabilityFence(dst);
            ended(r, "receive");
            if (info != null && (r >= 0 || r == Status.BUFFER_TOO_SMALL)) {
                info.set(copyMeta);
            }
        } else {
            r = receive(dst.array(), dst.arrayOffset() + pos, room, info, timeoutNanos);
        }
        if (r > 0) {
            dst.position(pos + r);
        }
        return r;
    }

    // ---- messages of any size ----------------------------------------------------

    /**
     * Receives one whole message, however many fragments it has, as a new
     * array (each fragment's CRC-32 checked over the copy).
     *
     * @param info         receives type, id and length; may be null
     * @param timeoutNanos how long to wait for the first fragment (the rest is waited for while the sender
     *                     lives)
     * @return the payload, or null if no message arrived within the timeout
     * @throws HostGoneException (guest) the host died or was destroyed
     * @throws ExpelledException (guest) the host expelled this guest
     * @throws ShmxException if the channel is closed ({@link Status#CLOSED}), or the
     *                       message was dropped: longer than {@link #maxMessage()} ({@link Status#TOO_BIG}),
     *                       out of sequence ({@link Status#FRAGMENT}), or a bad frame (e.g.
     *                       {@link Status#CRC_MISMATCH})
     */
    public byte[] receiveMessage(MessageInfo info, long timeoutNanos) {
        long[] meta = new long[3];
        byte[] payload = Native.channelReceiveMessage(handle, meta, timeoutNanos);
        if (payload == null) {
            if (meta[0] == Status.EMPTY) {
                return null;
            }
            ended(meta[0], "receiveMessage");
            throw new ShmxException("receiveMessage: " + Status.toString(meta[0]), (int) meta[0], null);
        }
        if (info != null) {
            info.setMessage((int) meta[1], meta[2], payload.length);
        }
        return payload;
    }

    /**
     * Starts writing a message of any size as a stream (see {@link MessageOutputStream}).
     *
     * @param type         frame type, 0 .. 65535
     * @param timeoutNanos how long each write may wait for room before the first fragment is sent
     * @return the stream; close it to send the message
     * @throws IllegalStateException if a claim (or another output stream) is open on this channel
     */
    public MessageOutputStream openOutputStream(int type, long timeoutNanos) {
        checkSend(type, 0, 0);
        long w = Native.writerOpen(handle, type, 0L);
        if (w < 0) {
            sendFailure(w, 0);
            throw new ShmxException("openOutputStream: " + Status.toString(w), (int) w, null);
        }
        return new MessageOutputStream(w, timeoutNanos);
    }

    /**
     * Waits for a message and opens it as a stream (see {@link MessageInputStream}).
     *
     * @param timeoutNanos how long to wait for the message, and then for each of its fragments
     * @return the stream, or null if no message arrived within the timeout
     * @throws ShmxException if the channel is closed or the message's first fragment was bad
     */
    public MessageInputStream openInputStream(long timeoutNanos) {
        long r = Native.readerOpen(handle, timeoutNanos);
        if (r == Status.EMPTY) {
            return null;
        }
        if (r < 0) {
            ended(r, "openInputStream");
            throw new ShmxException("openInputStream: " + Status.toString(r), (int) r, null);
        }
        return new MessageInputStream(r, timeoutNanos);
    }

    // ---- waiting in an event loop -----------------------------------------------

    /**
     * The channel's pollable file descriptor, for event loops of your own
     * (JNI, netty's epoll transport): it becomes readable when the channel
     * may have something to receive or has changed state (closed, peer gone).
     * It is level-triggered, owned by the channel (never close it) and the
     * same for the channel's life. Sleep on it only after {@link #arm()}
     * returned false; see {@link #awaitReadable(long, TimeUnit)} for the
     * loop, and {@link ChannelPoller} to wait for many channels at once.
     *
     * @return the descriptor: an epoll set for shm, the socket for uds
     * @throws IllegalStateException if the channel is closed, or has no doorbells (a peer of a version before
     *                               them)
     */
    public int eventFd() {
        if (closed) {
            throw new IllegalStateException("the channel is closed");
        }
        int fd = Native.channelEventFd(handle);
        if (fd < 0) {
            throw eventFailure("eventFd", fd);
        }
        return fd;
    }

    /**
     * Announces that the receiving thread is about to sleep on
     * {@link #eventFd()}, then looks once more. Call it after a receive
     * returned {@link Status#EMPTY}, on the receiving thread.
     *
     * @return true if something may be received or the channel closed or its peer hung up (receive now, do not
     *         sleep); false if the caller may sleep on the descriptor: the next message, close or hang-up makes
     *         it readable
     * @throws IllegalStateException if the channel has no doorbells
     */
    public boolean arm() {
        if (closed) {
            return true;
        }
        int rc = Native.channelArm(handle);
        if (rc < 0) {
            throw eventFailure("arm", rc);
        }
        return rc > 0;
    }

    /**
     * Arms the channel and sleeps on its descriptor until it becomes readable
     * or the timeout passes. A receive loop that sleeps in the kernel only
     * when there is nothing to do:
     *
     * <pre>{@code
     * Message m = new Message();
     * for (;;) {
     *     int rc;
     *     while ((rc = ch.receive(m, 0)) == Status.OK) {
     *         handle(m);
     *         ch.release(m);
     *     }
     *     if (rc != Status.EMPTY) break;          // closed, host gone, bad frame
     *     ch.awaitReadable(1, TimeUnit.SECONDS);   // true or false: look again
     * }
     * }</pre>
     *
     * @param timeout how long to sleep; 0 only looks, negative waits without limit
     * @param unit    the timeout's unit
     * @return true if something may be received (or the channel's state changed), false on timeout
     * @throws IllegalStateException if the channel has no doorbells
     */
    public boolean awaitReadable(long timeout, TimeUnit unit) {
        if (closed) {
            return true;
        }
        int rc = Native.channelAwait(handle, timeout < 0 ? -1L : unit.toNanos(timeout));
        if (rc < 0) {
            throw eventFailure("awaitReadable", rc);
        }
        return rc > 0;
    }

    private RuntimeException eventFailure(String op, int rc) {
        if (rc == ESTATE) {
            return new IllegalStateException(op + ": this channel has no doorbells (its peer predates them, or it"
                    + " was opened without a host and guest); receive with a timeout instead");
        }
        return new ShmxException(op + ": " + Status.toString(rc), rc, null);
    }

    // ---- state -----------------------------------------------------------------

    /** @return the transport this channel runs over */
    public Transport transport() {
        return transport;
    }

    /** @return the largest payload of one frame: a claim's limit; a larger send travels as fragments */
    public int maxPayload() {
        return maxPayload;
    }

    /** @return the largest message this channel sends or accepts, all fragments together */
    public int maxMessage() {
        return maxMessage;
    }

    /**
     * @return the channel's peer id: its entry number in the segment for shm; on a host's uds channel
     *         maxChannels + k (k &lt; maxChannels), so shm and uds guests never share one; 0 on a guest's uds
     *         channel
     */
    public int index() {
        return index;
    }

    /**
     * @return the incarnation of the guest this channel serves: its entry's epoch when it was given out (a
     *         later guest on the same entry gets a larger one, as does a later uds guest on the same peer id;
     *         unsigned 32-bit; 0 on a guest's uds channel). Events of
     *         {@link Host#onPeerEvent(PeerListener)} carry it.
     */
    public long epoch() {
        return epoch;
    }

    /**
     * @return true while the other side's bootstrap socket is open; false once it hung up (closed or died), or
     *         when this channel is closed
     */
    public boolean peerAlive() {
        return !closed && Native.channelPeerAlive(handle) > 0;
    }

    /**
     * Sets how the native waits of this channel spend their time: busy polls,
     * then {@code sched_yield()} polls, then a futex sleep.
     *
     * @param spinIterations  busy polls, 0 .. 2^32-1; {@link #SPIN_FOREVER} never sleeps (busy-spin)
     * @param yieldIterations yield polls, 0 .. 2^32-1
     */
    public void setNativeIdle(long spinIterations, long yieldIterations) {
        if (spinIterations < 0 || spinIterations > 0xFFFF_FFFFL || yieldIterations < 0
                || yieldIterations > 0xFFFF_FFFFL) {
            throw new IllegalArgumentException("iterations must be in 0 .. 4294967295");
        }
        if (!closed) {
            Native.channelSetIdle(handle, (int) spinIterations, (int) yieldIterations);
        }
    }

    /** @return true once {@link #close()} ran (or its host or guest was closed) */
    public boolean isClosed() {
        return closed;
    }

    /**
     * Closes both directions without freeing anything: every waiter on either
     * side wakes, later sends return {@link Status#CLOSED}, messages already
     * published can still be received. Safe to call from any thread, also
     * while another thread waits in this channel. Idempotent.
     */
    public void shutdown() {
        synchronized (lock()) {
            if (!closed) {
                Native.channelClose(handle);
            }
        }
    }

    /**
     * Closes the channel and gives up its handle. On the host side the
     * channel entry returns to the host for another guest and the slots the
     * guest held are reclaimed; on the guest side the channel is shut down and
     * freed with its {@link Guest}. Afterwards every method returns
     * {@link Status#CLOSED}. Idempotent. It must not race with a call in
     * progress on this channel or with reads of a held view: {@link #shutdown()}
     * wakes such calls, and the caller must wait for them to return before
     * closing (see "Threads" above).
     */
    @Override
    public void close() {
        if (host != null) {
            host.checkNotServiceThread("close a host channel"); // freeing waits for that very thread
        }
        synchronized (lock()) {
            if (closed) {
                return;
            }
            closed = true;
            claim.open = false;
            if (host != null) {
                host.forget(this);
                Native.channelFree(handle);
            } else {
                Native.channelClose(handle);
            }
        }
    }

    /** Called by the owning Host or Guest, which frees the handle itself. */
    void markClosedByOwner() {
        closed = true;
        claim.open = false;
    }

    private Object lock() {
        return host != null ? host : guest;
    }

    long handle() {
        return handle;
    }

    // ---- regions ---------------------------------------------------------------

    Regions regions() {
        return regions;
    }

    /** An address fell outside the snapshot {@code seen}: list the regions again once. */
    synchronized Regions regionsMissed(Regions seen, long address, int length) {
        Regions current = regions;
        if (current != seen || unlistedMemory || closed) {
            return current;
        }
        Regions fresh = Regions.load(handle);
        if (fresh.sameAreas(current)) {
            unlistedMemory = true; // the library hands out memory it does not list: wrap per message from now on
            return current;
        }
        regions = fresh;
        return fresh;
    }

    /** Fallback for memory outside every listed region: one direct buffer per message (allocates). */
    ByteBuffer wrapUnlisted(long address, int length) {
        unlistedViews++;
        return Native.wrapAddress(address, length).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** @return how many payload views needed the allocating fallback (0 when all memory is listed) */
    public long unlistedViews() {
        return unlistedViews;
    }

    @Override
    public String toString() {
        return "Channel{" + (host != null ? "host " + host.name() : "guest " + guest.name()) + ", index=" + index
                + ", transport=" + transport + ", maxPayload=" + maxPayload + (closed ? ", closed" : "") + "}";
    }
}
