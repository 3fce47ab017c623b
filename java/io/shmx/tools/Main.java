package io.shmx.tools;

import java.io.PrintStream;
import java.util.Arrays;

/**
 * The shmx command-line tool ({@code scripts/shmx}): {@code ping}, {@code pong},
 * {@code demo}, {@code tunnel}, {@code ls} and {@code clean}. Ping and pong behave exactly like the C programs
 * {@code build/bin/shmx-ping} and {@code build/bin/shmx-pong}, so that any C or
 * Java ping works with any C or Java pong.
 *
 * <pre>
 * scripts/shmx pong --name demo &amp;
 * scripts/shmx ping --name demo --size 64 --count 100000
 * scripts/shmx demo --quick
 * </pre>
 *
 * Exit codes: 0 success, 1 failure (wrong or missing echo), 2 usage error,
 * 3 could not connect (or the host closed the channel), 4 the host is gone
 * (ping: it died or was destroyed mid-run, {@code HostGoneException}), 5 the
 * host expelled this guest (ping: {@code ExpelledException}).
 */
public final class Main {
    /** Exit status: success. */
    public static final int EXIT_OK = 0;
    /** Exit status: a wrong or missing echo, a count mismatch, a failed guest. */
    public static final int EXIT_FAILURE = 1;
    /** Exit status: bad command line. */
    public static final int EXIT_USAGE = 2;
    /** Exit status: could not connect (no host, refused). */
    public static final int EXIT_CONNECT = 3;
    /** Exit status: the host died or was destroyed during the run (ping). */
    public static final int EXIT_HOST_GONE = 4;
    /** Exit status: the host expelled this guest for leaving its messages unconsumed (ping). */
    public static final int EXIT_EXPELLED = 5;

    private Main() {
    }

    /**
     * Runs a command and exits with its status.
     *
     * @param args the command and its options
     */
    public static void main(String[] args) {
        int rc = run(args);
        System.out.flush();
        System.err.flush();
        System.exit(rc);
    }

    /**
     * Runs a command without exiting (for tests and the demo).
     *
     * @param args the command and its options
     * @return the exit status
     */
    public static int run(String[] args) {
        if (args.length == 0) {
            usage(System.err);
            return EXIT_USAGE;
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        switch (args[0]) {
            case "ping":
                return Ping.run(rest);
            case "pong":
                return Pong.run(rest);
            case "demo":
                return Demo.run(rest);
            case "tunnel":
                return Tunnel.run(rest);
            case "ls":
                return HostsTool.ls(rest, System.out, System.err);
            case "clean":
                return HostsTool.clean(rest, System.out, System.err);
            case "help":
            case "-h":
            case "--help":
                usage(System.out);
                return EXIT_OK;
            default:
                System.err.println("shmx: unknown command '" + args[0] + "'");
                usage(System.err);
                return EXIT_USAGE;
        }
    }

    static void usage(PrintStream out) {
        out.println("usage: shmx <command> [options]");
        out.println("  pong --name NAME [--transport shm|uds|both] [--max-guests N] [--spin N]");
        out.println("       host: echo type 2 as type 4, count type 256, answer type 257 with count and bytes");
        out.println("  ping --name NAME [--transport shm|uds] [--size BYTES] [--count N] [--warmup N]");
        out.println("       [--throughput] [--timeout-ms T] [--spin N]");
        out.println("       guest: verify every echo, print rtt_ns p50=... (or throughput msgs_per_s=...)");
        out.println("  demo [--quick] [--count N] [--warmup N]");
        out.println("       host in this JVM, C and Java guests against it, C reference host, floor; prints a table");
        out.println("  " + Tunnel.USAGE_LISTEN);
        out.println("       accept TCP connections and carry each over shmx to the host NAME");
        out.println("  " + Tunnel.USAGE_CONNECT);
        out.println("       the shmx host NAME: open a TCP connection to the target for each carried stream");
        out.println("  " + HostsTool.USAGE_LS);
        out.println("       this user's hosts, one line each: NAME  live|stale  pid=...  socket=...  [segment=...]");
        out.println("  " + HostsTool.USAGE_CLEAN);
        out.println("       remove the stale hosts' files (never a live host's); print what went");
        out.println("exit codes: 0 ok, 1 wrong or missing echo, 2 usage, 3 could not connect, 4 the host is gone,"
                + " 5 expelled by the host");
    }
}
