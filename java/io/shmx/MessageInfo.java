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
        length = meta.getInt(MessageLayout.LENGTH);
        type = meta.getShort(MessageLayout.TYPE) & 0xFFFF;
        flags = meta.get(MessageLayout.FLAGS) & 0xFF;
        id = meta.getLong(MessageLayout.ID);
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
