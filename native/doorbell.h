/*
 * Doorbells: one Unix socketpair per ring direction, rung (one byte) by the
 * producer only when the consumer armed it (shmx_ring_ctl_t.armed), so a busy
 * pair never makes a system call for it. The consumer waits on its end
 * together with a private eventfd (shmx_channel_wake_local) and the bootstrap
 * socket's hang-up in one epoll set per channel, which is what
 * shmx_channel_fd() hands to users' event loops.
 *
 * Socketpairs, not eventfds: each end is its own open file description, so
 * a guest can not switch the host's end to blocking mode (O_NONBLOCK lives
 * in the description), and every send and receive passes MSG_DONTWAIT (and
 * MSG_NOSIGNAL) anyway: a hostile guest never makes the host block or take
 * SIGPIPE. The host creates both pairs for each admitted shm guest (never
 * shared between guests), keeps its ends and passes the guest's right after
 * the welcome (bootstrap.h, "bells").
 *
 * Private to the library.
 */
#ifndef SHMX_DOORBELL_H
#define SHMX_DOORBELL_H

#include <stdint.h>

#include "shmx/channel.h"

/*
 * shmx_doorbell_create - a channel's two bells (AF_UNIX stream socketpairs,
 * close-on-exec, non-blocking), indexed by ring (SHMX_RING_HOST_TO_GUEST,
 * SHMX_RING_GUEST_TO_HOST): @host gets the host's ends (it sends on the
 * first, waits on the second), @guest the guest's (it waits on the first,
 * sends on the second). Returns 0 or -errno (nothing left open).
 */
int shmx_doorbell_create(int host[2], int guest[2]);

/*
 * shmx_doorbell_check - accept a received descriptor as a bell: it must be
 * a Unix stream socket; it is made non-blocking (for the epoll set; every
 * call passes MSG_DONTWAIT anyway). Returns 0, -SHMX_EPROTO (not one) or -errno.
 */
int shmx_doorbell_check(int fd);

/* shmx_doorbell_ring - send one byte on @fd, never waiting (a full buffer already reads as rung; a gone peer is ignored). */
void shmx_doorbell_ring(int fd);

/* shmx_doorbell_drain - take what is queued on @fd without waiting (bounded: a flooding peer can not hold us). */
void shmx_doorbell_drain(int fd);

/*
 * shmx_doorbell_epoll - a new epoll set (EPOLL_CLOEXEC) holding @bell and
 * @wake (EPOLLIN) and, if @sock >= 0, @sock for its hang-up only (EPOLLRDHUP:
 * the socket's bytes are someone else's to read). Returns the fd or -errno.
 */
int shmx_doorbell_epoll(int bell, int wake, int sock);

/*
 * The channel's side of the bells (channel_events.c), for host.c and guest.c.
 * Each returns 0 or a negative code; on failure the channel is left without
 * bells (its arm() then returns -SHMX_ESTATE) and nothing stays open.
 */

/* Host, after the welcome: create both bells, attach its ends, send the guest's on ch->sock. -SHMX_ESTATE if attached already. */
int shmx_channel_bells_send(shmx_channel_t *ch);

/*
 * Guest, right after its welcome: receive the host's bells (by @deadline_ns)
 * and attach them. -SHMX_EPROTO (malformed, not stream sockets), -SHMX_EHOSTGONE,
 * -ETIMEDOUT, -SHMX_ESTATE (attached already).
 */
int shmx_channel_bells_recv(shmx_channel_t *ch, int64_t deadline_ns);

/*
 * Host: create both bells and attach its ends; the guest's ends go to
 * @guest (the caller's to pass on and close). -SHMX_ESTATE if attached already.
 */
int shmx_channel_bells_create(shmx_channel_t *ch, int guest[2]);

/*
 * Guest: attach its ends of the bells. @h2g is the host-to-guest ring's
 * (waited on), @g2h the other (sent on); owned by the channel from this
 * call, whatever it returns (closed on failure).
 */
int shmx_channel_bells_adopt(shmx_channel_t *ch, int h2g, int g2h);

/* Close the channel's bells, wake eventfd and epoll set (shmx_channel_destroy). */
void shmx_channel_events_destroy(shmx_channel_t *ch);

#endif
