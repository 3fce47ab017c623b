package io.shmx.internal;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The memory areas of one channel that received views and claims point into
 * ({@code shmx_channel_region}), each wrapped once as a direct ByteBuffer. An
 * immutable snapshot: a channel replaces it as a whole when the C side
 * reports an address outside every area.
 */
public final class Regions {
    private final long[] base;
    private final long[] end;
    private final ByteBuffer[] buffers;

    private Regions(long[] base, long[] end, ByteBuffer[] buffers) {
        this.base = base;
        this.end = end;
        this.buffers = buffers;
    }

    /**
     * Lists and wraps the regions of a channel (cold path: JNI calls and allocation).
     *
     * @param channel a channel handle
     * @return the snapshot
     */
    public static Regions load(long channel) {
        int n = 0;
        ByteBuffer[] found = new ByteBuffer[4];
        for (int i = 0; ; i++) {
            ByteBuffer b = Native.channelRegion(channel, i);
            if (b == null) {
                break;
            }
            if (n == found.length) {
                found = java.util.Arrays.copyOf(found, n * 2);
            }
            found[n++] = b;
        }
        long[] base = new long[n];
        long[] end = new long[n];
        ByteBuffer[] buffers = new ByteBuffer[n];
        for (int i = 0; i < n; i++) {
            buffers[i] = found[i];
            base[i] = found[i].capacity() > 0 ? Native.bufferAddress(found[i]) : 0;
            end[i] = base[i] + found[i].capacity();
        }
        return new Regions(base, end, buffers);
    }

    /** @return the number of regions */
    public int count() {
        return base.length;
    }

    /**
     * @param address start of a payload
     * @param length  its length
     * @return the region holding all of it, or -1
     */
    public int find(long address, int length) {
        long last = address + length;
        for (int i = 0; i < base.length; i++) {
            if (address >= base[i] && last <= end[i] && base[i] != 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * @param region a region number
     * @return its base address
     */
    public long base(int region) {
        return base[region];
    }

    /**
     * @param other another snapshot
     * @return true when both list the same areas
     */
    public boolean sameAreas(Regions other) {
        return java.util.Arrays.equals(base, other.base) && java.util.Arrays.equals(end, other.end);
    }

    /**
     * @return one fresh view per region (duplicates, little-endian), for a flyweight to reuse
     */
    public ByteBuffer[] newViews() {
        ByteBuffer[] views = new ByteBuffer[buffers.length];
        for (int i = 0; i < views.length; i++) {
            views[i] = buffers[i].duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
        return views;
    }
}
