package io.shmx;

import io.shmx.internal.Native;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads one received message of any size as a stream, fragment by fragment,
 * copying straight from shared memory; the end of the message is the end of
 * the stream. Each fragment's slot goes back to the pool as soon as it has
 * been read. Get one from {@link Channel#openInputStream(long)}.
 *
 * <p>Each read waits at most the stream's timeout for the next fragment
 * ({@link InterruptedIOException}; the stream stays usable). A fragment of
 * another message arriving before the last one, or a message longer than
 * {@link Channel#maxMessage()}, fails the read with an {@link IOException}.
 * {@link #close()} drops whatever of the message was not read, so the next
 * receive starts at a message boundary.
 *
 * <p>One thread at a time; the stream occupies the channel's receiving side
 * until closed. Close it before the channel.
 */
public final class MessageInputStream extends InputStream implements ReadableByteChannel {
    private final long timeoutNanos;
    private final int type;
    private final long id;
    private long reader;
    private boolean ended;
    private final byte[] one = new byte[1];

    MessageInputStream(long reader, long timeoutNanos) {
        this.reader = reader;
        this.timeoutNanos = timeoutNanos;
        this.type = Native.readerType(reader);
        this.id = Native.readerId(reader);
    }

    /** @return the message's frame type */
    public int type() {
        return type;
    }

    /** @return the message id */
    public long id() {
        return id;
    }

    @Override
    public int read() throws IOException {
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xFF;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        java.util.Objects.checkFromIndexSize(off, len, b.length);
        if (len == 0) {
            return 0;
        }
        if (ended) {
            return -1;
        }
        return count(Native.readerReadArray(open(), b, off, len, timeoutNanos));
    }

    /**
     * Reads into the space between the buffer's position and limit and advances its position.
     *
     * @param dst direct or heap buffer
     * @return bytes read, or -1 at the end of the message
     * @throws IOException as {@link #read(byte[], int, int)}
     */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        int pos = dst.position();
        int room = dst.remaining();
        if (room == 0) {
            return 0;
        }
        if (ended) {
            return -1;
        }
        int n;
        if (dst.isDirect()) {
            n = count(Native.readerRead(open(), Native.bufferAddress(dst) + pos, room, timeoutNanos));
            Reference.reachabilityFence(dst);
        } else if (dst.hasArray()) {
            n = read(dst.array(), dst.arrayOffset() + pos, room);
        } else {
            throw new IllegalArgumentException("read-only buffer");
        }
        if (n > 0) {
            dst.position(pos + n);
        }
        return n;
    }

    private int count(long r) throws IOException {
        if (r > 0) {
            return (int) r;
        }
        if (r == 0) {
            ended = true;
            return -1;
        }
        String what = "shmx message stream read: " + Status.toString(r);
        if (r == Status.EMPTY) {
            throw new InterruptedIOException(what + " (no fragment within the timeout)");
        }
        throw new IOException(what);
    }

    /**
     * Releases the fragment held and drops the unread rest of the message. Idempotent.
     *
     * @throws IOException if the rest could not be skipped (the channel closed, or the sender stalled)
     */
    @Override
    public void close() throws IOException {
        if (reader == 0) {
            return;
        }
        long r = reader;
        reader = 0;
        int rc = Native.readerEnd(r, timeoutNanos);
        Native.streamFree(r);
        if (rc < 0 && rc != Status.CLOSED && rc != Status.HOST_GONE) {
            throw new IOException("shmx message stream close: " + Status.toString(rc));
        }
    }

    @Override
    public boolean isOpen() {
        return reader != 0;
    }

    private long open() throws ClosedChannelException {
        if (reader == 0) {
            throw new ClosedChannelException();
        }
        return reader;
    }
}
