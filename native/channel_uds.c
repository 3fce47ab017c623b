/*
 * The uds transport: the same 24-byte frames, sent over the connected Unix
 * stream socket instead of shared memory. It is the baseline the shm
 * transport is measured against and the fallback when shared memory is
 * unavailable, so it waits the same way (spin, then sleep in poll).
 *
 * Receiving reads as much as the socket has into a private buffer of
 * 24 + max_payload bytes; a frame is delivered as a view into that buffer
 * once it is complete and its CRC checks, and the bytes after it (the start
 * of later frames) stay there. One view may be held at a time: the next frame
 * may need the space. ch->uds_rx_held is 1 while a view is out; clearing it
 * without a release (receive_copy into a short buffer) puts the frame back,
 * since only a release consumes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "channel_internal.h"
#include "shmx/errors.h"
#include "shmx/frame.h"

#define HDR SHMX_FRAME_HEADER_SIZE
/* A blocked send looks at the local closed flag this often (our own shutdown does not wake POLLOUT). */
#define SEND_SLICE_MS 100
/* How long a half-sent frame waits, past its deadline, for a peer that takes no byte. */
#define STALL_NS 1000000000LL

/* The contract's struct first (same pointer; shmx_channel_destroy frees it), then the receive state. */
typedef struct uds_channel {
    struct shmx_channel ch;
    size_t rx_off;     /* the next frame starts here in uds_rx */
    size_t rx_have;    /* bytes received into uds_rx */
    uint64_t rx_pos;   /* stream bytes consumed so far (a held view's end_ is rx_pos + its frame) */
    size_t rx_frame;   /* bytes of the frame at rx_off once it is complete and valid */
    int rx_broken;     /* a frame header failed: the stream has lost its framing for good */
} uds_channel_t;

static inline uds_channel_t *uds_of(shmx_channel_t *ch) { return (uds_channel_t *)ch; }

/*
 * ch->closed and ch->uds_peer_gone are plain ints in the contract struct, yet
 * the sending and the receiving thread (and close) share them: __atomic
 * builtins. Acquire pairs with the release store in shmx_channel_close.
 */
static inline int closed_locally(shmx_channel_t *ch) { return __atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE) != 0; }

/* Relaxed: a one-way flag that guards no data; whoever misses it meets the dead socket itself. */
static inline int peer_gone(shmx_channel_t *ch) { return __atomic_load_n(&ch->uds_peer_gone, __ATOMIC_RELAXED); }
static inline void set_peer_gone(shmx_channel_t *ch) { __atomic_store_n(&ch->uds_peer_gone, 1, __ATOMIC_RELAXED); }

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What a receiver reports when the stream ended: the guest lost its host, unless it closed itself. */
static int gone_code(shmx_channel_t *ch) {
    return ch->is_host || closed_locally(ch) ? -SHMX_ECLOSED : -SHMX_EHOSTGONE;
}

int shmx_channel_open_uds(int sock, int is_host, uint32_t max_payload, shmx_channel_t **out) {
    if (sock < 0 || out == NULL || max_payload > SHMX_FRAME_MAX_PAYLOAD) return -SHMX_EINVAL;
    /* Non-blocking: every wait is ours (spin, then poll with the caller's deadline). */
    int fl = fcntl(sock, F_GETFL);
    if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
    int fd_fl = fcntl(sock, F_GETFD);
    if (fd_fl < 0 || fcntl(sock, F_SETFD, fd_fl | FD_CLOEXEC) != 0) return -errno;

    uds_channel_t *x = calloc(1, sizeof(*x));
    if (x == NULL) return -ENOMEM;
    shmx_channel_t *ch = &x->ch;
    ch->uds_buf_len = (size_t)HDR + max_payload;
    ch->uds_tx = malloc(ch->uds_buf_len);
    ch->uds_rx = malloc(ch->uds_buf_len);
    if (ch->uds_tx == NULL || ch->uds_rx == NULL) {
        free(ch->uds_tx);
        free(ch->uds_rx);
        free(x); /* the caller keeps @sock: no channel exists to own it */
        return -ENOMEM;
    }
    shmx_config_t def;
    shmx_config_default(&def);
    ch->transport = SHMX_TRANSPORT_UDS;
    ch->is_host = is_host != 0;
    ch->self_owner = SHMX_OWNER_NONE; /* no pool */
    ch->peer_owner = SHMX_OWNER_NONE;
    ch->max_payload = max_payload;
    /* Replaced by the opener with the host's figure (host.c from its configuration,
     * guest.c from the welcome); a bare socketpair channel keeps the default. */
    ch->max_message = def.max_message > max_payload ? def.max_message : max_payload;
    ch->inline_max = max_payload;
    ch->idle.spin_iterations = def.spin_iterations;
    ch->idle.yield_iterations = def.yield_iterations;
    ch->next_id = 1;
    ch->sock = sock;
    *out = ch;
    return 0;
}

/* ---- sending ----------------------------------------------------------------- */

int shmx_uds_claim(shmx_channel_t *ch, uint32_t len, int64_t deadline_ns, void **data) {
    if (ch->claim_open) return -SHMX_ESTATE;
    if (len > ch->max_payload) return -SHMX_ETOOBIG;
    if (closed_locally(ch) || peer_gone(ch)) return -SHMX_ECLOSED;
    ch->claim_open = 1;
    ch->uds_send_deadline = deadline_ns;
    ch->claim_len = len;
    ch->claim_body = ch->uds_tx;
    ch->claim_payload = ch->uds_tx + HDR;
    *data = ch->claim_payload;
    return 0;
}

/*
 * Write all @n bytes. A peer that stops reading can not hold the sender for
 * long: if no byte went out by @deadline_ns, -SHMX_EWOULDBLOCK (nothing
 * sent). A started frame can not be taken back, so it goes on past the
 * deadline while the peer keeps taking bytes, and gives up (shutting the
 * channel down, -SHMX_ECLOSED) once the deadline has passed and the peer took
 * nothing for STALL_NS. Without a deadline it waits as long as the peer lives.
 */
static int write_all(shmx_channel_t *ch, const uint8_t *buf, size_t n, int64_t deadline_ns) {
    size_t off = 0;
    int64_t progress = 0; /* when the peer last took bytes of a started frame */
    while (off < n) {
        ssize_t w = send(ch->sock, buf + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
            if (deadline_ns != INT64_MAX) progress = shmx_now_ns();
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (closed_locally(ch)) return -SHMX_ECLOSED;
            int64_t now = shmx_now_ns();
            int64_t give_up = deadline_ns;
            if (off > 0 && deadline_ns != INT64_MAX && progress + STALL_NS > give_up) give_up = progress + STALL_NS;
            if (now >= give_up) {
                if (off == 0) return -SHMX_EWOULDBLOCK;
                shutdown(ch->sock, SHUT_RDWR);
                set_peer_gone(ch);
                return -SHMX_ECLOSED;
            }
            int64_t left_ms = give_up == INT64_MAX ? SEND_SLICE_MS : (give_up - now + 999999) / 1000000;
            struct pollfd p = {.fd = ch->sock, .events = POLLOUT, .revents = 0};
            if (poll(&p, 1, left_ms < SEND_SLICE_MS ? (int)left_ms : SEND_SLICE_MS) < 0 && errno != EINTR)
                return -errno;
            continue; /* the next send reports a hang-up as EPIPE */
        }
        if (w < 0 && errno != EPIPE && errno != ECONNRESET) return -errno;
        set_peer_gone(ch);
        return -SHMX_ECLOSED;
    }
    return 0;
}

int64_t shmx_uds_commit(shmx_channel_t *ch, uint16_t type, uint8_t flags, uint64_t id) {
    if (!ch->claim_open) return -SHMX_ESTATE;
    ch->claim_open = 0; /* sent or failed, the claim is over */
    uint64_t use = id != 0 ? id : ch->next_id;
    if (use > (uint64_t)INT64_MAX) return -SHMX_EINVAL; /* not representable in the returned id */
    /* The payload already sits after the header: encode fills in the header and CRC. */
    int n = shmx_frame_encode(ch->uds_tx, ch->uds_buf_len, type, flags, use, ch->claim_payload, ch->claim_len);
    if (n < 0) return n;
    int rc = write_all(ch, ch->uds_tx, (size_t)n, ch->uds_send_deadline);
    if (rc != 0) return rc;
    if (id == 0) ch->next_id++;
    return (int64_t)use;
}

/* ---- receiving --------------------------------------------------------------- */

/*
 * Look at the bytes at rx_off: 1 and *@f filled if a whole valid frame is
 * there, 0 if more bytes are needed, or a decode code (-SHMX_ECRC drops the
 * frame; anything else means the stream lost its framing).
 */
static int frame_ready(uds_channel_t *x, shmx_frame_t *f) {
    shmx_channel_t *ch = &x->ch;
    size_t avail = x->rx_have - x->rx_off;
    if (avail < HDR) return 0;
    const uint8_t *p = ch->uds_rx + x->rx_off;
    x->rx_frame = (size_t)HDR + load_le32(p + 8);
    /*
     * Only the bytes of this frame: decode reports -SHMX_ETRUNC while it is
     * incomplete. It checks the length against max_payload first, so a frame
     * that is merely incomplete always fits the buffer.
     */
    int rc = shmx_frame_decode_limit(p, avail < x->rx_frame ? avail : x->rx_frame, ch->max_payload, f);
    if (rc == -SHMX_ETRUNC && avail < x->rx_frame) return 0;
    return rc == 0 ? 1 : rc;
}

/* Consume the frame at rx_off (delivered and released, or dropped). */
static void consume_frame(uds_channel_t *x, size_t frame) {
    x->rx_off += frame;
    x->rx_pos += frame;
    if (x->rx_off == x->rx_have) x->rx_off = x->rx_have = 0;
}

/*
 * Wait until the socket is readable or @deadline_ns passes. @spins counts the
 * busy attempts made so far in this call (they come first, as for shm).
 * Returns 0 to try again, -SHMX_EEMPTY at the deadline, or -errno.
 */
static int wait_readable(shmx_channel_t *ch, int64_t deadline_ns, uint32_t *spins) {
    uint32_t limit = ch->idle.spin_iterations;
    if (*spins == 0 && shmx_now_ns() >= deadline_ns) return -SHMX_EEMPTY; /* a zero timeout tries once */
    if (limit == UINT32_MAX || *spins < limit) {
        (*spins)++;
        shmx_cpu_relax();
        /* Reading the clock costs ~20 ns: look at it only now and then. */
        if ((*spins & 1023u) == 0 && shmx_now_ns() >= deadline_ns) return -SHMX_EEMPTY;
        return 0;
    }
    int64_t now = shmx_now_ns();
    if (now >= deadline_ns) return -SHMX_EEMPTY;
    struct pollfd p = {.fd = ch->sock, .events = POLLIN | POLLRDHUP, .revents = 0};
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != INT64_MAX) {
        int64_t left = deadline_ns - now;
        ts.tv_sec = left / 1000000000LL;
        ts.tv_nsec = left % 1000000000LL;
        tsp = &ts;
    }
    if (ppoll(&p, 1, tsp, NULL) < 0 && errno != EINTR) return -errno;
    return 0;
}

int shmx_uds_receive(shmx_channel_t *ch, shmx_message_t *msg, int64_t deadline_ns) {
    uds_channel_t *x = uds_of(ch);
    if (ch->uds_rx_held) return -SHMX_ESTATE;
    if (x->rx_broken) return -SHMX_ECORRUPT;
    uint32_t spins = 0;
    shmx_frame_t f;
    for (;;) {
        int rc = frame_ready(x, &f);
        if (rc == 1) break;
        if (rc == -SHMX_ECRC) {
            /* The framing held: drop this frame, the stream goes on. */
            consume_frame(x, x->rx_frame);
            return rc;
        }
        if (rc < 0) {
            /* Nothing after a bad header can be trusted to start a frame: stop the stream both ways. */
            x->rx_broken = 1;
            shutdown(ch->sock, SHUT_RDWR);
            return rc;
        }
        if (peer_gone(ch)) return gone_code(ch);
        /* Room for more: move the partial frame to the front (once per frame at most). */
        if (x->rx_off != 0) {
            memmove(ch->uds_rx, ch->uds_rx + x->rx_off, x->rx_have - x->rx_off);
            x->rx_have -= x->rx_off;
            x->rx_off = 0;
        }
        ssize_t n = recv(ch->sock, ch->uds_rx + x->rx_have, ch->uds_buf_len - x->rx_have, MSG_DONTWAIT);
        if (n > 0) {
            x->rx_have += (size_t)n;
            continue;
        }
        if (n == 0 || errno == ECONNRESET) {
            set_peer_gone(ch); /* anything still buffered was already looked at above */
            return gone_code(ch);
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
        rc = wait_readable(ch, deadline_ns, &spins);
        if (rc != 0) return rc;
    }
    ch->uds_rx_held = 1;
    msg->data = f.payload;
    msg->length = f.length;
    msg->type = f.type;
    msg->flags = f.flags;
    msg->reserved_ = 0;
    msg->id = f.id;
    msg->end_ = x->rx_pos + x->rx_frame;
    msg->slot_class_ = UINT32_MAX;
    msg->slot_index_ = UINT32_MAX;
    msg->slot_generation_ = UINT32_MAX;
    msg->reserved2_ = 0;
    return 0;
}

int shmx_uds_release(shmx_channel_t *ch, const shmx_message_t *msg) {
    uds_channel_t *x = uds_of(ch);
    if (!ch->uds_rx_held || msg->end_ != x->rx_pos + x->rx_frame) return -SHMX_EORDER;
    consume_frame(x, x->rx_frame);
    ch->uds_rx_held = 0;
    return 0;
}
