package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.Guest;
import io.shmx.Message;
import io.shmx.Shmx;
import io.shmx.ShmxException;
import io.shmx.Status;
import io.shmx.Transport;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code shmx demo [--quick] [--count N]}: the project's main job. Runs a
 * Java host (the pong service, busy-spinning while a guest is active) in
 * this JVM and, one at a time, guest processes against it: the C guest
 * {@code build/bin/shmx-ping} and a Java guest (a second JVM running
 * {@code Main ping}). Also starts the C host {@code build/bin/shmx-pong}
 * (under another name) for a C-to-C reference row and runs
 * {@code build/bin/shmx-floor} for the raw floor (two processes bouncing one
 * cache line). Prints round-trip percentiles at 64 B and 4 KiB over shm and
 * uds, each as a multiple of the floor p50 and shm against uds, and one-way
 * throughput for the same paths.
 *
 * <p>{@code --count N} sets the round trips per latency run (default 20000);
 * throughput runs send 100 N messages at 64 B and 10 N at 4 KiB. {@code --quick}
 * is {@code --count 1000}.
 */
final class Demo {
    private static final Pattern RTT = Pattern.compile(
            "^rtt_ns p50=(\\d+) p90=(\\d+) p99=(\\d+) p999=(\\d+) max=(\\d+) count=(\\d+)\\s*$", Pattern.MULTILINE);
    private static final Pattern FLOOR = Pattern.compile(
            "^floor_rtt_ns p50=(\\d+) p90=(\\d+) p99=(\\d+) p999=(\\d+) max=(\\d+) count=(\\d+)\\s*$",
            Pattern.MULTILINE);
    private static final Pattern THROUGHPUT = Pattern.compile(
            "^throughput msgs_per_s=([0-9.eE+]+) mbytes_per_s=([0-9.eE+]+) count=(\\d+) size=(\\d+)\\s*$",
            Pattern.MULTILINE);
    private static final int[] SIZES = {64, 4096};
    private static final long GUEST_TIMEOUT_SECONDS = 300;

    private Demo() {
    }

    /** A demo failure: message for stderr, exit status 1. */
    private static final class DemoFailure extends Exception {
        private static final long serialVersionUID = 1L;

        DemoFailure(String message) {
            super(message);
        }
    }

    /** One measured path: who is the guest, who is the host. */
    private enum Path3 {
        C_TO_JAVA("C guest -> Java host"),
        JAVA_TO_JAVA("Java guest -> Java host"),
        C_TO_C("C guest -> C host");

        final String label;

        Path3(String label) {
            this.label = label;
        }
    }

    /** Round trips of the short floor run before each latency row. */
    private static final int ROW_FLOOR_COUNT = 20_000;

    private static final class Latency {
        long p50;
        long p90;
        long p99;
        long p999;
        long max;
        long count;
    }

    private static final class Rate {
        double msgs;
        double mbytes;
        long count;
    }

    private final List<String> commands = new ArrayList<>();
    private final Map<String, Latency> latencies = new LinkedHashMap<>();
    private final Map<String, Rate> rates = new LinkedHashMap<>();
    /** Floor p50 measured right before each latency row (keyed by path and size). */
    private final Map<String, Long> rowFloors = new LinkedHashMap<>();
    private Path bin;
    private String javaHostName;
    private String cHostName;
    private int count;
    private int warmup;

    static int run(String[] argv) {
        Demo d = new Demo();
        try {
            Args a = Args.parse(argv, Set.of("count", "warmup"), Set.of("quick"));
            d.count = (int) a.number("count", a.flag("quick") ? 1000 : 20_000, 1, 10_000_000);
            d.warmup = (int) a.number("warmup", Math.max(500, Math.min(5000, d.count / 4)), 0, 10_000_000);
        } catch (Args.UsageException e) {
            System.err.println("demo: " + e.getMessage());
            System.err.println("usage: shmx demo [--quick] [--count N] [--warmup N]");
            return Main.EXIT_USAGE;
        }
        try {
            d.execute();
            return Main.EXIT_OK;
        } catch (DemoFailure e) {
            System.err.println("demo: FAILED: " + e.getMessage());
            return Main.EXIT_FAILURE;
        } catch (ShmxException e) {
            System.err.println("demo: FAILED: " + e.getMessage());
            return Main.EXIT_FAILURE;
        } catch (IOException e) {
            System.err.println("demo: FAILED: " + e);
            return Main.EXIT_FAILURE;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            System.err.println("demo: interrupted");
            return Main.EXIT_FAILURE;
        }
    }

    private void execute() throws DemoFailure, IOException, InterruptedException {
        Path home = home();
        bin = buildDir(home).resolve("bin");
        for (String prog : new String[] {"shmx-ping", "shmx-pong", "shmx-floor"}) {
            if (!Files.isExecutable(bin.resolve(prog))) {
                throw new DemoFailure("missing " + bin.resolve(prog)
                        + ": build the C side first (cmake -S . -B build && cmake --build build, or scripts/demo)");
            }
        }
        long pid = ProcessHandle.current().pid();
        javaHostName = "shmx-demo-" + pid + "-java";
        cHostName = "shmx-demo-" + pid + "-c";
        long started = System.nanoTime();

        System.out.println(header());
        System.out.println("native library: " + Shmx.nativeLibrary() + ", crc32: " + Shmx.crc32Implementation());
        System.out.printf(Locale.ROOT, "round trips per latency run: %d (+%d warm-up); throughput messages: %d at 64 B,"
                + " %d at 4 KiB%n%n", count, warmup, throughputCount(64), throughputCount(4096));
        System.out.flush();

        Latency floor = runFloor(Math.max(count * 5, 10_000), true);

        Process cHost = null;
        Path cHostLog = Files.createTempFile("shmx-demo-pong", ".log");
        try (PongServer javaHost = new PongServer(javaHostName, EnumSet.of(Transport.SHM, Transport.UDS), 8, -1,
                true, System.err)) {
            commands.add("(in this JVM) pong --name " + javaHostName + " --transport both  [service threads busy-spin]");
            List<String> cHostCmd = List.of(bin.resolve("shmx-pong").toString(), "--name", cHostName,
                    "--transport", "both", "--spin", "4294967295");
            commands.add(String.join(" ", cHostCmd));
            cHost = startCHost(cHostCmd, cHostLog);
            warmUp(javaHostName);
            System.out.printf(Locale.ROOT, "shared memory mapped by the Java host (default configuration, any number"
                    + " of guests): %.2f MiB%n%n", javaHost.host().mappedBytes() / (1024.0 * 1024.0));
            System.out.flush();

            // This machine's speed can change within a run (a shared VM), so every figure is
            // compared with runs made right next to it: a short floor just before each
            // latency row, and shm and uds back to back for each path and size.
            commands.add(bin.resolve("shmx-floor") + " --count " + ROW_FLOOR_COUNT + "  [before each latency row]");
            for (int size : SIZES) {
                for (Path3 p : Path3.values()) {
                    rowFloors.put(p.name() + "/" + size, runFloor(ROW_FLOOR_COUNT, false).p50);
                    for (Transport t : new Transport[] {Transport.SHM, Transport.UDS}) {
                        progress("latency", p, t, size);
                        latencies.put(key(p, t, size), latency(p, t, size));
                    }
                }
            }
            for (int size : SIZES) {
                for (Path3 p : Path3.values()) {
                    for (Transport t : new Transport[] {Transport.SHM, Transport.UDS}) {
                        progress("throughput", p, t, size);
                        rates.put(key(p, t, size), throughput(p, t, size));
                    }
                }
            }
            if (javaHost.failures() > 0) {
                throw new DemoFailure("the Java host reported " + javaHost.failures() + " problem(s); see above");
            }
        } finally {
            if (cHost != null) {
                stop(cHost);
            }
            Files.deleteIfExists(cHostLog);
        }
        System.err.println();
        printTables(floor);
        System.out.printf(Locale.ROOT, "%ndemo finished in %.1f s%n", (System.nanoTime() - started) / 1e9);
    }

    /**
     * Runs round trips from a guest in this JVM against the Java host before
     * anything is measured, so that the host's service loop is compiled by the
     * JIT and the first measured row does not pay for it.
     */
    private void warmUp(String host) throws DemoFailure {
        long t0 = System.nanoTime();
        Message reply = new Message();
        for (Transport t : new Transport[] {Transport.SHM, Transport.UDS}) {
            try (Guest g = Guest.connect(host, t, Duration.ofSeconds(10))) {
                Channel ch = g.channel();
                for (int size : SIZES) {
                    byte[] payload = new byte[size];
                    int rounds = Math.min(20_000, Math.max(2_000, count)) / (t == Transport.SHM ? 1 : 4);
                    for (int i = 0; i < rounds; i++) {
                        long id = ch.send(Channel.TYPE_DATA, payload, 0, size, TimeUnit.SECONDS.toNanos(5));
                        if (id <= 0 || ch.receive(reply, TimeUnit.SECONDS.toNanos(5)) != Status.OK) {
                            throw new DemoFailure("warm-up against the Java host failed over " + t + ": "
                                    + Status.toString(id <= 0 ? id : Status.EMPTY));
                        }
                        ch.release(reply);
                    }
                }
            }
        }
        commands.add(String.format(Locale.ROOT, "(in this JVM) warm-up: a guest in this JVM exchanges round trips"
                + " with the Java host before anything is measured (%.1f s)", (System.nanoTime() - t0) / 1e9));
    }

    private int throughputCount(int size) {
        long n = size <= 64 ? 100L * count : 10L * count;
        return (int) Math.min(n, Integer.MAX_VALUE - 64);
    }

    private static String key(Path3 p, Transport t, int size) {
        return p.name() + "/" + t + "/" + size;
    }

    private static void progress(String what, Path3 p, Transport t, int size) {
        System.err.printf(Locale.ROOT, "demo: %-10s %-24s %s %5d B%n", what, p.label, t.name().toLowerCase(Locale.ROOT),
                size);
    }

    // ---- runs ------------------------------------------------------------------

    private Latency runFloor(int rounds, boolean listCommand) throws DemoFailure, IOException, InterruptedException {
        List<String> cmd = List.of(bin.resolve("shmx-floor").toString(), "--count", Integer.toString(rounds));
        Result r = exec(cmd, 120);
        if (listCommand) {
            commands.add(String.join(" ", cmd));
        }
        if (r.exit != 0) {
            throw new DemoFailure(failureText(cmd, r));
        }
        Matcher m = FLOOR.matcher(r.stdout);
        if (!m.find()) {
            throw new DemoFailure("no floor_rtt_ns line from " + String.join(" ", cmd) + ":\n" + r.stdout + r.stderr);
        }
        return parseLatency(m);
    }

    private Latency latency(Path3 p, Transport t, int size) throws DemoFailure, IOException, InterruptedException {
        List<String> cmd = guestCommand(p, t, size);
        cmd.addAll(List.of("--count", Integer.toString(count), "--warmup", Integer.toString(warmup)));
        Result r = exec(cmd, GUEST_TIMEOUT_SECONDS);
        commands.add(String.join(" ", cmd));
        if (r.exit != 0) {
            throw new DemoFailure(failureText(cmd, r));
        }
        Matcher m = RTT.matcher(r.stdout);
        if (!m.find()) {
            throw new DemoFailure("no rtt_ns line from " + String.join(" ", cmd) + ":\n" + r.stdout + r.stderr);
        }
        return parseLatency(m);
    }

    private Rate throughput(Path3 p, Transport t, int size) throws DemoFailure, IOException, InterruptedException {
        List<String> cmd = guestCommand(p, t, size);
        cmd.addAll(List.of("--count", Integer.toString(throughputCount(size)), "--throughput"));
        Result r = exec(cmd, GUEST_TIMEOUT_SECONDS);
        commands.add(String.join(" ", cmd));
        if (r.exit != 0) {
            throw new DemoFailure(failureText(cmd, r));
        }
        Matcher m = THROUGHPUT.matcher(r.stdout);
        if (!m.find()) {
            throw new DemoFailure("no throughput line from " + String.join(" ", cmd) + ":\n" + r.stdout + r.stderr);
        }
        Rate rate = new Rate();
        rate.msgs = Double.parseDouble(m.group(1));
        rate.mbytes = Double.parseDouble(m.group(2));
        rate.count = Long.parseLong(m.group(3));
        return rate;
    }

    private List<String> guestCommand(Path3 p, Transport t, int size) {
        List<String> cmd = new ArrayList<>();
        String host;
        if (p == Path3.JAVA_TO_JAVA) {
            cmd.addAll(javaCommand());
            cmd.add("ping");
            host = javaHostName;
        } else {
            cmd.add(bin.resolve("shmx-ping").toString());
            host = p == Path3.C_TO_C ? cHostName : javaHostName;
        }
        cmd.addAll(List.of("--name", host, "--transport", t.name().toLowerCase(Locale.ROOT), "--size",
                Integer.toString(size)));
        return cmd;
    }

    /** The command that starts a second JVM with this JVM's class path and shmx properties. */
    static List<String> javaCommand() {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String prop : new String[] {"shmx.library.path", "shmx.tmpdir", "shmx.home", "shmx.build.dir"}) {
            String v = System.getProperty(prop);
            if (v != null && !v.isEmpty()) {
                cmd.add("-D" + prop + "=" + v);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Main.class.getName());
        return cmd;
    }

    private Process startCHost(List<String> cmd, Path log) throws DemoFailure, IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.redirectError(log.toFile());
        Process proc = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            String text = Files.readString(log, StandardCharsets.UTF_8);
            if (text.contains("pong: listening on")) {
                return proc;
            }
            if (!proc.isAlive()) {
                throw new DemoFailure("the C host exited with status " + proc.exitValue() + ": "
                        + String.join(" ", cmd) + "\n" + text);
            }
            Thread.sleep(20);
        }
        stop(proc);
        throw new DemoFailure("the C host did not print 'pong: listening on' within 10 s: " + String.join(" ", cmd));
    }

    private static void stop(Process p) throws InterruptedException {
        p.destroy(); // SIGTERM: a clean close
        if (!p.waitFor(5, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
    }

    private static final class Result {
        int exit;
        String stdout;
        String stderr;
    }

    private static Result exec(List<String> cmd, long timeoutSeconds) throws IOException, InterruptedException,
            DemoFailure {
        Path out = Files.createTempFile("shmx-demo", ".out");
        Path err = Files.createTempFile("shmx-demo", ".err");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.redirectOutput(out.toFile());
            pb.redirectError(err.toFile());
            Process p = pb.start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                throw new DemoFailure("timed out after " + timeoutSeconds + " s: " + String.join(" ", cmd) + "\n"
                        + Files.readString(err, StandardCharsets.UTF_8));
            }
            Result r = new Result();
            r.exit = p.exitValue();
            r.stdout = Files.readString(out, StandardCharsets.UTF_8);
            r.stderr = Files.readString(err, StandardCharsets.UTF_8);
            return r;
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    private static String failureText(List<String> cmd, Result r) {
        String why;
        switch (r.exit) {
            case 1:
                why = "wrong or missing echo";
                break;
            case 2:
                why = "usage error";
                break;
            case 3:
                why = "could not connect";
                break;
            default:
                why = "exit status " + r.exit;
        }
        return "guest failed (" + why + ", exit " + r.exit + "): " + String.join(" ", cmd) + "\n" + r.stderr.strip();
    }

    private static Latency parseLatency(Matcher m) {
        Latency l = new Latency();
        l.p50 = Long.parseLong(m.group(1));
        l.p90 = Long.parseLong(m.group(2));
        l.p99 = Long.parseLong(m.group(3));
        l.p999 = Long.parseLong(m.group(4));
        l.max = Long.parseLong(m.group(5));
        l.count = Long.parseLong(m.group(6));
        return l;
    }

    // ---- report ----------------------------------------------------------------

    private void printTables(Latency floor) {
        System.out.printf(Locale.ROOT, "floor (two processes bouncing one cache line): p50=%d p99=%d p99.9=%d max=%d ns"
                + " (count %d)%n%n", floor.p50, floor.p99, floor.p999, floor.max, floor.count);
        long lo = rowFloors.values().stream().mapToLong(Long::longValue).min().orElse(floor.p50);
        long hi = rowFloors.values().stream().mapToLong(Long::longValue).max().orElse(floor.p50);
        System.out.printf(Locale.ROOT, "Round-trip latency, ns (xF = multiple of the floor p50 measured just before"
                + " the row, %d to %d ns in this run;%n shm/uds = shm p50 / uds p50 of the same path and size, run one"
                + " after the other)%n", lo, hi);
        System.out.printf(Locale.ROOT, "%-24s %-5s %6s  %-17s %-17s %-17s %s%n", "path", "over", "size", "p50 (xF)",
                "p99 (xF)", "p99.9 (xF)", "shm/uds");
        for (Transport t : new Transport[] {Transport.SHM, Transport.UDS}) {
            for (int size : SIZES) {
                for (Path3 p : Path3.values()) {
                    Latency l = latencies.get(key(p, t, size));
                    double f = Math.max(rowFloors.get(p.name() + "/" + size), 1);
                    String ratio = "";
                    if (t == Transport.SHM) {
                        Latency u = latencies.get(key(p, Transport.UDS, size));
                        ratio = String.format(Locale.ROOT, "%.2f", (double) l.p50 / Math.max(u.p50, 1));
                    }
                    System.out.printf(Locale.ROOT, "%-24s %-5s %6s  %-17s %-17s %-17s %s%n", p.label,
                            t.name().toLowerCase(Locale.ROOT), sizeText(size), withFloor(l.p50, f),
                            withFloor(l.p99, f), withFloor(l.p999, f), ratio);
                }
            }
        }
        System.out.println();
        System.out.println("One-way throughput (sink messages, then one reply with the count; shm/uds = shm msgs/s /"
                + " uds msgs/s)");
        System.out.printf(Locale.ROOT, "%-24s %-5s %6s  %14s %10s %10s  %s%n", "path", "over", "size", "msgs/s", "MB/s",
                "messages", "shm/uds");
        for (Transport t : new Transport[] {Transport.SHM, Transport.UDS}) {
            for (int size : SIZES) {
                for (Path3 p : Path3.values()) {
                    Rate r = rates.get(key(p, t, size));
                    String ratio = "";
                    if (t == Transport.SHM) {
                        Rate u = rates.get(key(p, Transport.UDS, size));
                        ratio = String.format(Locale.ROOT, "%.2f", r.msgs / Math.max(u.msgs, 1e-9));
                    }
                    System.out.printf(Locale.ROOT, "%-24s %-5s %6s  %14.0f %10.1f %10d  %s%n", p.label,
                            t.name().toLowerCase(Locale.ROOT), sizeText(size), r.msgs, r.mbytes, r.count, ratio);
                }
            }
        }
        System.out.println();
        System.out.println("Commands:");
        for (String c : commands) {
            System.out.println("  " + c);
        }
    }

    private static String sizeText(int size) {
        return size >= 1024 && size % 1024 == 0 ? (size / 1024) + " KiB" : size + " B";
    }

    private static String withFloor(long ns, double floor) {
        return String.format(Locale.ROOT, "%d (x%.1f)", ns, ns / floor);
    }

    private static String header() {
        String cpu = "unknown CPU";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"), StandardCharsets.UTF_8)) {
                if (line.startsWith("model name")) {
                    cpu = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // keep "unknown CPU"
        }
        String load = "?";
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg"), StandardCharsets.UTF_8).trim().split("\\s+");
            load = f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            // keep "?"
        }
        return String.format(Locale.ROOT, "shmx %s demo: %s, %d cores, %s %s, Java %s (%s), load average %s",
                Shmx.version(), cpu, Runtime.getRuntime().availableProcessors(), System.getProperty("os.name"),
                System.getProperty("os.version"), System.getProperty("java.version"),
                System.getProperty("java.vm.name"), load);
    }

    // ---- locating the repository -------------------------------------------------

    /**
     * The repository root: {@code -Dshmx.home} (set by scripts/shmx), else
     * derived from where this class was loaded (target/classes or target/shmx-*.jar).
     */
    static Path home() throws DemoFailure {
        String h = System.getProperty("shmx.home");
        if (h != null && !h.isEmpty()) {
            return Path.of(h).toAbsolutePath();
        }
        try {
            Path p = Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            // .../target/classes or .../target/shmx-0.1.0-SNAPSHOT.jar -> ...
            Path target = p.getParent();
            if (target != null && target.getParent() != null) {
                return target.getParent();
            }
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            // fall through
        }
        throw new DemoFailure("cannot find the repository root: run through scripts/shmx or set -Dshmx.home=<repo>");
    }

    /** {@code -Dshmx.build.dir} or HOME/build. */
    static Path buildDir(Path home) {
        String b = System.getProperty("shmx.build.dir");
        if (b != null && !b.isEmpty()) {
            return Path.of(b);
        }
        return home.resolve("build");
    }
}
