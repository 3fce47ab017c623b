/*
 * Doorbells: one eventfd per ring direction, rung by the producer only when
 * the consumer armed it (shmx_ring_ctl_t.armed), so a busy pair never makes
 * a system call for it. The consumer waits on its bell together with the
 * bootstrap socket's hang-up in one epoll set per channel, which is what
 * shmx_channel_fd() hands to users' event loops.
 *
 * The host creates both bells for each admitted shm guest (never shared
 * between guests: a guest that drains or floods its bells hurts only its own
 * channel) and passes them right after the welcome (bootstrap.h, "bells").
 *
 * Private to the library.
 */
#ifndef SHMX_DOORBELL_H
#define SHMX_DOORBELL_H

#include <stdint.h>

#include "shmx/channel.h"

/*
 * shmx_doorbell_create_pair - two eventfds (EFD_CLOEXEC | EFD_NONBLOCK, counter 0)
 * into @fds[0] and @fds[1]. Returns 0 or -errno (nothing left open).
 */
int shmx_doorbell_create_pair(int fds[2]);

/*
 * shmx_doorbell_check - accept a received descriptor as a bell: it must be
 * an eventfd; it is made non-blocking (a peer's blocking eventfd would make a
 * drain sleep). Returns 0, -SHMX_EPROTO (not an eventfd) or -errno.
 */
int shmx_doorbell_check(int fd);

/* shmx_doorbell_ring - add 1 to @fd's counter (a full counter already reads as rung). */
void shmx_doorbell_ring(int fd);

/* shmx_doorbell_drain - zero @fd's counter without waiting. */
void shmx_doorbell_drain(int fd);

/*
 * shmx_doorbell_epoll - a new epoll set (EPOLL_CLOEXEC) holding @bell
 * (EPOLLIN) and, if @sock >= 0, @sock for its hang-up only (EPOLLRDHUP: the
 * socket's bytes are someone else's to read). Returns the fd or -errno.
 */
int shmx_doorbell_epoll(int bell, int sock);

/*
 * The channel's side of the bells (channel_events.c), for host.c and guest.c.
 * Each returns 0 or a negative code; on failure the channel is left without
 * bells (its arm() then returns -SHMX_ESTATE) and nothing stays open.
 */

/* Host, after the welcome: create both bells, attach them, send them on ch->sock. -SHMX_ESTATE if attached already. */
int shmx_channel_bells_send(shmx_channel_t *ch);

/*
 * Guest, right after its welcome: receive the host's bells (by @deadline_ns)
 * and attach them. -SHMX_EPROTO (malformed, not eventfds), -SHMX_EHOSTGONE,
 * -ETIMEDOUT, -SHMX_ESTATE (attached already).
 */
int shmx_channel_bells_recv(shmx_channel_t *ch, int64_t deadline_ns);

/* Host of a spawned guest: create and attach both bells without sending them (the ticket carries them). */
int shmx_channel_bells_create(shmx_channel_t *ch);

/*
 * Spawned guest: attach inherited bells. @h2g is the host-to-guest ring's
 * bell, @g2h the other; owned by the channel from this call, whatever it
 * returns (closed on failure).
 */
int shmx_channel_bells_adopt(shmx_channel_t *ch, int h2g, int g2h);

/* Close the channel's bells and epoll set (shmx_channel_destroy). */
void shmx_channel_events_destroy(shmx_channel_t *ch);

#endif
