package io.shmx;

import io.shmx.internal.MessageLayout;

import java.nio.ByteBuffer;

/**
 * Header fields of a message received by copy
 * ({@link Channel#receive(byte[], int, int, MessageInfo, long)}). Reusable;
 * filled in place, no allocation.
 */
public final class MessageInfo {
    private int type;
    private int flags;
    private long id;
    private int length;

    /** Creates an empty holder. */
    public MessageInfo() {
    }

    void set(ByteBuffer meta) {
        length = MessageLayout.length(meta, 0);
        type = MessageLayout.type(meta, 0);
        flags = MessageLayout.flags(meta, 0);
        id = MessageLayout.id(meta, 0);
    }

    void setMessage(int type, long id, int length) {
        this.type = type;
        this.flags = 0;
        this.id = id;
        this.length = length;
    }

    /** @return the frame type */
    public int type() {
        return type;
    }

    /** @return the frame flags */
    public int flags() {
        return flags;
    }

    /** @return the message id */
    public long id() {
        return id;
    }

    /** @return the payload length (after {@link Status#BUFFER_TOO_SMALL}: the room needed) */
    public int length() {
        return length;
    }

    @Override
    public String toString() {
        return "MessageInfo{type=" + type + ", flags=" + flags + ", id=" + id + ", length=" + length + "}";
    }
}
