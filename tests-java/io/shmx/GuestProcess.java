package io.shmx;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A child process (a {@link LivenessGuest} JVM or a C program) whose stdout lines are read as they come. */
final class GuestProcess implements AutoCloseable {
    final Process process;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final StringBuilder all = new StringBuilder();

    private GuestProcess(List<String> cmd) throws IOException {
        process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = r.readLine()) != null;) {
                    synchronized (all) {
                        all.append(l).append('\n');
                    }
                    lines.add(l);
                }
            } catch (IOException e) {
                // the process ended
            }
        }, "guest-stdout");
        t.setDaemon(true);
        t.start();
    }

    /** The start of a command that runs a new JVM with this JVM's class path and shmx properties. */
    static List<String> jvm() {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String prop : new String[] {"shmx.library.path", "shmx.tmpdir", "shmx.home", "shmx.build.dir"}) {
            String v = System.getProperty(prop);
            if (v != null && !v.isEmpty()) {
                cmd.add("-D" + prop + "=" + v);
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
        return cmd;
    }

    /** Starts {@link LivenessGuest} in a new JVM with this JVM's class path and shmx properties. */
    static GuestProcess java(String... args) throws IOException {
        List<String> cmd = jvm();
        cmd.addAll(1, List.of("-Xshare:auto", "-XX:TieredStopAtLevel=1"));
        cmd.add(LivenessGuest.class.getName());
        cmd.addAll(List.of(args));
        return new GuestProcess(cmd);
    }

    static GuestProcess of(List<String> cmd) throws IOException {
        return new GuestProcess(cmd);
    }

    /** The next stdout line starting with {@code prefix} (others are skipped), or fails after the timeout. */
    String await(String prefix, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        for (;;) {
            String l = lines.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            if (l == null) {
                throw new AssertionError("no line '" + prefix + "...' within " + timeoutMillis + " ms (alive="
                        + process.isAlive() + "); output so far:\n" + output());
            }
            if (l.startsWith(prefix)) {
                return l;
            }
        }
    }

    String output() {
        synchronized (all) {
            return all.toString();
        }
    }

    long pid() {
        return process.pid();
    }

    void writeLine(String s) throws IOException {
        OutputStream out = process.getOutputStream();
        out.write((s + "\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
    }

    /** Sends a signal by name (STOP, CONT) with kill(1): Java has no API for those. */
    void signal(String sig) throws IOException, InterruptedException {
        Process k = new ProcessBuilder("kill", "-" + sig, Long.toString(pid())).inheritIO().start();
        if (!k.waitFor(5, TimeUnit.SECONDS) || k.exitValue() != 0) {
            throw new AssertionError("kill -" + sig + " " + pid() + " failed");
        }
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
        process.waitFor(5, TimeUnit.SECONDS);
    }
}
