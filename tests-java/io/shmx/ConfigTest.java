package io.shmx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;

import org.junit.jupiter.api.Test;

class ConfigTest {
    @Test
    void shouldStartFromTheLibraryDefaults() {
        ShmxConfig c = ShmxConfig.defaults();
        assertEquals(32, c.maxChannels());
        assertEquals(64 * 1024, c.ringBytes());
        assertEquals(1024, c.inlineMax());
        assertEquals(1 << 20, c.maxPayload());
        assertEquals(64 << 20, c.maxMessage());
        assertEquals(4 << 20, c.windowBytes());
        assertEquals(8 << 20, c.extentBytes());
        assertEquals(256L << 20, c.poolMaxBytes());
        assertEquals(3, c.sizeClassCount());
        assertEquals(4096, c.sizeClassBytes(0));
        assertEquals(1 << 20, c.sizeClassBytes(2));
        assertEquals(SegmentMode.MEMFD, c.segmentMode());
        assertEquals(EnumSet.of(Transport.SHM, Transport.UDS), c.transports());
        assertTrue(c.sizeClassCount() >= 1);
        assertTrue(c.segmentBytes() > 0);
    }

    @Test
    void shouldRejectARingThatIsNotAPowerOfTwoNamingTheField() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> ShmxConfig.builder().ringBytes(5000).build());
        assertEquals(-4123, e.code());
        assertEquals("SHMX_ECONFIG", e.codeName());
        assertTrue(e.getMessage().contains("ring_bytes"), e.getMessage());
    }

    @Test
    void shouldRejectSizeClassesThatAreNotAscending() {
        assertThrows(ConfigurationException.class, () -> ShmxConfig.builder()
                .sizeClasses(new int[] {1 << 20, 16384}, new int[] {4, 4}).build());
    }

    @Test
    void shouldRejectZeroChannels() {
        assertThrows(ConfigurationException.class, () -> ShmxConfig.builder().maxChannels(0).build());
    }

    @Test
    void shouldKeepEveryFieldThroughTheHost() {
        ShmxConfig c = ShmxConfig.builder().maxChannels(3).ringBytes(1 << 17).inlineMax(512)
                .sizeClasses(new int[] {16384, 262144}, new int[] {8, 2}).maxPayload(262144)
                .transports(Transport.SHM).spinIterations(1000).yieldIterations(7).maxMessage(3 << 20)
                .windowBytes(1 << 20).extentBytes(1 << 20).poolMaxBytes(5_000_000_000L).build();
        try (Host host = Host.create(TestSupport.uniqueName("cfg"), c)) {
            ShmxConfig back = host.config();
            assertEquals(3, back.maxChannels());
            assertEquals(1 << 17, back.ringBytes());
            assertEquals(512, back.inlineMax());
            assertEquals(262144, back.maxPayload());
            assertEquals(2, back.sizeClassCount());
            assertEquals(262144, back.sizeClassBytes(1));
            assertEquals(2, back.sizeClassSlots(1));
            assertEquals(EnumSet.of(Transport.SHM), back.transports());
            assertEquals(3 << 20, back.maxMessage());
            assertEquals(1 << 20, back.windowBytes());
            assertEquals(1 << 20, back.extentBytes());
            assertEquals(5_000_000_000L, back.poolMaxBytes(), "a cap above 4 GiB keeps its high bits");
            assertTrue(host.mappedBytes() > 0);
        }
    }

    @Test
    void shouldRejectAWindowSmallerThanTheLargestClassNamingTheField() {
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> ShmxConfig.builder().windowBytes(4096).build());
        assertTrue(e.getMessage().contains("window_bytes"), e.getMessage());
    }

    @Test
    void shouldRejectAMalformedHostName() {
        assertThrows(IllegalArgumentException.class, () -> Host.create("no spaces allowed"));
        assertThrows(IllegalArgumentException.class, () -> Host.create(""));
    }
}
