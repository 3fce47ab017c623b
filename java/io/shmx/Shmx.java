package io.shmx;

import io.shmx.internal.Native;
import io.shmx.internal.NativeLoader;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * Library-wide utilities: CRC-32 through the C core's {@code shmx_crc32}
 * (the zlib polynomial, equal to {@link java.util.zip.CRC32}), version and
 * error texts.
 *
 * <pre>{@code
 * int crc = Shmx.crc32("123456789".getBytes(StandardCharsets.US_ASCII));  // 0xCBF43926
 * System.out.println("shmx " + Shmx.version() + ", crc32 " + Shmx.crc32Implementation());
 * }</pre>
 */
public final class Shmx {
    private Shmx() {
    }

    /**
     * @param data bytes
     * @return CRC-32 of all of {@code data}
     */
    public static int crc32(byte[] data) {
        return crc32(0, data, 0, data.length);
    }

    /**
     * @param crc    0 to start, or a previous result to continue
     * @param data   bytes
     * @param offset first byte
     * @param length number of bytes
     * @return the updated CRC-32
     */
    public static int crc32(int crc, byte[] data, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.length);
        NativeLoader.ensureLoaded();
        return Native.crc32Array(crc, data, offset, length);
    }

    /**
     * CRC-32 of the bytes between {@code data}'s position and limit; the position does not change.
     *
     * @param data direct or heap buffer
     * @return the CRC-32
     */
    public static int crc32(ByteBuffer data) {
        return crc32(0, data);
    }

    /**
     * Continues a CRC-32 over the bytes between {@code data}'s position and limit;
     * the position does not change.
     *
     * @param crc  0 to start, or a previous result
     * @param data direct or heap buffer
     * @return the updated CRC-32
     */
    public static int crc32(int crc, ByteBuffer data) {
        NativeLoader.ensureLoaded();
        int pos = data.position();
        int len = data.limit() - pos;
        if (data.isDirect()) {
            int r = Native.crc32Address(crc, Native.bufferAddress(data) + pos, len);
            Reference.reachabilityFence(data);
            return r;
        }
        if (data.hasArray()) {
            return Native.crc32Array(crc, data.array(), data.arrayOffset() + pos, len);
        }
        byte[] copy = new byte[len];
        data.get(pos, copy);
        return Native.crc32Array(crc, copy, 0, len);
    }

    /** @return "pclmul" or "table": the CRC-32 implementation the C core chose at run time */
    public static String crc32Implementation() {
        NativeLoader.ensureLoaded();
        return Native.crc32Implementation();
    }

    /** @return the native library's version, e.g. "0.1.0" */
    public static String version() {
        NativeLoader.ensureLoaded();
        int v = Native.nativeVersion();
        return (v >>> 16) + "." + ((v >>> 8) & 0xFF) + "." + (v & 0xFF);
    }

    /**
     * @param code a code returned by any shmx function (sign ignored)
     * @return shmx_strerror's explanation, never empty
     */
    public static String strerror(int code) {
        NativeLoader.ensureLoaded();
        return Native.strerror(code > 0 ? -code : code);
    }

    /** @return where the native library was loaded from (loading it if needed) */
    public static String nativeLibrary() {
        NativeLoader.ensureLoaded();
        return NativeLoader.loadedFrom();
    }
}
