package io.shmx.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.shmx.NamesFixture;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;

/** The ls and clean commands' output and exit codes, in private directories (NamesFixture). */
class HostsToolTest {
    private final ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    private final ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(outBytes, true, StandardCharsets.UTF_8);
    private final PrintStream err = new PrintStream(errBytes, true, StandardCharsets.UTF_8);

    private List<String> lines() {
        String s = outBytes.toString(StandardCharsets.UTF_8);
        outBytes.reset();
        return s.isEmpty() ? List.of() : Arrays.asList(s.split("\n"));
    }

    private static String line(List<String> lines, String prefix) {
        return lines.stream().filter(l -> l.startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no line starting '" + prefix + "' in " + lines));
    }

    private static String[] dirs(NamesFixture f) {
        return new String[] {"--socket-dir", f.socketDir.toString(), "--shm-dir", f.shmDir.toString()};
    }

    @Test
    void shouldListOneLinePerHostWithItsState() throws Exception {
        try (NamesFixture f = new NamesFixture()) {
            assertEquals(Main.EXIT_OK, HostsTool.ls(dirs(f), out, err), errBytes.toString(StandardCharsets.UTF_8));
            List<String> ls = lines();
            assertEquals(4, ls.size(), ls.toString());
            assertEquals("live  live  pid=" + f.holderPid() + "  socket=" + f.socketDir.resolve("live.sock")
                    + "  segment=" + f.segment("live", bootId()) + "  started=2023-11-14T22:13:20Z",
                    line(ls, "live "));
            assertTrue(line(ls, "dead ").startsWith("dead  stale  pid=1  socket=" + f.socketDir.resolve("dead.sock")),
                    ls.toString());
            assertEquals("orphan  stale  pid=?  socket=" + f.socketDir.resolve("orphan.sock"), line(ls, "orphan "));
            assertEquals("old  stale  pid=?  socket=-  segment=" + f.segment("old", "0badb007") + "  (other boot)",
                    line(ls, "old "));
        }
    }

    @Test
    void shouldRemoveStaleHostsAndSayWhatWent() throws Exception {
        try (NamesFixture f = new NamesFixture()) {
            assertEquals(Main.EXIT_OK, HostsTool.clean(dirs(f), out, err), errBytes.toString(StandardCharsets.UTF_8));
            List<String> report = lines();
            assertEquals("removed dead: lock=" + f.socketDir.resolve("dead.lock") + " socket="
                    + f.socketDir.resolve("dead.sock"), line(report, "removed dead:"));
            assertEquals("removed orphan: socket=" + f.socketDir.resolve("orphan.sock"), line(report, "removed orphan:"));
            assertEquals("removed old: segment=" + f.segment("old", "0badb007"), line(report, "removed old:"));
            assertEquals("removed 3 stale host(s)", report.get(report.size() - 1));

            assertEquals(Main.EXIT_OK, HostsTool.ls(dirs(f), out, err));
            List<String> ls = lines();
            assertEquals(1, ls.size(), ls.toString());
            assertTrue(ls.get(0).startsWith("live  live  "), ls.toString());

            assertEquals(Main.EXIT_OK, HostsTool.clean(dirs(f), out, err));
            assertEquals(List.of("removed 0 stale host(s)"), lines());
        }
    }

    @Test
    void shouldRejectUnknownOptionsWithTheUsageStatus() {
        assertEquals(Main.EXIT_USAGE, HostsTool.ls(new String[] {"--bogus"}, out, err));
        assertTrue(errBytes.toString(StandardCharsets.UTF_8).contains("unknown option --bogus"));
        assertEquals(Main.EXIT_USAGE, Main.run(new String[] {"clean", "extra"}));
    }

    private static String bootId() throws Exception {
        return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/sys/kernel/random/boot_id")).trim();
    }
}
