package io.shmx;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;

/** HostNames over JNI: list and clean in private directories (NamesFixture), and a real host in the default one. */
class HostNamesTest {
    private static Map<String, HostEntry> byName(List<HostEntry> entries) {
        return entries.stream().collect(Collectors.toMap(HostEntry::name, Function.identity()));
    }

    @Test
    void shouldListLiveAndStaleHosts() throws Exception {
        try (NamesFixture f = new NamesFixture()) {
            Map<String, HostEntry> seen = byName(HostNames.list(f.socketDir, f.shmDir));
            assertEquals(Set.of("live", "dead", "orphan", "old"), seen.keySet());

            HostEntry live = seen.get("live");
            assertTrue(live.live());
            assertEquals(f.holderPid(), live.pid());
            assertEquals(f.socketDir.resolve("live.sock").toString(), live.socketPath());
            assertEquals(f.socketDir.resolve("live.lock").toString(), live.lockPath());
            assertEquals(Instant.ofEpochSecond(1_700_000_000L), live.startTime().orElseThrow());
            assertTrue(live.segmentPath().endsWith("-live"), live.segmentPath());
            assertFalse(live.otherBoot());

            HostEntry dead = seen.get("dead");
            assertFalse(dead.live());
            assertEquals(1, dead.pid());
            assertEquals(f.socketDir.resolve("dead.sock").toString(), dead.socketPath());

            assertFalse(seen.get("orphan").live());
            assertEquals("", seen.get("orphan").lockPath());
            HostEntry old = seen.get("old");
            assertFalse(old.live());
            assertTrue(old.otherBoot());
            assertEquals(SegmentMode.NAMED, old.segmentMode());
            assertEquals(f.segment("old", "0badb007").toString(), old.segmentPath());
        }
    }

    @Test
    void shouldCleanStaleHostsOnlyAndLeaveTheLiveOne() throws Exception {
        try (NamesFixture f = new NamesFixture()) {
            Map<String, HostEntry> removed = byName(HostNames.clean(f.socketDir, f.shmDir));
            assertEquals(Set.of("dead", "orphan", "old"), removed.keySet());
            assertEquals(f.socketDir.resolve("dead.lock").toString(), removed.get("dead").lockPath());
            assertFalse(Files.exists(f.socketDir.resolve("dead.lock")));
            assertFalse(Files.exists(f.socketDir.resolve("dead.sock")));
            assertFalse(Files.exists(f.socketDir.resolve("orphan.sock")));
            assertFalse(Files.exists(f.segment("old", "0badb007")));
            assertTrue(Files.exists(f.socketDir.resolve("live.lock")));
            assertTrue(Files.exists(f.socketDir.resolve("live.sock")));

            List<HostEntry> after = HostNames.list(f.socketDir, f.shmDir);
            assertEquals(1, after.size(), after.toString());
            assertTrue(after.get(0).live());
            assertTrue(HostNames.clean(f.socketDir, f.shmDir).isEmpty());
        }
    }

    @Test
    void shouldRefuseASocketDirectoryOthersCanEnter() throws Exception {
        Path dir = Files.createTempDirectory("shmxopen",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        try {
            ShmxException e = assertThrows(ShmxException.class, () -> HostNames.list(dir, dir));
            assertEquals(-4135, e.code()); // SHMX_EPERMS
            assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
        } finally {
            Files.delete(dir);
        }
    }

    @Test
    void shouldShowARunningHostAsLive() {
        // Only looks at the default directories: it never cleans them (other programs' hosts live there).
        try (Host host = Host.create(TestSupport.uniqueName("names"))) {
            HostEntry e = byName(HostNames.list()).get(host.name());
            assertTrue(e != null && e.live(), String.valueOf(e));
            assertEquals(host.socketPath(), e.socketPath());
        }
    }
}
