package io.shmx.internal;

import java.nio.ByteBuffer;

/**
 * The native methods of libshmx, registered by {@code JNI_OnLoad} in
 * {@code native/jni/shmx_jni.c} with {@code RegisterNatives}. Internal: use the
 * {@code io.shmx} API instead. Call {@link NativeLoader#ensureLoaded()} before
 * any method here.
 *
 * <p>Conventions: handles and addresses are {@code long}s (always &gt; 0 when
 * valid); codes are negative ({@code -errno} or {@code -SHMX_E...}, see
 * {@code include/shmx/errors.h}). The channel methods are the hot path: they
 * never throw and return the C library's codes unchanged; the host, guest and
 * socket-path methods are cold and throw the typed exceptions built by
 * {@link Errors#newException(int, String, String)}.
 */
public final class Native {
    private Native() {
    }

    // ---- without an object -------------------------------------------------

    /**
     * The version of the C headers the library was built with.
     *
     * @return (major &lt;&lt; 16) | (minor &lt;&lt; 8) | patch of the C headers the library was built with
     */
    public static native int nativeVersion();

    /**
     * shmx_strerror.
     *
     * @param code a code (negative)
     * @return shmx_strerror(code)
     */
    public static native String strerror(int code);

    /**
     * shmx_crc32_implementation.
     *
     * @return "pclmul" or "table"
     */
    public static native String crc32Implementation();

    /**
     * shmx_crc32 over {@code array[off, off + len)}; bounds checked by the caller.
     *
     * @param crc CRC so far (0 to start)
     * @param array Java array
     * @param off first array index
     * @param len length in bytes
     * @return the result of the C function
     */
    public static native int crc32Array(int crc, byte[] array, int off, int len);

    /**
     * shmx_crc32 over native memory.
     *
     * @param crc CRC so far (0 to start)
     * @param address native address
     * @param len length in bytes
     * @return the result of the C function
     */
    public static native int crc32Address(int crc, long address, long len);

    /**
     * The base address of a direct buffer (GetDirectBufferAddress); cold path.
     *
     * @param buffer a direct buffer
     * @return the base address of a direct buffer, or 0 if it is not direct (cold path)
     */
    public static native long bufferAddress(ByteBuffer buffer);

    /**
     * Wraps native memory as a direct ByteBuffer (NewDirectByteBuffer); cold fallback.
     *
     * @param address native address
     * @param len length in bytes
     * @return a direct ByteBuffer over {@code len} bytes at {@code address} (cold fallback)
     */
    public static native ByteBuffer wrapAddress(long address, int len);

    /**
     * Fills {@code config} (ConfigLayout) with shmx_config_default().
     *
     * @param config ConfigLayout array
     */
    public static native void configDefault(int[] config);

    /**
     * shmx_config_validate.
     *
     * @param config ConfigLayout array
     * @return shmx_config_validate: 0 or -SHMX_ECONFIG
     */
    public static native int configValidate(int[] config);

    /**
     * shmx_config_problem.
     *
     * @param config ConfigLayout array
     * @return shmx_config_problem: "" when valid
     */
    public static native String configProblem(int[] config);

    /**
     * shmx_config_segment_bytes.
     *
     * @param config ConfigLayout array
     * @return shmx_config_segment_bytes, 0 when invalid
     */
    public static native long configSegmentBytes(int[] config);

    /**
     * shmx_socket_path; throws on a bad name.
     *
     * @param name host name
     * @return the socket path of host {@code name}; throws on a bad name
     */
    public static native String socketPath(String name);

    // ---- hosts and guests (cold, throwing) -----------------------------------

    /**
     * shmx_host_create; throws the typed exception on failure.
     *
     * @param name host name
     * @param config ConfigLayout array
     * @return a shmx_host_t handle; throws the typed exception on failure
     */
    public static native long hostCreate(String name, int[] config);

    /**
     * shmx_host_accept; throws the typed exception on failures other than a timeout.
     *
     * @param host host handle
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return a channel handle, 0 on timeout; throws on other failures
     */
    public static native long hostAccept(long host, long timeoutNanos);

    /**
     * shmx_host_socket_path.
     *
     * @param host host handle
     * @return shmx_host_socket_path
     */
    public static native String hostSocketPath(long host);

    /**
     * shmx_host_mapped_bytes.
     *
     * @param host host handle
     * @return shmx_host_mapped_bytes
     */
    public static native long hostMappedBytes(long host);

    /**
     * Copies shmx_host_config into {@code config}.
     *
     * @param host host handle
     * @param config ConfigLayout array
     */
    public static native void hostConfig(long host, int[] config);

    /**
     * shmx_host_destroy.
     *
     * @param host host handle
     */
    public static native void hostDestroy(long host);

    /**
     * shmx_guest_connect; throws the typed exception on failure.
     *
     * @param name host name
     * @param transport SHMX_TRANSPORT_SHM or SHMX_TRANSPORT_UDS
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return a shmx_guest_t handle; throws the typed exception on failure
     */
    public static native long guestConnect(String name, int transport, long timeoutNanos);

    /**
     * shmx_guest_channel.
     *
     * @param guest guest handle
     * @return the guest's channel handle
     */
    public static native long guestChannel(long guest);

    /**
     * shmx_guest_mapped_bytes.
     *
     * @param guest guest handle
     * @return shmx_guest_mapped_bytes
     */
    public static native long guestMappedBytes(long guest);

    /**
     * shmx_guest_close.
     *
     * @param guest guest handle
     */
    public static native void guestClose(long guest);

    // ---- channels (hot, never throwing) ---------------------------------------

    /**
     * shmx_channel_send from native memory.
     *
     * @param ch           channel handle
     * @param type         frame type
     * @param flags        frame flags
     * @param id           message id, 0 for the next sequence number
     * @param address      payload address
     * @param len          payload length
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the id (&gt; 0) or -code
     */
    public static native long channelSend(long ch, int type, int flags, long id, long address, int len,
                                          long timeoutNanos);

    /**
     * Claim, GetByteArrayRegion into the claim, commit.
     *
     * @param ch           channel handle
     * @param type         frame type
     * @param flags        frame flags
     * @param id           message id, 0 for the next sequence number
     * @param array        payload array
     * @param off          first payload byte
     * @param len          payload length
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the id (&gt; 0) or -code
     */
    public static native long channelSendArray(long ch, int type, int flags, long id, byte[] array, int off,
                                               int len, long timeoutNanos);

    /**
     * shmx_channel_claim: payload address &gt; 0 (1 for an empty claim without address) or -code.
     *
     * @param ch channel handle
     * @param len length in bytes
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the result of the C function
     */
    public static native long channelClaim(long ch, int len, long timeoutNanos);

    /**
     * shmx_channel_commit: id &gt; 0 or -code.
     *
     * @param ch channel handle
     * @param type frame type
     * @param flags frame flags
     * @param id message id, 0 for the next sequence number
     * @return the result of the C function
     */
    public static native long channelCommit(long ch, int type, int flags, long id);

    /**
     * shmx_channel_abort: 0 or -code.
     *
     * @param ch channel handle
     * @return the result of the C function
     */
    public static native int channelAbort(long ch);

    /**
     * shmx_channel_commit_len: commit the first {@code len} bytes of the open claim.
     *
     * @param ch    channel handle
     * @param len   bytes to send (at most the claimed length)
     * @param type  frame type
     * @param flags frame flags
     * @param id    0 or an explicit id
     * @return the message id or -code
     */
    public static native long channelCommitLen(long ch, int len, int type, int flags, long id);

    /**
     * shmx_channel_receive into the shmx_message_t at {@code messageAddress}: 0 or -code.
     *
     * @param ch channel handle
     * @param messageAddress address of a shmx_message_t
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the result of the C function
     */
    public static native int channelReceive(long ch, long messageAddress, long timeoutNanos);

    /**
     * shmx_channel_receive_batch into {@code max} structs at {@code messagesAddress}: count or -code.
     *
     * @param ch channel handle
     * @param messagesAddress address of the first of max shmx_message_t
     * @param max number of structs
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the result of the C function
     */
    public static native int channelReceiveBatch(long ch, long messagesAddress, int max, long timeoutNanos);

    /**
     * shmx_channel_release of the struct at {@code messageAddress}: 0 or -code.
     *
     * @param ch channel handle
     * @param messageAddress address of a shmx_message_t
     * @return the result of the C function
     */
    public static native int channelRelease(long ch, long messageAddress);

    /**
     * shmx_channel_receive_copy into native memory.
     *
     * @param ch           channel handle
     * @param dstAddress   destination address
     * @param capacity     room at the destination
     * @param metaAddress  address of a shmx_message_t for the header fields
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the payload length or -code
     */
    public static native long channelReceiveCopy(long ch, long dstAddress, long capacity, long metaAddress,
                                                 long timeoutNanos);

    /**
     * shmx_channel_receive_copy into {@code array[off, off + capacity)}; waits unpinned.
     *
     * @param ch           channel handle
     * @param array        destination array
     * @param off          first destination index
     * @param capacity     room at the destination
     * @param metaAddress  address of a shmx_message_t for the header fields
     * @param timeoutNanos timeout: 0 once, negative without limit
     * @return the payload length or -code
     */
    public static native long channelReceiveCopyArray(long ch, byte[] array, int off, int capacity,
                                                      long metaAddress, long timeoutNanos);

    /**
     * shmx_channel_close: 0.
     *
     * @param ch channel handle
     * @return the result of the C function
     */
    public static native int channelClose(long ch);

    /**
     * shmx_channel_free.
     *
     * @param ch channel handle
     */
    public static native void channelFree(long ch);

    /**
     * shmx_channel_transport.
     *
     * @param ch channel handle
     * @return SHMX_TRANSPORT_SHM (1) or SHMX_TRANSPORT_UDS (2)
     */
    public static native int channelTransport(long ch);

    /**
     * shmx_channel_max_payload.
     *
     * @param ch channel handle
     * @return shmx_channel_max_payload as an unsigned int
     */
    public static native int channelMaxPayload(long ch);

    /**
     * shmx_channel_index.
     *
     * @param ch channel handle
     * @return shmx_channel_index
     */
    public static native int channelIndex(long ch);

    /**
     * shmx_channel_peer_alive.
     *
     * @param ch channel handle
     * @return 1 alive, 0 gone, or -code
     */
    public static native int channelPeerAlive(long ch);

    /**
     * shmx_channel_set_idle (unsigned iterations).
     *
     * @param ch channel handle
     * @param spinIterations busy polls (unsigned)
     * @param yieldIterations yield polls (unsigned)
     */
    public static native void channelSetIdle(long ch, int spinIterations, int yieldIterations);

    /**
     * shmx_channel_region, wrapped once as a direct ByteBuffer; cold path.
     *
     * @param ch channel handle
     * @param i region number
     * @return region {@code i} as a direct ByteBuffer, or null past the last (cold path)
     */
    public static native ByteBuffer channelRegion(long ch, int i);
    // ---- messages of any size and streams (native/jni/shmx_jni_stream.c) ----

    /**
     * shmx_channel_send of an array above the channel's max payload, as fragments.
     *
     * @param ch           channel handle
     * @param type         frame type
     * @param id           0 or an explicit id
     * @param array        payload
     * @param off          first byte
     * @param len          bytes, at most the channel's max message
     * @param timeoutNanos wait for the first fragment
     * @return the message id or -code
     */
    public static native long channelSendMessageArray(long ch, int type, long id, byte[] array, int off, int len,
            long timeoutNanos);

    /**
     * @param ch channel handle
     * @return shmx_channel_max_message
     */
    public static native int channelMaxMessage(long ch);

    /**
     * shmx_channel_receive_message into a new array.
     *
     * @param ch           channel handle
     * @param meta         out: [0] 0 or -code, [1] type, [2] id
     * @param timeoutNanos wait for the first fragment
     * @return the message, or null (then meta[0] holds the code)
     */
    public static native byte[] channelReceiveMessage(long ch, long[] meta, long timeoutNanos);

    /**
     * shmx_writer_begin on a malloc'd writer.
     *
     * @param ch   channel handle
     * @param type frame type
     * @param id   0 or an explicit id
     * @return the writer handle (&gt; 0) or -code
     */
    public static native long writerOpen(long ch, int type, long id);

    /**
     * shmx_writer_write from an array.
     *
     * @param w            writer handle
     * @param array        bytes
     * @param off          first byte
     * @param len          number of bytes
     * @param timeoutNanos wait for a fragment (before the first send)
     * @return len or -code
     */
    public static native long writerWriteArray(long w, byte[] array, int off, int len, long timeoutNanos);

    /**
     * shmx_writer_write from native memory.
     *
     * @param w            writer handle
     * @param address      bytes
     * @param len          number of bytes
     * @param timeoutNanos wait for a fragment (before the first send)
     * @return len or -code
     */
    public static native long writerWrite(long w, long address, int len, long timeoutNanos);

    /**
     * shmx_writer_finish.
     *
     * @param w            writer handle
     * @param timeoutNanos wait for the last fragment (if nothing was sent yet)
     * @return the message id or -code
     */
    public static native long writerFinish(long w, long timeoutNanos);

    /**
     * shmx_writer_abort.
     *
     * @param w writer handle
     * @return 0 or -code
     */
    public static native int writerAbort(long w);

    /**
     * Frees a writer or reader handle (after finish/abort or end).
     *
     * @param handle writer or reader handle
     */
    public static native void streamFree(long handle);

    /**
     * shmx_reader_begin on a malloc'd reader.
     *
     * @param ch           channel handle
     * @param timeoutNanos wait for a message
     * @return the reader handle (&gt; 0) or -code
     */
    public static native long readerOpen(long ch, long timeoutNanos);

    /**
     * @param r reader handle
     * @return the message type
     */
    public static native int readerType(long r);

    /**
     * @param r reader handle
     * @return the message id
     */
    public static native long readerId(long r);

    /**
     * shmx_reader_next and consume into an array.
     *
     * @param r            reader handle
     * @param array        destination
     * @param off          first byte
     * @param len          room
     * @param timeoutNanos wait for the next fragment
     * @return bytes copied, 0 at the end of the message, or -code
     */
    public static native long readerReadArray(long r, byte[] array, int off, int len, long timeoutNanos);

    /**
     * shmx_reader_read into native memory.
     *
     * @param r            reader handle
     * @param address      destination
     * @param len          room
     * @param timeoutNanos wait for the next fragment
     * @return bytes copied, 0 at the end of the message, or -code
     */
    public static native long readerRead(long r, long address, int len, long timeoutNanos);

    /**
     * shmx_reader_end: release and skip the rest of the message.
     *
     * @param r            reader handle
     * @param timeoutNanos wait for each remaining fragment
     * @return 0 or -code
     */
    public static native int readerEnd(long r, long timeoutNanos);

    // ---- named resources (cold, throwing) -------------------------------------

    /**
     * shmx_names_list_in: every host and leftover of this user, as
     * {@code io.shmx.HostNames} reads it (a fixed number of strings per entry).
     *
     * @param socketDir the socket directory, or null for the default
     * @param shmDir    the segment directory, or null for /dev/shm
     * @return the entries' fields, flat; throws the typed exception on failure
     */
    public static native String[] namesList(String socketDir, String shmDir);

    /**
     * shmx_names_clean_in: removes the stale entries and tells which.
     *
     * @param socketDir the socket directory, or null for the default
     * @param shmDir    the segment directory, or null for /dev/shm
     * @return the removed entries' fields, flat; throws the typed exception on failure
     */
    public static native String[] namesClean(String socketDir, String shmDir);

    // ---- liveness, transports, diagnostics (native/jni/shmx_jni_liveness.c) ----

    /**
     * shmx_channel_epoch.
     *
     * @param ch channel handle
     * @return the epoch (unsigned 32-bit), 0 for uds
     */
    public static native int channelEpoch(long ch);

    /**
     * shmx_host_transports.
     *
     * @param host host handle
     * @return the bits of SHMX_TRANSPORT_SHM (1) and SHMX_TRANSPORT_UDS (2) the host can give now
     */
    public static native int hostTransports(long host);

    /**
     * shmx_host_set_peer_listener with a trampoline that calls
     * {@code target.peerEvent(int, int, int, int, int, int, long)} (target is an io.shmx.Host) on the
     * service thread, attached to the JVM as a daemon. Throws on failure.
     *
     * @param host   host handle
     * @param target the Host (held by a global reference until {@link #hostListenFree})
     * @return the trampoline's state, to free after the host is destroyed
     */
    public static native long hostListen(long host, Object target);

    /**
     * Frees what {@link #hostListen} made. Only after shmx_host_destroy (no callback can run).
     *
     * @param hook the state returned by hostListen
     */
    public static native void hostListenFree(long hook);

    /**
     * shmx_pool_stats of the host's pool (diagnostic).
     *
     * @param host host handle
     * @param out  at least 1 + 4 * 8 ints: [0] the class count, then per class free, claimed, sent, total
     * @return the class count
     */
    public static native int hostPoolStats(long host, int[] out);

    // ---- event-loop integration (native/jni/shmx_jni_events.c) -------------------

    /**
     * shmx_channel_fd.
     *
     * @param ch channel handle
     * @return the channel's pollable descriptor (&ge; 0) or -code
     */
    public static native int channelEventFd(long ch);

    /**
     * shmx_channel_arm.
     *
     * @param ch channel handle
     * @return 1 (receive now), 0 (may sleep on the fd) or -code
     */
    public static native int channelArm(long ch);

    /**
     * Arm, then poll the channel's fd.
     *
     * @param ch           channel handle
     * @param timeoutNanos how long to sleep: 0 only looks, &lt; 0 without limit
     * @return 1 if something may be received, 0 on timeout, or -code
     */
    public static native int channelAwait(long ch, long timeoutNanos);

    /**
     * A new poller: an epoll set with its own wake-up eventfd.
     *
     * @return the poller handle (&gt; 0) or -errno
     */
    public static native long pollerCreate();

    /**
     * Watch {@code fd} for readability, reported as {@code token}.
     *
     * @param poller poller handle
     * @param fd     descriptor
     * @param token  what pollerWait reports for it, &ge; 0
     * @return 0 or -errno
     */
    public static native int pollerAdd(long poller, int fd, int token);

    /**
     * Stop watching {@code fd}.
     *
     * @param poller poller handle
     * @param fd     descriptor
     * @return 0 or -errno
     */
    public static native int pollerRemove(long poller, int fd);

    /**
     * epoll_wait: the tokens of ready descriptors go into {@code tokens}.
     *
     * @param poller       poller handle
     * @param tokens       receives up to its length (at most 64) tokens
     * @param timeoutNanos how long to wait (millisecond granularity), &lt; 0 without limit
     * @return the number of tokens written (0: timeout or wakeup) or -errno
     */
    public static native int pollerWait(long poller, int[] tokens, long timeoutNanos);

    /**
     * Make a pollerWait in progress (or the next one) return.
     *
     * @param poller poller handle
     */
    public static native void pollerWakeup(long poller);

    /**
     * Close the poller's descriptors and free it.
     *
     * @param poller poller handle
     */
    public static native void pollerClose(long poller);

    // ---- spawned guests (native/jni/shmx_jni_spawn.c) ---------------------------

    /**
     * shmx_host_spawn; throws the typed exception on failure (e.g. code -ENOENT for a missing program).
     *
     * @param host       host handle
     * @param argv       the command: argv[0] is the program (searched in PATH without a '/')
     * @param envp       "NAME=value" entries, or null for this process's environment
     * @param cwd        the working directory, or null for this process's
     * @param channelOut receives the host's channel handle in [0]
     * @return the shmx_child_t handle
     */
    public static native long hostSpawn(long host, String[] argv, String[] envp, String cwd, long[] channelOut);

    /**
     * shmx_child_pid.
     *
     * @param child child handle
     * @return the process id
     */
    public static native long childPid(long child);

    /**
     * shmx_child_wait: waits and reaps.
     *
     * @param child        child handle
     * @param timeoutNanos 0 only looks, negative waits without limit
     * @return the wait status (&gt;= 0, as waitpid reports it) or -code (-ETIMEDOUT while it runs)
     */
    public static native long childWait(long child, long timeoutNanos);

    /**
     * shmx_child_kill (pidfd_send_signal).
     *
     * @param child  child handle
     * @param signal the signal number
     * @return 0 or -code (-ESRCH: it has exited; -SHMX_EINVAL: reaped already)
     */
    public static native int childKill(long child, int signal);

    /**
     * shmx_child_free: closes the pidfd; neither kills nor waits.
     *
     * @param child child handle
     */
    public static native void childFree(long child);

    /**
     * shmx_guest_attach_ticket; throws the typed exception on failure.
     *
     * @param ticket       the ticket text, or null for SHMX_TICKET from the environment
     * @param timeoutNanos bound on the handshake
     * @return a shmx_guest_t handle
     */
    public static native long guestAttachTicket(String ticket, long timeoutNanos);
}
