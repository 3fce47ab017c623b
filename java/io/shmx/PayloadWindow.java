package io.shmx;

import io.shmx.internal.Regions;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Points a reusable direct ByteBuffer at a payload inside a channel's memory
 * regions without allocating: each flyweight keeps one view per region
 * (created when it first meets the channel's region snapshot) and moves
 * position and limit. Used by {@link Message} and {@link Claim}.
 */
final class PayloadWindow {
    private final ByteBuffer empty = ByteBuffer.allocateDirect(0).order(ByteOrder.LITTLE_ENDIAN);
    private Regions regions;
    private ByteBuffer[] views;
    ByteBuffer view = empty;
    int offset;
    int length;
    long address;

    /**
     * Points the view at {@code length} bytes at {@code address}.
     *
     * @param ch      the channel the memory belongs to
     * @param address payload address from the C library
     * @param length  payload length
     */
    void point(Channel ch, long address, int length) {
        this.address = address;
        this.length = length;
        if (length == 0) {
            view = empty;
            offset = 0;
            return;
        }
        Regions r = ch.regions();
        int i = r.find(address, length);
        if (i < 0) {
            r = ch.regionsMissed(r, address, length);
            i = r.find(address, length);
            if (i < 0) {
                view = ch.wrapUnlisted(address, length);
                offset = 0;
                return;
            }
        }
        if (r != regions) {
            regions = r;
            views = r.newViews();
        }
        ByteBuffer v = views[i];
        int off = (int) (address - r.base(i));
        v.limit(off + length);
        v.position(off);
        view = v;
        offset = off;
    }

    void clear() {
        view = empty;
        offset = 0;
        length = 0;
        address = 0;
    }

    void checkIndex(int index, int size) {
        if (index < 0 || size > length - index) {
            throw new IndexOutOfBoundsException("index " + index + " size " + size + " outside payload of " + length
                    + " bytes");
        }
    }
}
