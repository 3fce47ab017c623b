package io.shmx;

import io.shmx.internal.MessageLayout;
import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A received message, zero-copy: a reusable flyweight that
 * {@link Channel#receive(Message, long)} points at the payload in shared
 * memory (or in the channel's receive buffer for the uds transport). Valid
 * until {@link Channel#release(Message)}; then reuse it for the next receive.
 *
 * <p>{@link #buffer()} is a direct ByteBuffer over the channel's memory region
 * with position = the payload's first byte and limit = one past its last; its
 * absolute indexes count from the region start ({@link #offset()} is where
 * the payload begins). The {@code getXxx(index)} helpers take indexes relative
 * to the payload start. Multi-byte helpers are little-endian.
 *
 * <p>The payload's CRC-32 was checked when the message was received; the
 * bytes of the view are only as stable as the sending peer is honest. Use
 * {@link #copyTo(byte[], int)} once and work on the copy, or the copying
 * {@link Channel#receive(byte[], int, int, MessageInfo, long)} (which checks
 * the CRC over the copy), when that matters.
 *
 * <pre>{@code
 * Message m = new Message();               // once
 * while (ch.receive(m, -1) == Status.OK) {  // per message: no allocation
 *     try {
 *         process(m.type(), m.id(), m.buffer());
 *     } finally {
 *         ch.release(m);
 *     }
 * }
 * }</pre>
 */
public final class Message {
    final ByteBuffer meta;
    final int metaOffset;
    final long metaAddress;
    final PayloadWindow window = new PayloadWindow();
    Channel channel;
    boolean held;
    int type;
    int flags;
    long id;

    /**
     * Creates a standalone flyweight with its own native {@code shmx_message_t}.
     *
     * @throws NativeLibraryException if libshmx cannot be loaded
     */
    public Message() {
        NativeLoader.ensureLoaded();
        this.meta = allocateStructs(1);
        this.metaOffset = 0;
        this.metaAddress = Native.bufferAddress(meta);
    }

    /** Element {@code i} of a batch: its struct lives inside the batch's buffer. */
    Message(ByteBuffer structs, int index, long structsAddress) {
        this.meta = structs;
        this.metaOffset = index * MessageLayout.SIZE;
        this.metaAddress = structsAddress + metaOffset;
    }

    /** Direct, native-order, 8-byte aligned room for {@code n} shmx_message_t structs. */
    static ByteBuffer allocateStructs(int n) {
        ByteBuffer raw = ByteBuffer.allocateDirect(n * MessageLayout.SIZE + MessageLayout.ALIGNMENT);
        ByteBuffer aligned = raw.alignedSlice(MessageLayout.ALIGNMENT);
        aligned.limit(n * MessageLayout.SIZE);
        return aligned.slice().order(ByteOrder.nativeOrder());
    }

    /** Reads the struct the native receive filled and points the view at the payload. */
    void decode(Channel ch) {
        int o = metaOffset;
        long data = MessageLayout.data(meta, o);
        int length = MessageLayout.length(meta, o);
        type = MessageLayout.type(meta, o);
        flags = MessageLayout.flags(meta, o);
        id = MessageLayout.id(meta, o);
        channel = ch;
        held = true;
        window.point(ch, data, length);
    }

    void released() {
        held = false;
        window.clear();
    }

    /** @return true between a successful receive and the release */
    public boolean isHeld() {
        return held;
    }

    /** @return the frame type (0 .. 65535) */
    public int type() {
        return type;
    }

    /** @return the frame flags (bit 0: {@link Channel#FLAG_MORE}) */
    public int flags() {
        return flags;
    }

    /** @return the message id: the sender's sequence number, or the request's id in a response */
    public long id() {
        return id;
    }

    /** @return the payload length in bytes */
    public int length() {
        return window.length;
    }

    /** @return the payload's first byte as an absolute index into {@link #buffer()} */
    public int offset() {
        return window.offset;
    }

    /**
     * The payload, zero-copy: a reused direct view positioned over it
     * (position = {@link #offset()}, limit = offset + length), valid until
     * release. Do not keep it past the release.
     *
     * @return the view
     */
    public ByteBuffer buffer() {
        checkHeld();
        return window.view;
    }

    /**
     * @param index byte index relative to the payload start
     * @return the byte
     */
    public byte getByte(int index) {
        checkHeld();
        window.checkIndex(index, 1);
        return window.view.get(window.offset + index);
    }

    /**
     * @param index byte index relative to the payload start
     * @return the little-endian short there
     */
    public short getShort(int index) {
        checkHeld();
        window.checkIndex(index, 2);
        return window.view.getShort(window.offset + index);
    }

    /**
     * @param index byte index relative to the payload start
     * @return the little-endian int there
     */
    public int getInt(int index) {
        checkHeld();
        window.checkIndex(index, 4);
        return window.view.getInt(window.offset + index);
    }

    /**
     * @param index byte index relative to the payload start
     * @return the little-endian long there
     */
    public long getLong(int index) {
        checkHeld();
        window.checkIndex(index, 8);
        return window.view.getLong(window.offset + index);
    }

    /**
     * Copies the whole payload into {@code dst} at {@code dstOffset}.
     *
     * @param dst       destination with at least {@link #length()} bytes from dstOffset
     * @param dstOffset where to write
     * @return the number of bytes copied
     */
    public int copyTo(byte[] dst, int dstOffset) {
        checkHeld();
        int n = window.length;
        window.view.get(window.offset, dst, dstOffset, n);
        return n;
    }

    /**
     * Copies the whole payload into {@code dst} at its position and advances the position.
     *
     * @param dst destination with at least {@link #length()} bytes remaining
     * @return the number of bytes copied
     */
    public int copyTo(ByteBuffer dst) {
        checkHeld();
        int n = window.length;
        int pos = dst.position();
        dst.put(pos, window.view, window.offset, n);
        dst.position(pos + n);
        return n;
    }

    /** @return a new array holding a copy of the payload (allocates; not for the hot path) */
    public byte[] toByteArray() {
        byte[] b = new byte[length()];
        copyTo(b, 0);
        return b;
    }

    private void checkHeld() {
        if (!held) {
            throw new IllegalStateException("the message is not held (not received, or already released)");
        }
    }

    @Override
    public String toString() {
        return held ? "Message{type=" + type + ", flags=" + flags + ", id=" + id + ", length=" + window.length + "}"
                : "Message{not held}";
    }
}
