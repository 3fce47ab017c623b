package io.shmx.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.shmx.Host;
import io.shmx.ShmxException;
import io.shmx.TestSupport;

import java.nio.ByteBuffer;

import org.junit.jupiter.api.Test;

/** The natives the public API reaches only on rare paths. */
class NativeTest {
    @Test
    void shouldWrapNativeMemoryAsADirectBuffer() {
        NativeLoader.ensureLoaded();
        ByteBuffer b = ByteBuffer.allocateDirect(16);
        b.put(3, (byte) 42);
        long address = Native.bufferAddress(b);
        assertTrue(address > 0);
        ByteBuffer w = Native.wrapAddress(address, 16);
        assertEquals(16, w.capacity());
        assertEquals(42, w.get(3));
        assertEquals(0L, Native.bufferAddress(ByteBuffer.allocate(4)), "a heap buffer has no address");
    }

    @Test
    void shouldThrowTheTypedExceptionFromCOnAColdPath() {
        NativeLoader.ensureLoaded();
        ShmxException e = assertThrows(ShmxException.class, () -> Native.socketPath("bad name/with slash"));
        assertTrue(e.getMessage().startsWith("shmx_socket_path(\"bad name/with slash\") failed"), e.getMessage());
        assertEquals("SHMX_EINVAL", e.codeName());
    }

    @Test
    void shouldNameTheSocketOfAHost() {
        String name = TestSupport.uniqueName("path");
        String path = Host.socketPath(name);
        assertTrue(path.endsWith("/" + name + ".sock"), path);
        try (Host host = Host.create(name)) {
            assertEquals(path, host.socketPath());
        }
    }
}
