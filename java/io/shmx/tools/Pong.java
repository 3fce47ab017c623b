package io.shmx.tools;

import io.shmx.HostExistsException;
import io.shmx.ShmxException;
import io.shmx.Transport;

import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

/**
 * {@code shmx pong --name NAME [--transport shm|uds|both] [--max-guests N] [--spin N]}:
 * the host side of the ping-pong protocol (see {@link PongServer}). Prints
 * {@code pong: listening on NAME (PATH)} to stderr when ready and serves
 * until SIGTERM or SIGINT, then closes cleanly and exits 0.
 */
final class Pong {
    private Pong() {
    }

    static int run(String[] argv) {
        String name;
        Set<Transport> transports;
        int maxGuests;
        long spin;
        try {
            Args a = Args.parse(argv, Set.of("name", "transport", "max-guests", "spin"), Set.of());
            name = a.required("name");
            String t = a.string("transport", "both");
            switch (t) {
                case "shm":
                    transports = EnumSet.of(Transport.SHM);
                    break;
                case "uds":
                    transports = EnumSet.of(Transport.UDS);
                    break;
                case "both":
                    transports = EnumSet.of(Transport.SHM, Transport.UDS);
                    break;
                default:
                    throw new Args.UsageException("--transport must be shm, uds or both: '" + t + "'");
            }
            maxGuests = (int) a.number("max-guests", 8, 1, 1024);
            spin = a.number("spin", -1, 0, 0xFFFF_FFFFL);
        } catch (Args.UsageException e) {
            System.err.println("pong: " + e.getMessage());
            System.err.println("usage: shmx pong --name NAME [--transport shm|uds|both] [--max-guests N] [--spin N]");
            return Main.EXIT_USAGE;
        }

        PongServer server;
        try {
            server = new PongServer(name, transports, maxGuests, spin, false, System.err);
        } catch (IllegalArgumentException e) {
            System.err.println("pong: " + e.getMessage());
            return Main.EXIT_USAGE;
        } catch (HostExistsException e) {
            System.err.println("pong: a host named " + name + " is already running: " + e.getMessage());
            return Main.EXIT_FAILURE;
        } catch (ShmxException e) {
            System.err.println("pong: cannot create host " + name + ": " + e.getMessage());
            return Main.EXIT_FAILURE;
        }
        CountDownLatch done = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            server.close();
            done.countDown();
            // A clean close after SIGTERM/SIGINT exits 0, like build/bin/shmx-pong (not the JVM's 128 + signal).
            System.out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(Main.EXIT_OK);
        }, "pong-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        System.err.println("pong: listening on " + name + " (" + server.socketPath() + ")");
        System.err.flush();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return Main.EXIT_OK;
    }
}
