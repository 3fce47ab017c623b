package io.shmx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.zip.CRC32;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ShmxTest {
    private static int jdkCrc(byte[] b, int off, int len) {
        CRC32 c = new CRC32();
        c.update(b, off, len);
        return (int) c.getValue();
    }

    @Test
    void shouldGiveTheCheckValueForTheStandardInput() {
        assertEquals(0xCBF43926, Shmx.crc32("123456789".getBytes(StandardCharsets.US_ASCII)));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7, 15, 16, 63, 64, 65, 255, 1000, 4096, 65536, 65536 + 13, 1 << 20})
    void shouldMatchJavaUtilZipCrc32ForRandomData(int size) {
        Random rnd = new Random(size * 31L + 7);
        byte[] data = new byte[size + 5];
        rnd.nextBytes(data);
        int expected = jdkCrc(data, 3, size);

        assertEquals(expected, Shmx.crc32(0, data, 3, size), "byte[] with offset");
        ByteBuffer direct = ByteBuffer.allocateDirect(size + 5);
        direct.put(data).position(3).limit(3 + size);
        assertEquals(expected, Shmx.crc32(direct), "direct buffer");
        assertEquals(3, direct.position(), "position unchanged");
        ByteBuffer heap = ByteBuffer.wrap(data, 3, size);
        assertEquals(expected, Shmx.crc32(heap), "heap buffer");
        assertEquals(expected, Shmx.crc32(heap.asReadOnlyBuffer()), "read-only buffer");
    }

    @Test
    void shouldContinueACrcAcrossCalls() {
        byte[] data = new byte[10_000];
        new Random(1).nextBytes(data);
        int first = Shmx.crc32(0, data, 0, 4000);
        assertEquals(jdkCrc(data, 0, data.length), Shmx.crc32(first, data, 4000, 6000));
    }

    @Test
    void shouldReportVersionAndImplementation() {
        assertEquals("0.1.0", Shmx.version());
        String impl = Shmx.crc32Implementation();
        assertTrue(impl.equals("pclmul") || impl.equals("table"), impl);
        assertFalse(Shmx.nativeLibrary().isEmpty());
    }

    @Test
    void shouldExplainEveryCode() {
        for (int code = 4096; code < 4148; code++) {
            assertFalse(Shmx.strerror(-code).isEmpty(), "code " + code);
        }
        assertEquals("SHMX_EBACKOFF", Status.name(-4147));
        assertFalse(Shmx.strerror(0).isEmpty());
        assertTrue(Status.toString(Status.EMPTY).startsWith("SHMX_EEMPTY (-4111)"), Status.toString(Status.EMPTY));
        assertEquals("ETIMEDOUT", Status.name(-110));
        assertEquals("OK", Status.name(0));
    }
}
