/*
 * shmx channels: a two-way message link between a host and one guest.
 *
 * Threading: a channel has one sending side and one receiving side; at most
 * one thread may send and at most one thread may receive on a channel at a
 * time (they may be different threads). Use one channel per sending thread.
 *
 * Timeouts are in nanoseconds: 0 tries once and returns at once, a negative
 * value waits without limit, a positive value waits at most that long.
 * Waiting spins, then yields, then sleeps on a shared futex; a busy pair makes
 * no system calls.
 *
 * Zero-copy shape: claim, write, commit (or abort) to send; receive, read,
 * release to receive. A received view stays valid until it is released; the
 * bytes of a zero-copy view are only as stable as the sending peer is honest
 * (the CRC is checked when the message is received, not again later).
 */
#ifndef SHMX_CHANNEL_H
#define SHMX_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

typedef struct shmx_channel shmx_channel_t;

/* A received message. The fields after `id` are private to the library. */
typedef struct shmx_message {
    const void *data; /* payload; valid until shmx_channel_release() */
    uint32_t length;  /* payload bytes */
    uint16_t type;    /* frame type */
    uint8_t flags;    /* frame flags (SHMX_FLAG_MORE) */
    uint8_t reserved_;
    uint64_t id;      /* frame message id */
    uint64_t end_;    /* private: ring position just past this message's record */
    uint32_t slot_class_;  /* private: slot holding the payload, or UINT32_MAX */
    uint32_t slot_index_;
    uint32_t slot_generation_;
    uint32_t reserved2_;
} shmx_message_t;

/*
 * shmx_channel_claim - reserve room for a @len-byte payload and return where
 * to write it. Small payloads (<= inline_max) are a region of the ring itself,
 * larger ones a pool slot.
 * @data: set to the payload area (@len writable bytes).
 * @timeout_ns: how long to wait for ring space, for the flow-control window
 * (slots this side sent that the receiver has not released) and for a free slot.
 * Returns 0, -SHMX_EWOULDBLOCK (no room within the timeout), -SHMX_ECLOSED,
 * -SHMX_ETOOBIG (len above the channel's maximum payload), -SHMX_ESTATE (a
 * claim is already open).
 */
int shmx_channel_claim(shmx_channel_t *ch, uint32_t len, int64_t timeout_ns, void **data);

/*
 * shmx_channel_commit - finish the open claim: write the frame header (with
 * its CRC over the payload now in place) and publish it to the receiver.
 * @type, @flags: frame fields; @id: 0 to use the channel's next sequence
 * number, or an explicit id (a response carries its request's id).
 * Returns the message id used (> 0), or -SHMX_ESTATE (no open claim),
 * -SHMX_EFLAGS, -SHMX_ECLOSED (the claim is dropped and its slot freed).
 * Over the uds transport the frame is written here, within the claim's
 * timeout: if the peer has taken no byte of it by then, -SHMX_EWOULDBLOCK
 * (nothing was sent). A frame already started goes on past the timeout while
 * the peer keeps reading; if the peer then takes nothing for a second, the
 * stream can not carry the rest, so the channel is shut down and
 * -SHMX_ECLOSED returned.
 */
int64_t shmx_channel_commit(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id);

/*
 * shmx_channel_commit_len - commit the open claim with only its first @len
 * bytes (<= the claimed length): claim the most a message may hold, fill
 * what arrives, send that. Returns as shmx_channel_commit, or -SHMX_EINVAL
 * (@len above the claim; the claim stays open).
 */
int64_t shmx_channel_commit_len(shmx_channel_t *ch, uint32_t len, uint16_t type, uint8_t flags, uint64_t id);

/*
 * shmx_channel_abort - drop the open claim; nothing is sent, its slot is freed.
 * Returns 0 or -SHMX_ESTATE (no open claim).
 */
int shmx_channel_abort(shmx_channel_t *ch);

/*
 * shmx_channel_send - copy @len bytes from @payload into a new message and
 * publish it (claim, copy, commit in one call). A payload above the channel's
 * max_payload, up to its max_message, is sent as fragments (see
 * shmx/stream.h): @flags must then be 0, and once the first fragment is out
 * the call waits for the receiver as long as the channel lives.
 * Returns the message id (> 0) or the codes of claim and commit
 * (-SHMX_ETOOBIG above max_message).
 */
int64_t shmx_channel_send(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id,
                          const void *payload, uint32_t len, int64_t timeout_ns);

/*
 * shmx_channel_receive - take the next message, zero-copy. @msg->data points
 * into shared memory (or the channel's receive buffer for the uds transport)
 * and stays valid until shmx_channel_release(@msg). Several messages may be
 * held at once; they must be released in the order they were received.
 * Returns 0, -SHMX_EEMPTY (nothing within the timeout), -SHMX_ECLOSED (closed
 * and drained), -SHMX_ECRC or another decode code (the message is consumed
 * and dropped), -SHMX_ECORRUPT (the peer broke the ring protocol),
 * -SHMX_EHOSTGONE (guest side: the host is gone).
 */
int shmx_channel_receive(shmx_channel_t *ch, shmx_message_t *msg, int64_t timeout_ns);

/*
 * shmx_channel_receive_batch - receive up to @max messages, waiting (within
 * @timeout_ns) only for the first one. Each must be released, in order.
 * Returns the number received (>= 1) or the codes of shmx_channel_receive.
 */
int shmx_channel_receive_batch(shmx_channel_t *ch, shmx_message_t *msgs, int max, int64_t timeout_ns);

/*
 * shmx_channel_release - give back a received message: its ring space and its
 * pool slot return at once. Returns 0 or -SHMX_EORDER (not the oldest held
 * message), -SHMX_EBADSLOT (its slot was reclaimed meanwhile).
 */
int shmx_channel_release(shmx_channel_t *ch, const shmx_message_t *msg);

/*
 * shmx_channel_receive_copy - receive the next message into @dst, verify the
 * CRC over the copy, and release it.
 * @meta: if not NULL, receives type, flags, id and length (data is set to @dst).
 * Returns the payload length, the codes of shmx_channel_receive, or
 * -SHMX_ESHORT if @cap is too small: then nothing is consumed and
 * @meta->length says how much room the message needs.
 */
int64_t shmx_channel_receive_copy(shmx_channel_t *ch, void *dst, size_t cap, shmx_message_t *meta,
                                  int64_t timeout_ns);

/*
 * shmx_channel_close - close both directions: every waiter on either side
 * wakes and later sends fail with -SHMX_ECLOSED; messages already published
 * can still be received. Idempotent. Returns 0.
 */
int shmx_channel_close(shmx_channel_t *ch);

/*
 * shmx_channel_free - close the channel (if open) and free the handle. On the
 * host this returns the channel entry for another guest and reclaims the
 * slots the guest held. A guest's channel is freed by shmx_guest_close().
 */
void shmx_channel_free(shmx_channel_t *ch);

/* shmx_channel_transport - SHMX_TRANSPORT_SHM or SHMX_TRANSPORT_UDS. */
int shmx_channel_transport(const shmx_channel_t *ch);

/* shmx_channel_max_payload - largest payload of one frame (a claim; a larger send fragments). */
uint32_t shmx_channel_max_payload(const shmx_channel_t *ch);

/*
 * shmx_channel_index - the channel's peer id: its entry number in the segment
 * for shm; for a host's uds channel max_channels + k (k < max_channels), so
 * shm and uds guests never share one; 0 on a guest's uds channel.
 */
uint32_t shmx_channel_index(const shmx_channel_t *ch);

/*
 * shmx_channel_epoch - the incarnation of the guest this channel serves: the
 * entry's epoch when it was given out (a new guest on the same entry gets a
 * larger one; a host's uds channels count per uds peer id the same way; 0 on
 * a guest's uds channel).
 */
uint32_t shmx_channel_epoch(const shmx_channel_t *ch);

/*
 * shmx_channel_peer_alive - 1 if the other side's bootstrap socket is still
 * open, 0 if it hung up (the peer closed or died), or a negative code.
 */
int shmx_channel_peer_alive(shmx_channel_t *ch);

/*
 * shmx_channel_set_idle - how a waiting call spends its time: @spin_iterations
 * busy polls, then @yield_iterations sched_yield() polls, then futex sleep.
 * UINT32_MAX spins forever (busy-spin strategy; the timeout still applies).
 */
void shmx_channel_set_idle(shmx_channel_t *ch, uint32_t spin_iterations, uint32_t yield_iterations);

/*
 * shmx_channel_region - the memory areas received views and claims may point
 * into, so that a binding can wrap each once (for example as one direct
 * ByteBuffer) instead of per message. @i counts from 0: the segment, then
 * each pool extent this process has mapped so far (the list grows when the
 * pool does; a view outside every listed area means: list them again).
 * Returns 0 and sets *@base and *@len, or -SHMX_EINVAL past the last area.
 */
int shmx_channel_region(const shmx_channel_t *ch, int i, void **base, size_t *len);

/*
 * Waiting in your own event loop.
 *
 * A channel exposes one file descriptor that becomes readable when it may
 * have something to receive or has changed state (closed, peer gone), so a
 * thread can wait for several channels and its own sockets at once. The
 * sender rings it only after the receiver armed it: a busy pair still makes
 * no system call. The loop, per channel:
 *
 *     for (;;) {
 *         while ((rc = shmx_channel_receive(ch, &m, 0)) == 0) { handle(&m); shmx_channel_release(ch, &m); }
 *         if (rc != -SHMX_EEMPTY) break;                // closed, host gone, or a bad frame
 *         if (shmx_channel_arm(ch) == 0)
 *             poll_or_epoll_wait(shmx_channel_fd(ch));  // sleep; wakes for data, close, hang-up
 *     }
 *
 * The descriptor is level-triggered: use it with poll, select or epoll in
 * level mode (not EPOLLET). It stays readable once the peer hung up; receive
 * then reports -SHMX_ECLOSED or -SHMX_EHOSTGONE (a shm receive with timeout 0
 * looks at the socket every few dozen calls, so a few may still say
 * -SHMX_EEMPTY first). One thread waits on a channel's fd at a time.
 *
 * A shm channel has its doorbells when its host and guest both support them
 * (layout version 3); one without (opened directly on a segment) answers
 * -SHMX_ESTATE from shmx_channel_fd and shmx_channel_arm: wait in
 * shmx_channel_receive with a timeout instead.
 */

/*
 * shmx_channel_fd - the channel's pollable descriptor. For shm, an epoll set
 * (made on the first call, owned and closed by the channel, close-on-exec)
 * holding this side's doorbell and the bootstrap socket's hang-up; for uds,
 * the socket itself. Do not read, write or close it; it stays the same for
 * the channel's life.
 * Returns the descriptor (>= 0), -SHMX_ESTATE (no doorbells, or no socket),
 * -SHMX_EINVAL (@ch NULL) or -errno (epoll_create1, epoll_ctl).
 */
int shmx_channel_fd(shmx_channel_t *ch);

/*
 * shmx_channel_arm - announce that the caller is about to sleep on
 * shmx_channel_fd(), then look once more. Call it after a receive returned
 * -SHMX_EEMPTY (for uds it sees only the socket, not frames already read
 * into the channel's buffer), from the receiving thread.
 * Returns 1 if something may be received or the channel closed or the peer
 * hung up (do not sleep: receive), 0 if the caller may sleep on the fd (the
 * next message, close or hang-up makes it readable), -SHMX_ESTATE (no
 * doorbells, see above), -SHMX_EINVAL or -errno.
 */
int shmx_channel_arm(shmx_channel_t *ch);

/*
 * shmx_channel_wake_local - make this side's shmx_channel_fd() readable now,
 * so that a thread sleeping on it looks at the channel again (for example
 * after another thread changed its state). A no-op for uds channels and
 * channels without doorbells.
 */
void shmx_channel_wake_local(shmx_channel_t *ch);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
