package io.shmx;

/**
 * Told when a guest of a {@link Host} ends; see {@link Host#onPeerEvent(PeerListener)}.
 *
 * <p>Runs on the host's service thread (named {@code shmx-host}, attached to
 * the JVM as a daemon thread). By the time it runs the host has already taken
 * back the guest's pool slots and closed its rings. It should return quickly:
 * while it runs the host notices no other guest's end and serves no pool
 * growth. It may call {@link Channel} methods (for example drain what the
 * guest committed), but must not {@link Channel#close()} a host channel nor
 * {@link Host#close()} the host: both would wait for the service thread
 * itself, so they throw {@link IllegalStateException} there. Hand such work to
 * another thread. Anything it throws is caught and logged (logger
 * {@code io.shmx.Host}); the host goes on.
 */
@FunctionalInterface
public interface PeerListener {
    /**
     * @param event which guest ended, why, and what was taken back
     */
    void onPeerEvent(PeerEvent event);
}
