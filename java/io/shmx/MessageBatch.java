package io.shmx;

import io.shmx.internal.MessageLayout;
import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.nio.ByteBuffer;

/**
 * A reusable batch for {@link Channel#receiveBatch(MessageBatch, long)}: one
 * native call fills up to {@link #capacity()} C {@code shmx_message_t}
 * structs inside this batch's direct buffer, and {@link #get(int)} exposes
 * each as a pre-allocated {@link Message} flyweight. Release them in order
 * with {@link Channel#releaseAll(MessageBatch)} (or one by one with
 * {@link Channel#release(Message)}) before the next batch receive.
 *
 * <pre>{@code
 * MessageBatch batch = new MessageBatch(32);
 * int n = ch.receiveBatch(batch, -1);
 * for (int i = 0; i < n; i++) {
 *     total += batch.get(i).length();
 * }
 * ch.releaseAll(batch);
 * }</pre>
 */
public final class MessageBatch {
    final ByteBuffer structs;
    final long address;
    final Message[] messages;
    int count;

    /**
     * @param capacity the most messages one batch receive takes, at least 1
     * @throws NativeLibraryException if libshmx cannot be loaded
     */
    public MessageBatch(int capacity) {
        if (capacity < 1 || capacity > (Integer.MAX_VALUE - 64) / MessageLayout.SIZE) {
            throw new IllegalArgumentException("batch capacity must be at least 1: " + capacity);
        }
        NativeLoader.ensureLoaded();
        structs = Message.allocateStructs(capacity);
        address = Native.bufferAddress(structs);
        messages = new Message[capacity];
        for (int i = 0; i < capacity; i++) {
            messages[i] = new Message(structs, i, address);
        }
    }

    /** @return the most messages one batch receive takes */
    public int capacity() {
        return messages.length;
    }

    /** @return the number of messages the last batch receive took (0 after a failed one) */
    public int size() {
        return count;
    }

    /**
     * @param i 0 .. size() - 1
     * @return message {@code i} of the last batch receive
     */
    public Message get(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("message " + i + " of a batch of " + count);
        }
        return messages[i];
    }

    /** @return true while some message of the last batch is not released */
    public boolean holdsAny() {
        for (int i = 0; i < count; i++) {
            if (messages[i].held) {
                return true;
            }
        }
        return false;
    }
}
