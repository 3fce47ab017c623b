package io.shmx.internal;

import io.shmx.Shmx;

import java.nio.charset.StandardCharsets;

/** Run in a child JVM by NativeLoaderTest: loads the library the normal way and reports where from. */
public final class LoaderProbe {
    private LoaderProbe() {
    }

    public static void main(String[] args) {
        int crc = Shmx.crc32("123456789".getBytes(StandardCharsets.US_ASCII));
        System.out.println("loaded-from=" + NativeLoader.loadedFrom());
        System.out.println("crc=" + Integer.toHexString(crc));
    }
}
