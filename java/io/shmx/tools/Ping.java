package io.shmx.tools;

import io.shmx.Channel;
import io.shmx.ConnectionRefusedException;
import io.shmx.ExpelledException;
import io.shmx.Guest;
import io.shmx.HostGoneException;
import io.shmx.Message;
import io.shmx.MessageInfo;
import io.shmx.NoHostException;
import io.shmx.ShmxException;
import io.shmx.Status;
import io.shmx.Transport;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * {@code shmx ping --name NAME [--transport shm|uds|auto] [--size BYTES] [--count N]
 * [--warmup N] [--throughput] [--timeout-ms T]}: the guest side of the
 * ping-pong protocol. With {@code --ticket} instead of {@code --name} it
 * attaches as a guest its host spawned, by the spawn ticket in
 * {@code $SHMX_TICKET} (shared memory; see {@link io.shmx.Guest#attachTicket()}),
 * and pings the same way.
 *
 * <p>Payload byte k of the message with id {@code id} is
 * {@code (byte) (k * 7 + id * 13)}; ids are the channel's sequence numbers
 * 1, 2, 3, ... Latency mode sends type 2, waits for the type-4 echo with the
 * same id (5 s), checks it byte for byte, and prints
 * {@code rtt_ns p50=... p90=... p99=... p999=... max=... count=...}.
 * Throughput mode sends {@code count} type-256 messages, then one type 257,
 * checks the count and byte total in the reply, and prints
 * {@code throughput msgs_per_s=... mbytes_per_s=... count=... size=...}.
 * Any size up to the channel's maximum message works: above one frame's
 * payload the request travels as fragments and the echo, which the pong sends
 * fragment by fragment as the request arrives, is reassembled by a second
 * thread while the request is still going out.
 * Exit codes: 0, 1 (wrong or missing echo), 2 (usage), 3 (could not connect, or the host closed the
 * channel), 4 (the host is gone: it died or was destroyed; one stderr line says so), 5 (the host expelled
 * this guest; one stderr line says "expelled").
 */
final class Ping {
    private static final long REPLY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long SEND_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long SINK_END_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(60);

    static final String USAGE = "usage: shmx ping --name NAME [--transport shm|uds|auto] [--size BYTES] [--count N]"
            + " [--warmup N] [--throughput] [--timeout-ms T] [--spin N]"
            + "\n       shmx ping --ticket [the same options but --name and --transport]"
            + " (a guest its host spawned: attach by $SHMX_TICKET)"
            + "\nexit: 0 ok, 1 wrong or missing echo, 2 usage, 3 could not connect, 4 the host is gone,"
            + " 5 expelled by the host";

    private Ping() {
    }

    /** Thrown for a wrong or missing echo (exit status 1) or a channel that ended (exit status 3, 4 or 5). */
    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        final int exitCode;

        Failure(String message) {
            this(message, Main.EXIT_FAILURE);
        }

        Failure(String message, int exitCode) {
            super(message);
            this.exitCode = exitCode;
        }

        /** A failed send or receive: the channel ended (exit 3, 4, 5), or something else broke (exit 1). */
        static Failure io(String what, long id, long status) {
            String where = " (" + what + ", message " + id + "): " + Status.toString(status);
            if (status == Status.HOST_GONE) {
                return new Failure("the host is gone" + where, Main.EXIT_HOST_GONE);
            }
            if (status == Status.EXPELLED) {
                return new Failure("expelled by the host" + where, Main.EXIT_EXPELLED);
            }
            if (status == Status.CLOSED) {
                return new Failure("the host closed the channel" + where, Main.EXIT_CONNECT);
            }
            if (status == Status.EMPTY) {
                return new Failure("no reply to message " + id + " within 5 s");
            }
            return new Failure(what + " failed at message " + id + ": " + Status.toString(status));
        }
    }

    static int run(String[] argv) {
        String name;
        boolean ticket;
        Transport transport;
        int size;
        int count;
        int warmup;
        boolean throughput;
        long timeoutMs;
        long spin;
        try {
            Args a = Args.parse(argv, Set.of("name", "transport", "size", "count", "warmup", "timeout-ms",
                    "spin"), Set.of("throughput", "help", "ticket"));
            if (a.flag("help")) {
                System.out.println(USAGE);
                return Main.EXIT_OK;
            }
            ticket = a.flag("ticket");
            if (ticket && (a.has("name") || a.has("transport"))) {
                throw new Args.UsageException("--ticket attaches by $SHMX_TICKET: no --name or --transport with it");
            }
            name = ticket ? "(spawned)" : a.required("name");
            String t = a.string("transport", "shm");
            if (!t.equals("shm") && !t.equals("uds") && !t.equals("auto")) {
                throw new Args.UsageException("--transport must be shm, uds or auto: '" + t + "'");
            }
            transport = Transport.parse(t);
            size = (int) a.number("size", 64, 0, Integer.MAX_VALUE - 64);
            count = (int) a.number("count", 100_000, 1, Integer.MAX_VALUE - 64);
            warmup = (int) a.number("warmup", 1000, 0, Integer.MAX_VALUE - 64);
            throughput = a.flag("throughput");
            timeoutMs = a.number("timeout-ms", 10_000, 0, 86_400_000);
            spin = a.number("spin", -1, 0, 0xFFFF_FFFFL);
        } catch (Args.UsageException e) {
            System.err.println("ping: " + e.getMessage());
            System.err.println(USAGE);
            return Main.EXIT_USAGE;
        }

        Guest guest;
        try {
            guest = ticket ? Guest.attachTicket(TimeUnit.MILLISECONDS.toNanos(timeoutMs))
                    : Guest.connect(name, transport, TimeUnit.MILLISECONDS.toNanos(timeoutMs));
        } catch (IllegalArgumentException e) {
            System.err.println("ping: " + e.getMessage());
            return Main.EXIT_USAGE;
        } catch (NoHostException e) {
            System.err.println("ping: no host named " + name + " within " + timeoutMs + " ms: " + e.getMessage());
            return Main.EXIT_CONNECT;
        } catch (ConnectionRefusedException e) {
            System.err.println("ping: host " + name + " refused the connection: " + e.getMessage());
            return Main.EXIT_CONNECT;
        } catch (ShmxException e) {
            System.err.println("ping: cannot connect to " + name + ": " + e.getMessage());
            return Main.EXIT_CONNECT;
        }
        try {
            Channel ch = guest.channel();
            if (size > ch.maxMessage()) {
                System.err.println("ping: --size " + size + " exceeds the channel's maximum message of "
                        + ch.maxMessage() + " bytes");
                return Main.EXIT_USAGE;
            }
            if (spin >= 0) {
                ch.setNativeIdle(spin, 50);
            }
            String line = throughput ? throughput(ch, size, count) : latency(ch, size, count, warmup);
            System.out.println(line);
            return Main.EXIT_OK;
        } catch (Failure e) {
            System.err.println("ping: " + e.getMessage());
            return e.exitCode;
        } catch (HostGoneException e) {
            System.err.println("ping: the host is gone: " + e.getMessage());
            return Main.EXIT_HOST_GONE;
        } catch (ExpelledException e) {
            System.err.println("ping: expelled by the host: " + e.getMessage());
            return Main.EXIT_EXPELLED;
        } finally {
            guest.close();
        }
    }

    /** Payload byte k of message {@code id}: (k * 7 + id * 13) mod 256. */
    static void fill(byte[] payload, byte[] base, int size, long id) {
        byte add = (byte) (id * 13);
        for (int k = 0; k < size; k++) {
            payload[k] = (byte) (base[k] + add);
        }
    }

    static byte[] base(int size) {
        byte[] b = new byte[size];
        for (int k = 0; k < size; k++) {
            b[k] = (byte) (k * 7);
        }
        return b;
    }

    private static String latency(Channel ch, int size, int count, int warmup) throws Failure {
        byte[] base = base(size);
        byte[] payload = new byte[size];
        ByteBuffer expected = ByteBuffer.wrap(payload);
        long[] samples = new long[count];
        Message reply = new Message();
        long nextId = 1;
        int total = warmup + count;
        if (size > ch.maxPayload()) {
            return fragmentedLatency(ch, size, count, warmup);
        }
        for (int i = 0; i < total; i++, nextId++) {
            fill(payload, base, size, nextId);
            long t0 = System.nanoTime();
            long id = ch.send(Channel.TYPE_DATA, payload, 0, size, SEND_TIMEOUT_NANOS);
            if (id != nextId) {
                throw id < 0 ? Failure.io("send", nextId, id)
                        : new Failure("send returned id " + id + ", expected " + nextId);
            }
            int rc = ch.receive(reply, REPLY_TIMEOUT_NANOS);
            long t1 = System.nanoTime();
            if (rc != Status.OK) {
                throw Failure.io("receive", id, rc);
            }
            try {
                verifyEcho(reply, id, size, expected);
            } finally {
                ch.release(reply);
            }
            if (i >= warmup) {
                samples[i - warmup] = t1 - t0;
            }
        }
        return Percentiles.rttLine(samples, count);
    }

    /** Round trips of fragmented messages: the echo is received by a second thread while the request goes out. */
    private static String fragmentedLatency(Channel ch, int size, int count, int warmup) throws Failure {
        byte[] base = base(size);
        byte[] payload = new byte[size];
        long[] samples = new long[count];
        MessageInfo info = new MessageInfo();
        ExecutorService receiver = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "shmx-ping-echo");
            t.setDaemon(true);
            return t;
        });
        try {
            long nextId = 1;
            for (int i = 0; i < warmup + count; i++, nextId++) {
                fill(payload, base, size, nextId);
                long t0 = System.nanoTime();
                Future<Echo> echo = receiver.submit(() -> {
                    byte[] got = ch.receiveMessage(info, REPLY_TIMEOUT_NANOS);
                    return new Echo(got, System.nanoTime());
                });
                long id = ch.send(Channel.TYPE_DATA, payload, 0, size, SEND_TIMEOUT_NANOS);
                Echo e = awaitEcho(echo, nextId);
                if (id != nextId) {
                    throw id < 0 ? Failure.io("send", nextId, id)
                            : new Failure("send returned id " + id + ", expected " + nextId);
                }
                if (e.payload == null) {
                    throw Failure.io("receive", id, Status.EMPTY);
                }
                int at = Arrays.mismatch(e.payload, payload);
                if (at >= 0) {
                    throw new Failure("echo of message " + id + " differs at byte " + at + " (" + e.payload.length
                            + " bytes, expected " + size + ")");
                }
                if (info.type() != Channel.TYPE_RESPONSE || info.id() != id) {
                    throw new Failure("echo of message " + id + " has type " + info.type() + " id " + info.id()
                            + ", expected type 4 id " + id);
                }
                if (i >= warmup) {
                    samples[i - warmup] = e.doneNanos - t0;
                }
            }
        } finally {
            receiver.shutdownNow();
        }
        return Percentiles.rttLine(samples, count);
    }

    /** A reassembled echo (null if none arrived in time) and when it was complete. */
    private record Echo(byte[] payload, long doneNanos) {
    }

    private static Echo awaitEcho(Future<Echo> echo, long id) throws Failure {
        try {
            return echo.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ShmxException) {
                throw Failure.io("receive", id, ((ShmxException) cause).code());
            }
            throw new Failure("receiving the echo of message " + id + " failed: " + cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Failure("interrupted waiting for the echo of message " + id);
        }
    }

    private static void verifyEcho(Message reply, long id, int size, ByteBuffer expected) throws Failure {
        if (reply.type() != Channel.TYPE_RESPONSE) {
            throw new Failure("echo of message " + id + " has type " + reply.type() + ", expected 4");
        }
        if (reply.id() != id) {
            throw new Failure("echo has id " + reply.id() + ", expected " + id);
        }
        if (reply.length() != size) {
            throw new Failure("echo of message " + id + " has " + reply.length() + " bytes, expected " + size);
        }
        if (size > 0) {
            int at = reply.buffer().mismatch(expected);
            if (at >= 0) {
                throw new Failure("echo of message " + id + " differs at byte " + at + ": got "
                        + (reply.getByte(at) & 0xFF) + ", expected " + (expected.get(at) & 0xFF));
            }
        }
    }

    private static String throughput(Channel ch, int size, int count) throws Failure {
        byte[] base = base(size);
        byte[] payload = new byte[size];
        long nextId = 1;
        long t0 = System.nanoTime();
        for (int i = 0; i < count; i++, nextId++) {
            fill(payload, base, size, nextId);
            long id = ch.send(PongServer.TYPE_SINK, payload, 0, size, SEND_TIMEOUT_NANOS);
            if (id != nextId) {
                throw id < 0 ? Failure.io("send", nextId, id)
                        : new Failure("send returned id " + id + ", expected " + nextId);
            }
        }
        long endId = ch.send(PongServer.TYPE_SINK_END, payload, 0, 0, SEND_TIMEOUT_NANOS);
        if (endId != nextId) {
            throw endId < 0 ? Failure.io("send", nextId, endId)
                    : new Failure("send returned id " + endId + ", expected " + nextId);
        }
        Message reply = new Message();
        int rc = ch.receive(reply, SINK_END_TIMEOUT_NANOS);
        long t1 = System.nanoTime();
        if (rc != Status.OK) {
            throw Failure.io("receive", endId, rc);
        }
        try {
            if (reply.type() != Channel.TYPE_RESPONSE || reply.id() != endId || reply.length() != 16) {
                throw new Failure("bad reply to the sink end: type " + reply.type() + " id " + reply.id() + " length "
                        + reply.length() + " (expected type 4, id " + endId + ", 16 bytes)");
            }
            long gotCount = reply.getLong(0);
            long gotBytes = reply.getLong(8);
            long wantBytes = (long) count * size;
            if (gotCount != count || gotBytes != wantBytes) {
                throw new Failure("host counted " + gotCount + " messages / " + gotBytes + " bytes, sent " + count
                        + " / " + wantBytes);
            }
        } finally {
            ch.release(reply);
        }
        double seconds = Math.max(t1 - t0, 1) / 1e9;
        double msgs = count / seconds;
        double mbytes = (double) count * size / seconds / 1e6;
        return String.format(java.util.Locale.ROOT, "throughput msgs_per_s=%.0f mbytes_per_s=%.2f count=%d size=%d",
                msgs, mbytes, count, size);
    }
}
