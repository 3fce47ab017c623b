package io.shmx;

import java.nio.ByteBuffer;

/**
 * A payload area lent by {@link Channel#claim(int, long)}: write the payload,
 * then {@link #commit(int)} to publish it or {@link #abort()} to drop it. One
 * reusable instance per channel; it is open between a successful claim and
 * the commit or abort.
 *
 * <p>{@link #buffer()} is a direct ByteBuffer over the channel's memory region
 * whose position is the payload's first byte and whose limit is one past its
 * last; its absolute indexes count from the region start ({@link #offset()} is
 * where the payload begins). The {@code putXxx(index, ...)} helpers take
 * indexes relative to the payload start and check them. Multi-byte helpers are
 * little-endian.
 *
 * <pre>{@code
 * Claim c = ch.claim(payload.length, -1);
 * if (c != null) {
 *     c.putBytes(0, payload, 0, payload.length);
 *     long id = c.commit(Channel.TYPE_DATA);
 * }
 * }</pre>
 */
public final class Claim {
    private final Channel channel;
    final PayloadWindow window = new PayloadWindow();
    boolean open;

    Claim(Channel channel) {
        this.channel = channel;
    }

    void open(long address, int length) {
        window.point(channel, address, length);
        open = true;
    }

    /** @return true between a successful claim and its commit or abort */
    public boolean isOpen() {
        return open;
    }

    /** @return the payload length that was claimed */
    public int length() {
        return window.length;
    }

    /** @return the payload's first byte as an absolute index into {@link #buffer()} */
    public int offset() {
        return window.offset;
    }

    /**
     * The payload area, writable, zero-copy: position = {@link #offset()},
     * limit = offset + length. Valid only until commit or abort. Reused: do
     * not keep it.
     *
     * @return the reused view
     */
    public ByteBuffer buffer() {
        checkOpen();
        return window.view;
    }

    /**
     * @param index byte index relative to the payload start
     * @param value the byte
     * @return this
     */
    public Claim putByte(int index, byte value) {
        checkOpen();
        window.checkIndex(index, 1);
        window.view.put(window.offset + index, value);
        return this;
    }

    /**
     * @param index byte index relative to the payload start
     * @param value little-endian short
     * @return this
     */
    public Claim putShort(int index, short value) {
        checkOpen();
        window.checkIndex(index, 2);
        window.view.putShort(window.offset + index, value);
        return this;
    }

    /**
     * @param index byte index relative to the payload start
     * @param value little-endian int
     * @return this
     */
    public Claim putInt(int index, int value) {
        checkOpen();
        window.checkIndex(index, 4);
        window.view.putInt(window.offset + index, value);
        return this;
    }

    /**
     * @param index byte index relative to the payload start
     * @param value little-endian long
     * @return this
     */
    public Claim putLong(int index, long value) {
        checkOpen();
        window.checkIndex(index, 8);
        window.view.putLong(window.offset + index, value);
        return this;
    }

    /**
     * Copies {@code src[srcOffset, srcOffset + length)} into the payload at {@code index}.
     *
     * @param index     byte index relative to the payload start
     * @param src       source bytes
     * @param srcOffset first source byte
     * @param length    number of bytes
     * @return this
     */
    public Claim putBytes(int index, byte[] src, int srcOffset, int length) {
        checkOpen();
        window.checkIndex(index, length);
        window.view.put(window.offset + index, src, srcOffset, length);
        return this;
    }

    /**
     * Copies {@code src}'s bytes from {@code srcIndex} (absolute) into the payload at {@code index}.
     *
     * @param index    byte index relative to the payload start
     * @param src      source buffer (its position is not changed)
     * @param srcIndex absolute index of the first source byte
     * @param length   number of bytes
     * @return this
     */
    public Claim putBytes(int index, ByteBuffer src, int srcIndex, int length) {
        checkOpen();
        window.checkIndex(index, length);
        window.view.put(window.offset + index, src, srcIndex, length);
        return this;
    }

    /**
     * Publishes the payload with type {@code type} and the channel's next sequence number.
     *
     * @param type frame type, 0 .. 65535
     * @return the message id (&gt; 0) or {@link Status#CLOSED} (the claim is dropped)
     * @throws IllegalStateException if no claim is open
     */
    public long commit(int type) {
        return commit(type, 0, 0L);
    }

    /**
     * Publishes the payload: writes the frame header with its CRC over the
     * payload now in place.
     *
     * @param type  frame type, 0 .. 65535
     * @param flags 0 or {@link Channel#FLAG_MORE}
     * @param id    0 for the channel's next sequence number, or an explicit id (a response carries its
     *              request's id)
     * @return the message id (&gt; 0) or {@link Status#CLOSED} (the claim is dropped and its slot freed)
     * @throws IllegalStateException if no claim is open
     */
    public long commit(int type, int flags, long id) {
        checkOpen();
        long r = channel.commitClaim(type, flags, id, -1);
        open = false;
        return r;
    }

    /**
     * Publishes only the first {@code length} bytes of the claimed area: claim
     * the most a message may hold, fill what arrives, send that.
     *
     * @param type   frame type, 0 .. 65535
     * @param flags  0 or {@link Channel#FLAG_MORE}
     * @param id     0 for the channel's next sequence number, or an explicit id
     * @param length bytes to send, 0 .. {@link #length()}
     * @return the message id (&gt; 0) or {@link Status#CLOSED} (the claim is dropped and its slot freed)
     * @throws IllegalStateException    if no claim is open
     * @throws IllegalArgumentException if length is negative or above the claimed length (the claim stays open)
     */
    public long commit(int type, int flags, long id, int length) {
        checkOpen();
        if (length < 0 || length > window.length) {
            throw new IllegalArgumentException("commit of " + length + " bytes from a claim of " + window.length);
        }
        long r = channel.commitClaim(type, flags, id, length);
        open = false;
        return r;
    }

    /**
     * Drops the claim: nothing is sent and its slot is freed.
     *
     * @throws IllegalStateException if no claim is open
     */
    public void abort() {
        checkOpen();
        open = false;
        channel.abortClaim();
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("no open claim: claim() first (a claim ends with commit or abort)");
        }
    }

    @Override
    public String toString() {
        return "Claim{" + (open ? "open, length=" + window.length : "closed") + "}";
    }
}
