package io.shmx;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * A guest process for the liveness tests (started by {@link GuestProcess}):
 * connects over shared memory, prints {@code EPOCH e INDEX i}, gets into the
 * state its mode names, prints {@code READY} and waits there to be killed or
 * stopped.
 *
 * <ul>
 * <li>{@code publish N}: sends N messages of 2048 bytes (pool slots) with ids 1..N, then claims a slot and
 * leaves the claim open</li>
 * <li>{@code hold N}: receives N messages and releases none</li>
 * <li>{@code idle}: nothing</li>
 * <li>{@code stall}: after a line on stdin, tries one send and one receive and prints
 * {@code SEND result} and {@code RECEIVE result} (a status name or an exception's simple class name)</li>
 * </ul>
 */
public final class LivenessGuest {
    private LivenessGuest() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String name = args[1];
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 0;
        try (Guest guest = Guest.connect(name, Transport.SHM, Duration.ofSeconds(10))) {
            Channel ch = guest.channel();
            System.out.println("EPOCH " + ch.epoch() + " INDEX " + ch.index());
            switch (mode) {
                case "publish":
                    for (int i = 1; i <= n; i++) {
                        long id = ch.send(Channel.TYPE_DATA, TestSupport.pattern(2048, i), 0, 2048, -1);
                        if (id != i) {
                            throw new AssertionError("send " + i + " gave " + Status.toString(id));
                        }
                    }
                    if (ch.claim(8192, TestSupport.seconds(5)) == null) {
                        throw new AssertionError("claim: " + Status.toString(ch.lastClaimStatus()));
                    }
                    break;
                case "hold":
                    for (int i = 0; i < n; i++) {
                        int rc = ch.receive(new Message(), TestSupport.seconds(30));
                        if (rc != Status.OK) {
                            throw new AssertionError("receive " + i + ": " + Status.toString(rc));
                        }
                    }
                    break;
                case "idle":
                case "stall":
                    break;
                default:
                    throw new IllegalArgumentException(mode);
            }
            System.out.println("READY");
            System.out.flush();
            if (mode.equals("stall")) {
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII)).readLine();
                System.out.println("SEND " + outcome(() -> Status.name(ch.send(Channel.TYPE_DATA, new byte[8], 0, 8,
                        TestSupport.seconds(1)))));
                System.out.println("RECEIVE " + outcome(() -> {
                    Message m = new Message();
                    int rc = ch.receive(m, TestSupport.seconds(1));
                    return Status.name(rc);
                }));
                System.out.flush();
                return;
            }
            Thread.sleep(Long.MAX_VALUE);
        }
    }

    private interface Call {
        String run();
    }

    private static String outcome(Call c) {
        try {
            return c.run();
        } catch (RuntimeException e) {
            return e.getClass().getSimpleName() + " " + (e instanceof ShmxException ? ((ShmxException) e).codeName()
                    : e.getMessage());
        }
    }
}
