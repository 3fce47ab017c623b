package io.shmx.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.shmx.NativeLibraryException;
import io.shmx.ShmxException;
import io.shmx.TestSupport;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NativeLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void shouldListEveryAttemptWhenTheOverrideIsMissingAndNothingElseLoads() {
        Path missing = tmp.resolve("nowhere/libshmx.so");
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.load(missing.toString(), "/META-INF/native/no-such-platform/libshmx.so",
                        "shmx-no-such-library", tmp, NativeLoader.class));
        String m = e.getMessage();
        assertTrue(m.contains("1. -Dshmx.library.path=" + missing), m);
        assertTrue(m.contains("no such file"), m);
        assertTrue(m.contains("2. extract /META-INF/native/no-such-platform/libshmx.so"), m);
        assertTrue(m.contains("not on the class path"), m);
        assertTrue(m.contains("3. System.loadLibrary(\"shmx-no-such-library\")"), m);
        assertEquals(3, e.getSuppressed().length, "every failure is attached");
        assertTrue(e instanceof ShmxException);
    }

    @Test
    void shouldExplainANoexecTemporaryDirectory() {
        assertTrue(NativeLoader.looksLikeNoexec(
                "/tmp/shmx-1/libshmx.so: failed to map segment from shared object"));
        assertTrue(NativeLoader.looksLikeNoexec("cannot open shared object: Operation not permitted"));
        assertFalse(NativeLoader.looksLikeNoexec("no shmx in java.library.path"));
    }

    @Test
    void shouldRejectAFileThatIsNotALibrary() throws Exception {
        Path bogus = tmp.resolve("libshmx.so");
        Files.writeString(bogus, "not an ELF file");
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> NativeLoader.load(bogus.toString(), null, null, tmp, NativeLoader.class));
        assertTrue(e.getMessage().contains("UnsatisfiedLinkError"), e.getMessage());
        assertEquals(1, e.getSuppressed().length);
    }

    @Test
    void shouldBeLoadedOnceForTheWholeJvm() {
        NativeLoader.ensureLoaded();
        NativeLoader.ensureLoaded();
        assertTrue(NativeLoader.isLoaded());
        assertNotNull(NativeLoader.loadedFrom());
    }

    @Test
    void shouldExtractThePackagedLibraryIntoAPrivateDirectoryAndDeleteIt() throws Exception {
        assertNotNull(NativeLoader.class.getResource(NativeLoader.RESOURCE),
                "the build copies libshmx.so into target/classes" + NativeLoader.RESOURCE);
        Path dir = Files.createDirectory(tmp.resolve("extract"));
        List<String> out = runProbe(List.of("-Dshmx.tmpdir=" + dir));
        assertTrue(out.contains("crc=cbf43926"), out.toString());
        String from = out.stream().filter(l -> l.startsWith("loaded-from=")).findFirst().orElseThrow();
        assertTrue(from.contains("extracted to " + dir), from);
        try (Stream<Path> left = Files.walk(dir)) {
            assertEquals(List.of(dir), left.toList(), "the extracted copy and its directory are deleted");
        }
    }

    @Test
    void shouldLoadTheFileNamedByTheOverride() throws Exception {
        Path lib = TestSupport.buildDir().resolve("lib/libshmx.so");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(lib), "no " + lib);
        List<String> out = runProbe(List.of("-Dshmx.library.path=" + lib));
        assertTrue(out.contains("loaded-from=-Dshmx.library.path=" + lib.toAbsolutePath()), out.toString());
    }

    private static List<String> runProbe(List<String> props) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(props);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(LoaderProbe.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), text);
        return text.lines().toList();
    }
}
