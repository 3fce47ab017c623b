/*
 * The channel object behind the public shmx_channel_t, shared by channel.c
 * (the public API and the shm transport), channel_uds.c (the same frames over
 * a Unix stream socket), host.c and guest.c (which create channels).
 */
#ifndef SHMX_CHANNEL_INTERNAL_H
#define SHMX_CHANNEL_INTERNAL_H

#include <stdint.h>

#include "pool.h"
#include "ring.h"
#include "segment.h"
#include "shmx/channel.h"
#include "wait.h"

struct shmx_host;

struct shmx_channel {
    uint32_t transport;   /* SHMX_TRANSPORT_SHM or SHMX_TRANSPORT_UDS */
    int is_host;          /* nonzero on the host side */
    uint32_t index;       /* channel entry in the segment (shm); 0 for uds */
    uint32_t epoch;       /* the entry's epoch when this channel was opened */
    uint32_t self_owner;  /* slot owner id of this side: SHMX_OWNER_HOST or the guest's index */
    uint32_t peer_owner;  /* slot owner id of the other side */
    uint32_t max_payload; /* largest frame (fragment) payload */
    uint32_t max_message; /* largest message, fragments together */
    uint32_t inline_max;
    shmx_idle_t idle;
    uint64_t next_id;     /* next message id to send (starts at 1) */
    int sock;             /* bootstrap socket: liveness for shm, the frames for uds; -1 if none */
    int closed;           /* this side called shmx_channel_close */
    int peer_end;         /* shm: the code every later call fails with once the peer ended, else 0 (__atomic):
                           * a guest's once it noticed the host gone or itself expelled; the host's
                           * -SHMX_ECLOSED once it expelled or quarantined the guest */
    int32_t peer_pid;     /* host side: the guest's pid as the kernel named it (SO_PEERCRED, spawn); 0 unknown */

    /* shm transport */
    shmx_segment_t *seg;  /* not owned: the host's or guest's segment */
    shmx_pool_t *pool;    /* not owned */
    shmx_channel_ctl_t *ctl;
    shmx_ring_t tx;       /* ring this side produces into */
    shmx_ring_t rx;       /* ring this side consumes from */

    /* the open claim (claim ... commit/abort) */
    int claim_open;
    uint32_t claim_len;
    uint8_t *claim_body;     /* ring record body: frame header (24 bytes) then payload or slot ref */
    uint8_t *claim_payload;  /* where the caller writes */
    int claim_in_slot;
    shmx_slot_ref_t claim_slot;
    uint32_t claim_slot_bytes; /* size of the claim's slot (flow-control accounting) */

    /* uds transport: private buffers of 24 + max_payload bytes */
    uint8_t *uds_tx;
    uint8_t *uds_rx;
    size_t uds_buf_len;
    int uds_rx_held;      /* a received message still points into uds_rx */
    int64_t uds_send_deadline; /* the open claim's deadline: commit writes the frame by then */
    int uds_peer_gone;

    struct shmx_host *host; /* host side: the host that accepted it (NULL for guests) */

    /* doorbells (channel_events.c, doorbell.h); shm only */
    int has_bells;        /* bell[] attached (both open, owned by the channel) */
    int bell[2];          /* this side's bell ends by ring: [SHMX_RING_HOST_TO_GUEST], [SHMX_RING_GUEST_TO_HOST] */
    int wake_fd;          /* private eventfd in the epoll set: shmx_channel_wake_local (valid with has_bells) */
    int events_fd_plus1;  /* shmx_channel_fd's epoll set + 1 (0: not made yet; calloc'd channels start so) */
};

/*
 * shmx_channel_open_shm - a channel over entry @index of @seg for the guest
 * incarnation @epoch. The host calls it right after formatting the entry's
 * rings and making it ACTIVE: its views start at position 0 and @epoch is its
 * own record, nothing is read back from the shared entry (a guest may already
 * write there). A guest opens the entry its welcome named, once it checked
 * that the entry is ACTIVE with the welcome's epoch; its views start at the
 * published positions (validated). @sock is the bootstrap socket (owned by
 * the channel once this returns 0; on failure the caller keeps it; -1 for none).
 * Returns 0 and sets *@out, -ENOMEM, -SHMX_ECORRUPT (ring positions invalid).
 */
int shmx_channel_open_shm(shmx_segment_t *seg, shmx_pool_t *pool, uint32_t index, int is_host, uint32_t epoch,
                          int sock, shmx_channel_t **out);

/*
 * shmx_channel_open_uds - a channel whose frames travel over the connected
 * stream socket @sock (owned by the channel once this returns 0), with receive and
 * send buffers of 24 + @max_payload bytes.
 */
int shmx_channel_open_uds(int sock, int is_host, uint32_t max_payload, shmx_channel_t **out);

/*
 * shmx_channel_spin_budget - the polls the next receive wait of @ch spins
 * before it sleeps: the configured spin_iterations, cut by adaptive spinning
 * (channel.c) after waits that spun in vain. For tests and diagnostics.
 */
uint32_t shmx_channel_spin_budget(const shmx_channel_t *ch);

/* 1 if the bootstrap socket shows that the other side hung up (never without a socket). */
int shmx_sock_hung_up(int sock);

/* Close and free @ch without telling any host (used by host.c and guest.c). */
void shmx_channel_destroy(shmx_channel_t *ch);

/* channel_uds.c: the uds transport's halves of the public calls (channel.c dispatches). */
int shmx_uds_claim(shmx_channel_t *ch, uint32_t len, int64_t deadline_ns, void **data);
int64_t shmx_uds_commit(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id);
int shmx_uds_receive(shmx_channel_t *ch, shmx_message_t *msg, int64_t deadline_ns);
int shmx_uds_release(shmx_channel_t *ch, const shmx_message_t *msg);

/*
 * stream.c: send @len (> max_payload, <= max_message) bytes as fragments.
 * Returns the message id or a negative code (see shmx_channel_send).
 */
int64_t shmx_message_send(shmx_channel_t *ch, uint16_t type, uint64_t id, const void *payload, uint32_t len,
                          int64_t timeout_ns);

/*
 * host.c: called by shmx_channel_free for a host-side channel: reclaim every
 * slot the guest held, drain what it left in the guest-to-host ring, mark the
 * entry FREE for the next guest and forget the channel.
 */
void shmx_host_forget_channel(struct shmx_host *host, shmx_channel_t *ch);

#endif
