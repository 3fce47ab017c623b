package io.shmx;

import io.shmx.internal.Errors;
import io.shmx.internal.Native;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A child process a {@link Host} started as its guest ({@link Host#spawn}):
 * the host's {@link Channel} to it, its pid, and its exit, much like a
 * {@link Process}. The child attached with {@link Guest#attachTicket()} (Java)
 * or {@code shmx_guest_attach_ticket} (C), by the spawn ticket in its
 * environment; it inherited descriptors 0, 1 and 2 and its end of the host's
 * socket, nothing else.
 *
 * <pre>{@code
 * try (SpawnedGuest worker = host.spawn(List.of("/usr/local/bin/worker", "--ticket"))) {
 *     Channel ch = worker.channel();           // serve it like an accepted channel
 *     ...
 *     if (!worker.waitFor(10, TimeUnit.SECONDS)) {
 *         worker.destroyForcibly();
 *     }
 *     System.err.println("worker " + worker.pid() + " exited with " + worker.waitFor());
 * }
 * }</pre>
 *
 * <p>The child is reaped by this object's waits ({@link #waitFor()},
 * {@link #isAlive()}); until then an exited child is a zombie. {@link #close()}
 * neither kills nor waits. Threads: any method may be called from any thread;
 * waits are served one at a time.
 */
public final class SpawnedGuest implements AutoCloseable {
    private static final int SIGKILL = 9;
    private static final int SIGTERM = 15;
    private static final int ESRCH = 3;
    /** How long one native wait lasts before an interrupt or a close is looked at. */
    private static final long SLICE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final Host host;
    private final Channel channel;
    private final long pid;
    private final long handle;
    private final ReentrantLock waitLock = new ReentrantLock(); // one native wait at a time
    private int users; // guarded by this: native calls in progress on handle
    private boolean closed; // guarded by this
    private volatile int status = -1; // the wait status once reaped

    private SpawnedGuest(Host host, Channel channel, long handle) {
        this.host = host;
        this.channel = channel;
        this.handle = handle;
        this.pid = Native.childPid(handle);
    }

    /** Host.spawn's work: the native spawn, the channel registered with the host. */
    static SpawnedGuest start(Host host, long hostHandle, List<String> command, Map<String, String> environment,
                              Path directory) {
        String[] argv = command.toArray(new String[0]);
        if (argv.length == 0) {
            throw new IllegalArgumentException("the command is empty");
        }
        String[] envp = null;
        if (environment != null) {
            envp = environment.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toArray(String[]::new);
        }
        long[] channelOut = new long[1];
        long child = Native.hostSpawn(hostHandle, argv, envp, directory != null ? directory.toString() : null,
                channelOut);
        Channel c;
        try {
            c = new Channel(channelOut[0], host, null);
        } catch (RuntimeException | Error e) {
            // Nobody would own them: end the child and give the entry back.
            Native.channelFree(channelOut[0]);
            Native.childKill(child, SIGKILL);
            Native.childWait(child, -1);
            Native.childFree(child);
            throw e;
        }
        host.adopt(c);
        return new SpawnedGuest(host, c, child);
    }

    /** @return the child's process id */
    public long pid() {
        return pid;
    }

    /** @return the host's side of the child's channel (owned by the host, like an accepted one) */
    public Channel channel() {
        return channel;
    }

    /** @return the host that spawned the child */
    public Host host() {
        return host;
    }

    /**
     * Whether the child still runs; reaps it if it has exited.
     *
     * @return true while the child runs
     * @throws IllegalStateException if closed before the child was seen to exit
     */
    public boolean isAlive() {
        try {
            return await(0) < 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true; // not looked at: say what we knew
        }
    }

    /**
     * Waits until the child exits and reaps it.
     *
     * @return its exit value as {@link #exitValue()} reports it
     * @throws InterruptedException  if interrupted while waiting
     * @throws IllegalStateException if closed while waiting
     */
    public int waitFor() throws InterruptedException {
        await(-1);
        return exitValue();
    }

    /**
     * Waits up to {@code timeout} for the child to exit, and reaps it.
     *
     * @param timeout how long; 0 only looks
     * @param unit    its unit
     * @return true if the child has exited
     * @throws InterruptedException  if interrupted while waiting
     * @throws IllegalStateException if closed before the child was seen to exit
     */
    public boolean waitFor(long timeout, TimeUnit unit) throws InterruptedException {
        return await(Math.max(0, unit.toNanos(timeout))) >= 0;
    }

    /**
     * The exit value, as {@link Process#exitValue()} gives it: the exit code,
     * or 128 + the signal number for a child a signal ended.
     *
     * @return the exit value
     * @throws IllegalThreadStateException if the child has not been seen to exit (wait first)
     */
    public int exitValue() {
        int s = waitStatus();
        return (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
    }

    /**
     * @return the raw wait status as waitpid(2) reports it
     * @throws IllegalThreadStateException if the child has not been seen to exit (wait first)
     */
    public int waitStatus() {
        int s = status;
        if (s < 0) {
            throw new IllegalThreadStateException("process " + pid + " has not exited (or was not waited for)");
        }
        return s;
    }

    /** @return the exit code if the child has exited by itself, else empty (running, or ended by a signal) */
    public OptionalInt exitCode() {
        int s = status;
        return s >= 0 && (s & 0x7f) == 0 ? OptionalInt.of((s >> 8) & 0xff) : OptionalInt.empty();
    }

    /** @return the signal that ended the child, else empty (running, or exited by itself) */
    public OptionalInt terminatingSignal() {
        int s = status;
        return s >= 0 && (s & 0x7f) != 0 ? OptionalInt.of(s & 0x7f) : OptionalInt.empty();
    }

    /**
     * Sends {@code signal} to the child through its pidfd (never to another
     * process that reused its pid).
     *
     * @param signal the signal number, e.g. 15 for SIGTERM
     * @return true if sent, false if the child has already exited
     * @throws IllegalStateException if closed
     * @throws ShmxException         if the signal could not be sent (bad number, permission)
     */
    public boolean kill(int signal) {
        if (status >= 0) {
            return false;
        }
        acquire();
        try {
            int rc = Native.childKill(handle, signal);
            if (rc == 0) {
                return true;
            }
            if (rc == -ESRCH || status >= 0) {
                return false;
            }
            throw Errors.exception(rc, "shmx_child_kill(pid " + pid + ", " + signal + ")", null);
        } finally {
            release();
        }
    }

    /** Asks the child to end (SIGTERM). A no-op once it has exited. */
    public void destroy() {
        kill(SIGTERM);
    }

    /** Ends the child at once (SIGKILL); its exit reaches the host's peer listener as well. */
    public void destroyForcibly() {
        kill(SIGKILL);
    }

    /**
     * Closes the host's channel to the child and releases the child's handle.
     * Neither kills nor waits: a child still running goes on (and meets a
     * closed channel). The exit status stays readable if it was waited for.
     * Idempotent.
     */
    @Override
    public void close() {
        channel.close();
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (users == 0) {
                Native.childFree(handle);
            }
        }
    }

    @Override
    public String toString() {
        int s = status;
        return "SpawnedGuest{pid " + pid + (s >= 0 ? ", exited " + exitValue() : "") + "}";
    }

    /* The wait status once the child has exited within timeoutNanos (< 0: no limit), else -1. */
    private int await(long timeoutNanos) throws InterruptedException {
        if (status >= 0) {
            return status;
        }
        long deadline = System.nanoTime() + timeoutNanos;
        if (timeoutNanos < 0) {
            waitLock.lockInterruptibly();
        } else if (!waitLock.tryLock(timeoutNanos, TimeUnit.NANOSECONDS)) {
            return status;
        }
        try {
            acquire();
            try {
                for (;;) {
                    if (status >= 0) {
                        return status;
                    }
                    long left = timeoutNanos < 0 ? SLICE_NANOS : Math.min(SLICE_NANOS, deadline - System.nanoTime());
                    long rc = Native.childWait(handle, Math.max(0, left));
                    if (rc >= 0) {
                        status = (int) rc;
                        return status;
                    }
                    if (rc != -Errors.ETIMEDOUT) {
                        throw Errors.exception((int) rc, "shmx_child_wait(pid " + pid + ")", null);
                    }
                    if (Thread.interrupted()) {
                        throw new InterruptedException();
                    }
                    if (timeoutNanos >= 0 && deadline - System.nanoTime() <= 0) {
                        return -1;
                    }
                    synchronized (this) {
                        if (closed) {
                            throw new IllegalStateException("spawned guest " + pid + " was closed while waiting");
                        }
                    }
                }
            } finally {
                release();
            }
        } finally {
            waitLock.unlock();
        }
    }

    private synchronized void acquire() {
        if (closed) {
            throw new IllegalStateException("spawned guest " + pid + " is closed");
        }
        users++;
    }

    private synchronized void release() {
        if (--users == 0 && closed) {
            Native.childFree(handle);
        }
    }
}
