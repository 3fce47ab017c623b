package io.shmx;

import io.shmx.internal.Native;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.WritableByteChannel;

/**
 * Writes one message of any size (up to the channel's
 * {@link Channel#maxMessage()}) as a stream: the bytes go straight into
 * shared memory, one fragment (at most {@link Channel#maxPayload()} bytes) at
 * a time, and {@link #close()} sends the last fragment. Get one from
 * {@link Channel#openOutputStream(int, long)}.
 *
 * <p>Flow control is real: when the receiver has not released enough of what
 * was sent, a write waits. Before the first fragment is sent a write waits at
 * most the stream's timeout ({@link InterruptedIOException}, nothing sent);
 * after that it waits as long as the channel is open and the peer alive,
 * because a started message must be finished. {@link #abort()} withdraws the
 * message: nothing is sent if nothing was sent yet, otherwise the channel is
 * closed so that the receiver never mistakes a part for the whole.
 *
 * <p>One thread at a time; close the stream before the channel. Each write
 * is one native call, so wrap it in a {@link java.io.BufferedOutputStream} for
 * many tiny writes.
 *
 * <pre>{@code
 * try (MessageOutputStream out = channel.openOutputStream(Channel.TYPE_APPLICATION, 1_000_000_000L)) {
 *     Files.copy(path, out);
 * }
 * }</pre>
 */
public final class MessageOutputStream extends OutputStream implements WritableByteChannel {
    private final long timeoutNanos;
    private long writer;
    private long messageId;
    private final byte[] one = new byte[1];

    MessageOutputStream(long writer, long timeoutNanos) {
        this.writer = writer;
        this.timeoutNanos = timeoutNanos;
    }

    @Override
    public void write(int b) throws IOException {
        one[0] = (byte) b;
        write(one, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        java.util.Objects.checkFromIndexSize(off, len, b.length);
        long r = Native.writerWriteArray(open(), b, off, len, timeoutNanos);
        if (r < 0) {
            throw failure("write", r);
        }
    }

    /**
     * Writes the bytes between the buffer's position and limit and advances its position.
     *
     * @param src the bytes: direct or heap
     * @return the number of bytes written (all of them)
     * @throws IOException as {@link #write(byte[], int, int)}
     */
    @Override
    public int write(ByteBuffer src) throws IOException {
        int pos = src.position();
        int len = src.remaining();
        if (src.isDirect()) {
            long r = Native.writerWrite(open(), Native.bufferAddress(src) + pos, len, timeoutNanos);
            Reference.reachabilityFence(src);
            if (r < 0) {
                throw failure("write", r);
            }
        } else if (src.hasArray()) {
            write(src.array(), src.arrayOffset() + pos, len);
        } else {
            byte[] copy = new byte[len];
            src.duplicate().get(copy);
            write(copy, 0, len);
        }
        src.position(pos + len);
        return len;
    }

    /** Nothing to flush: a fragment goes out when it is full or when the stream closes. */
    @Override
    public void flush() {
    }

    /**
     * Sends the last fragment and ends the message. Idempotent.
     *
     * @throws IOException if the channel closed or the last fragment could not be sent
     */
    @Override
    public void close() throws IOException {
        if (writer == 0) {
            return;
        }
        long w = writer;
        writer = 0;
        long r = Native.writerFinish(w, timeoutNanos);
        Native.streamFree(w);
        if (r < 0) {
            throw failure("close", r);
        }
        messageId = r;
    }

    /**
     * Withdraws the message (see the class comment). Does nothing once closed.
     */
    public void abort() {
        if (writer == 0) {
            return;
        }
        long w = writer;
        writer = 0;
        Native.writerAbort(w);
        Native.streamFree(w);
    }

    @Override
    public boolean isOpen() {
        return writer != 0;
    }

    /** @return the id of the message once {@link #close()} sent it, else 0 */
    public long messageId() {
        return messageId;
    }

    private long open() throws ClosedChannelException {
        if (writer == 0) {
            throw new ClosedChannelException();
        }
        return writer;
    }

    private IOException failure(String op, long code) {
        String what = "shmx message stream " + op + ": " + Status.toString(code);
        if (code == Status.WOULD_BLOCK) {
            return new InterruptedIOException(what + " (no room within the timeout; nothing was sent)");
        }
        if (writer != 0 && code != Status.TOO_BIG) {
            abort();
        }
        return new IOException(what);
    }
}
