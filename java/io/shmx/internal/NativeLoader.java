package io.shmx.internal;

import io.shmx.NativeLibraryException;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Loads libshmx.so once per class loader, the way netty's
 * {@code NativeLibraryLoader} does. In order:
 * <ol>
 *   <li>system property {@value #LIBRARY_PATH_PROPERTY}: an explicit .so file, loaded with
 *       {@link System#load(String)};</li>
 *   <li>the resource {@value #RESOURCE} on the class path (inside the shmx jar), copied into a
 *       fresh owner-only (0700) directory under {@value #TMPDIR_PROPERTY} or {@code java.io.tmpdir},
 *       loaded, then deleted (the mapping stays valid);</li>
 *   <li>{@code System.loadLibrary("shmx")} from {@code java.library.path}.</li>
 * </ol>
 * The first that loads and answers a JNI call wins. When every attempt fails,
 * a {@link NativeLibraryException} lists each attempt with its failure (each
 * attached as suppressed) and, when the extracted copy could not be mapped,
 * names a {@code noexec} temporary directory as the likely cause.
 */
public final class NativeLoader {
    /** System property: path of a libshmx.so to load instead of the packaged one. */
    public static final String LIBRARY_PATH_PROPERTY = "shmx.library.path";
    /** System property: directory to extract the packaged library into (default java.io.tmpdir). */
    public static final String TMPDIR_PROPERTY = "shmx.tmpdir";
    /** Where the jar carries the library. */
    public static final String RESOURCE = "/META-INF/native/linux-x86_64/libshmx.so";
    /** Name for System.loadLibrary. */
    public static final String LIBRARY_NAME = "shmx";

    private static final Object LOCK = new Object();
    private static volatile boolean loaded;
    private static String loadedFrom;
    private static NativeLibraryException failure;

    private NativeLoader() {
    }

    /**
     * Loads the library if this has not happened yet. Thread-safe; after a
     * success it costs one volatile read.
     *
     * @throws NativeLibraryException if no attempt loaded it (also on every later call)
     */
    public static void ensureLoaded() {
        if (loaded) {
            return;
        }
        synchronized (LOCK) {
            if (loaded) {
                return;
            }
            if (failure != null) {
                throw new NativeLibraryException(failure.getMessage(), failure);
            }
            try {
                loadedFrom = load(System.getProperty(LIBRARY_PATH_PROPERTY), RESOURCE, LIBRARY_NAME, tmpRoot(),
                        NativeLoader.class);
                loaded = true;
            } catch (NativeLibraryException e) {
                failure = e;
                throw e;
            }
        }
    }

    /** @return whether the library is loaded (without trying to load it) */
    public static boolean isLoaded() {
        return loaded;
    }

    /** @return a description of where the library came from, or null if it is not loaded */
    public static String loadedFrom() {
        synchronized (LOCK) {
            return loadedFrom;
        }
    }

    private static Path tmpRoot() {
        String dir = System.getProperty(TMPDIR_PROPERTY);
        if (dir == null || dir.isBlank()) {
            dir = System.getProperty("java.io.tmpdir", "/tmp");
        }
        return Path.of(dir);
    }

    /**
     * Runs the three attempts with explicit inputs (for tests; {@link #ensureLoaded()} uses the real ones).
     *
     * @param overridePath the explicit file, or null/blank to skip attempt 1
     * @param resource     class-path resource of the packaged library, or null to skip attempt 2
     * @param libraryName  name for System.loadLibrary, or null to skip attempt 3
     * @param tmpRoot      directory to extract into
     * @param anchor       class whose loader finds the resource
     * @return a description of the attempt that succeeded
     * @throws NativeLibraryException listing every attempt when none succeeded
     */
    static String load(String overridePath, String resource, String libraryName, Path tmpRoot, Class<?> anchor) {
        List<Throwable> failures = new ArrayList<>();
        List<String> report = new ArrayList<>();
        boolean noexecSuspected = false;

        // 1. explicit file
        if (overridePath != null && !overridePath.isBlank()) {
            Path file = Path.of(overridePath).toAbsolutePath();
            String what = "-D" + LIBRARY_PATH_PROPERTY + "=" + file;
            try {
                if (!Files.isRegularFile(file)) {
                    throw new IOException("no such file: " + file);
                }
                System.load(file.toString());
                verify();
                warnIfSkipped(report);
                return what;
            } catch (Throwable t) {
                rethrowIfFatal(t);
                failures.add(t);
                report.add(what + ": " + describe(t));
            }
        } else {
            report.add("-D" + LIBRARY_PATH_PROPERTY + ": not set");
        }

        // 2. packaged in the jar
        if (resource != null) {
            String what = "extract " + resource + " into " + tmpRoot;
            URL url = anchor.getResource(resource);
            if (url == null) {
                String platform = System.getProperty("os.name") + "/" + System.getProperty("os.arch");
                Throwable t = new IOException("resource " + resource + " not on the class path (platform "
                        + platform + "; the jar packages linux-x86_64 only, or it was built with -Dshmx.skipNative)");
                failures.add(t);
                report.add(what + ": " + t.getMessage());
            } else {
                Path dir = null;
                Path file = null;
                try {
                    dir = createPrivateDirectory(tmpRoot);
                    file = dir.resolve("libshmx.so");
                    try (InputStream in = url.openStream()) {
                        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                    }
                    if (posix()) {
                        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("r-x------"));
                    }
                    System.load(file.toString());
                    verify();
                    warnIfSkipped(report);
                    return url + " (extracted to " + file + ", deleted after loading)";
                } catch (Throwable t) {
                    rethrowIfFatal(t);
                    failures.add(t);
                    String text = describe(t);
                    report.add(what + ": " + text);
                    if (t instanceof UnsatisfiedLinkError && looksLikeNoexec(text)) {
                        noexecSuspected = true;
                    }
                } finally {
                    deleteQuietly(file);
                    deleteQuietly(dir);
                }
            }
        }

        // 3. java.library.path
        if (libraryName != null) {
            String what = "System.loadLibrary(\"" + libraryName + "\") with java.library.path="
                    + System.getProperty("java.library.path");
            try {
                System.loadLibrary(libraryName);
                verify();
                warnIfSkipped(report);
                return what;
            } catch (Throwable t) {
                rethrowIfFatal(t);
                failures.add(t);
                report.add(what + ": " + describe(t));
            }
        }

        StringBuilder msg = new StringBuilder("could not load the shmx native library (libshmx.so); attempts:");
        for (int i = 0; i < report.size(); i++) {
            msg.append("\n  ").append(i + 1).append(". ").append(report.get(i));
        }
        if (noexecSuspected) {
            msg.append("\nThe extracted copy could not be mapped executable: the temporary directory ")
                    .append(tmpRoot)
                    .append(" is probably on a filesystem mounted noexec. Point -D")
                    .append(TMPDIR_PROPERTY)
                    .append("=<dir on an exec filesystem> at another directory, or set -D")
                    .append(LIBRARY_PATH_PROPERTY)
                    .append("=<path to libshmx.so>.");
        } else {
            msg.append("\nBuild it with cmake (build/lib/libshmx.so) or mvn package, then set -D")
                    .append(LIBRARY_PATH_PROPERTY).append("=<path to libshmx.so> or use the shmx jar.");
        }
        NativeLibraryException e = new NativeLibraryException(msg.toString(), null);
        for (Throwable t : failures) {
            e.addSuppressed(t);
        }
        throw e;
    }

    /** True when a load failure text looks like a noexec mount or a denied mapping. */
    static boolean looksLikeNoexec(String text) {
        String t = text.toLowerCase(Locale.ROOT);
        return t.contains("failed to map segment") || t.contains("operation not permitted")
                || t.contains("permission denied") || t.contains("noexec");
    }

    private static void warnIfSkipped(List<String> report) {
        // An explicit override that failed must not go unnoticed when a later attempt succeeds.
        if (!report.isEmpty() && !report.get(0).endsWith(": not set")) {
            System.err.println("shmx: warning: " + report.get(0) + "; loaded the library from the next source instead");
        }
    }

    /** A loaded file without the JNI glue (a C-only build) fails here instead of at the first real call. */
    private static void verify() {
        try {
            Native.nativeVersion();
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("the library loaded but has no JNI glue (was it built without a JDK?): "
                    + e.getMessage());
        }
    }

    private static Path createPrivateDirectory(Path root) throws IOException {
        Files.createDirectories(root);
        if (posix()) {
            return Files.createTempDirectory(root, "shmx-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        return Files.createTempDirectory(root, "shmx-");
    }

    private static boolean posix() {
        return FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException | SecurityException ignored) {
                // best effort: a leftover file in a private directory harms nobody
            }
        }
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m != null ? ": " + m : "");
    }

    private static void rethrowIfFatal(Throwable t) {
        if (t instanceof VirtualMachineError) {
            throw (VirtualMachineError) t;
        }
    }
}
