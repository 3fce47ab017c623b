/*
 * Messages of any size (include/shmx/stream.h): a message longer than one
 * frame is a run of fragments of one type and id, all but the last flagged
 * MORE. The writer claims a fragment, lets the caller fill it, and sends it
 * only when more bytes arrive (flagged MORE) or the message ends (unflagged),
 * so the last fragment is never an empty extra frame. The reader holds one
 * fragment at a time and checks that each belongs to the message it reads.
 *
 * Flow control lives in the channel (the sender's in-flight window, ring
 * space, the pool's wait): a fragment claim simply waits. After the first
 * fragment the waits have no deadline, only the channel's own checks for a
 * close or a peer that hung up, because a started message must be finished.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "channel_internal.h"
#include "shmx/errors.h"
#include "shmx/frame.h"
#include "shmx/stream.h"

/* First fragment claimed by the writer: big enough for most messages, small
 * enough that a short message does not pin a slot of the largest class. */
#define FIRST_FRAGMENT (64u * 1024u)
#define NO_TIMEOUT (-1)

enum { WRITER_IDLE = 0, WRITER_OPEN = 1, WRITER_DONE = 2 };
enum { READER_IDLE = 0, READER_OPEN = 1, READER_DONE = 2 };

uint32_t shmx_channel_max_message(const shmx_channel_t *ch) { return ch->max_message; }

/* ---- writer --------------------------------------------------------------- */

int shmx_writer_begin(shmx_writer_t *w, shmx_channel_t *ch, uint16_t type, uint64_t id) {
    if (w == NULL || ch == NULL) return -SHMX_EINVAL;
    if (ch->claim_open) return -SHMX_ESTATE;
    *w = (shmx_writer_t){.ch_ = ch, .id_ = id, .type_ = type, .state_ = WRITER_OPEN};
    return 0;
}

int shmx_writer_size_hint(shmx_writer_t *w, uint64_t length) {
    if (w == NULL || w->state_ != WRITER_OPEN) return -SHMX_ESTATE;
    w->expect_ = length;
    return 0;
}

/* Send the open fragment with @flags; the first one fixes the message id. */
static int64_t writer_send_fragment(shmx_writer_t *w, uint8_t flags) {
    int64_t id = shmx_channel_commit_len(w->ch_, w->used_, w->type_, flags, w->id_);
    w->dst_ = NULL;
    w->room_ = w->used_ = 0;
    if (id < 0) return id;
    w->id_ = (uint64_t)id;
    w->sent_ = 1;
    return id;
}

/*
 * Claim the next fragment: as much as is still to come when the length is
 * known, else a first fragment of FIRST_FRAGMENT and then the most a frame
 * holds. After the first one went out, wait as long as the channel lives.
 */
static int writer_claim(shmx_writer_t *w, int64_t timeout_ns) {
    shmx_channel_t *ch = w->ch_;
    uint64_t left = (uint64_t)ch->max_message - w->total_;
    if (left == 0) return -SHMX_ETOOBIG;
    uint64_t want = ch->max_payload;
    if (w->expect_ > w->total_) {
        if (want > w->expect_ - w->total_) want = w->expect_ - w->total_;
    } else if (!w->sent_ && want > FIRST_FRAGMENT) {
        want = FIRST_FRAGMENT;
    }
    if (want > left) want = left;
    void *dst;
    int rc = shmx_channel_claim(ch, (uint32_t)want, w->sent_ ? NO_TIMEOUT : timeout_ns, &dst);
    if (rc != 0) return rc;
    w->dst_ = dst;
    w->room_ = (uint32_t)want;
    w->used_ = 0;
    return 0;
}

/* A started message that can not be finished: close, so nobody takes the part for the whole. */
static int writer_fail(shmx_writer_t *w, int rc) {
    if (w->sent_) shmx_channel_close(w->ch_);
    w->state_ = WRITER_DONE;
    return rc;
}

int shmx_writer_reserve(shmx_writer_t *w, void **dst, size_t *room, int64_t timeout_ns) {
    if (w == NULL || dst == NULL || room == NULL) return -SHMX_EINVAL;
    if (w->state_ != WRITER_OPEN) return -SHMX_ESTATE;
    if (w->dst_ != NULL && w->used_ == w->room_) {
        /* Full, and more is coming: it is not the last fragment. */
        if (w->total_ == w->ch_->max_message) return -SHMX_ETOOBIG;
        int64_t rc = writer_send_fragment(w, SHMX_FLAG_MORE);
        if (rc < 0) return writer_fail(w, (int)rc);
    }
    if (w->dst_ == NULL) {
        int rc = writer_claim(w, timeout_ns);
        /* Before the first send a failed claim loses nothing: the caller may try again. */
        if (rc != 0) return w->sent_ ? writer_fail(w, rc) : rc;
    }
    *dst = w->dst_ + w->used_;
    *room = w->room_ - w->used_;
    return 0;
}

int shmx_writer_advance(shmx_writer_t *w, size_t n) {
    if (w == NULL || w->state_ != WRITER_OPEN || w->dst_ == NULL || n > w->room_ - w->used_)
        return -SHMX_EINVAL;
    w->used_ += (uint32_t)n;
    w->total_ += n;
    return 0;
}

int64_t shmx_writer_write(shmx_writer_t *w, const void *src, size_t len, int64_t timeout_ns) {
    if (len != 0 && src == NULL) return -SHMX_EINVAL;
    const uint8_t *from = src;
    size_t done = 0;
    while (done < len) {
        void *dst;
        size_t room;
        int rc = shmx_writer_reserve(w, &dst, &room, timeout_ns);
        if (rc != 0) return rc;
        size_t n = len - done < room ? len - done : room;
        memcpy(dst, from + done, n);
        shmx_writer_advance(w, n);
        done += n;
    }
    return (int64_t)len;
}

int64_t shmx_writer_finish(shmx_writer_t *w, int64_t timeout_ns) {
    if (w == NULL) return -SHMX_EINVAL;
    if (w->state_ != WRITER_OPEN) return -SHMX_ESTATE;
    if (w->dst_ == NULL) {
        /* Nothing claimed, so nothing sent either (a send always claims the next
         * fragment or ends the writer): the message is empty. */
        void *dst;
        int rc = shmx_channel_claim(w->ch_, 0, timeout_ns, &dst);
        if (rc != 0) return rc;
        w->dst_ = dst;
    }
    int64_t id = writer_send_fragment(w, 0);
    if (id < 0) return writer_fail(w, (int)id);
    w->state_ = WRITER_DONE;
    return id;
}

int shmx_writer_abort(shmx_writer_t *w) {
    if (w == NULL || w->state_ != WRITER_OPEN) return -SHMX_ESTATE;
    if (w->dst_ != NULL) shmx_channel_abort(w->ch_);
    w->dst_ = NULL;
    w->state_ = WRITER_DONE;
    if (w->sent_) shmx_channel_close(w->ch_);
    return 0;
}

/* shmx_channel_send for payloads above max_payload (declared in channel_internal.h). */
int64_t shmx_message_send(shmx_channel_t *ch, uint16_t type, uint64_t id, const void *payload, uint32_t len,
                          int64_t timeout_ns) {
    if (len > ch->max_message) return -SHMX_ETOOBIG;
    shmx_writer_t w;
    int rc = shmx_writer_begin(&w, ch, type, id);
    if (rc != 0) return rc;
    shmx_writer_size_hint(&w, len); /* fragments of exactly what is left: no oversized last slot */
    int64_t n = shmx_writer_write(&w, payload, len, timeout_ns);
    if (n < 0) {
        shmx_writer_abort(&w);
        return n;
    }
    return shmx_writer_finish(&w, timeout_ns);
}

/* ---- reader --------------------------------------------------------------- */

/* Take the next fragment of the message @r reads. */
static int reader_take(shmx_reader_t *r, int64_t timeout_ns) {
    shmx_message_t m;
    int rc = shmx_channel_receive(r->ch_, &m, timeout_ns);
    if (rc != 0) return rc;
    /* A fragment of another message, or an empty one that promises more (which
     * would let a peer keep us busy forever without sending a byte). */
    if (m.type != r->type || m.id != r->id || (m.length == 0 && (m.flags & SHMX_FLAG_MORE))) {
        shmx_channel_release(r->ch_, &m);
        r->state_ = READER_DONE;
        return -SHMX_EFRAGMENT;
    }
    r->frag_ = m;
    r->offset_ = 0;
    r->holding_ = 1;
    r->last_ = (m.flags & SHMX_FLAG_MORE) == 0;
    r->length_so_far += m.length;
    if (r->length_so_far > r->ch_->max_message) return -SHMX_ETOOBIG;
    return 0;
}

int shmx_reader_begin(shmx_reader_t *r, shmx_channel_t *ch, int64_t timeout_ns) {
    if (r == NULL || ch == NULL) return -SHMX_EINVAL;
    shmx_message_t m;
    int rc = shmx_channel_receive(ch, &m, timeout_ns);
    if (rc != 0) return rc;
    *r = (shmx_reader_t){.type = m.type, .id = m.id, .ch_ = ch, .state_ = READER_OPEN};
    if (m.length == 0 && (m.flags & SHMX_FLAG_MORE)) {
        shmx_channel_release(ch, &m);
        r->state_ = READER_DONE;
        return -SHMX_EFRAGMENT;
    }
    r->frag_ = m;
    r->holding_ = 1;
    r->last_ = (m.flags & SHMX_FLAG_MORE) == 0;
    r->length_so_far = m.length;
    if (r->length_so_far > ch->max_message) return -SHMX_ETOOBIG;
    return 0;
}

int shmx_reader_next(shmx_reader_t *r, const void **src, size_t *avail, int64_t timeout_ns) {
    if (r == NULL || src == NULL || avail == NULL) return -SHMX_EINVAL;
    if (r->state_ != READER_OPEN) return r->state_ == READER_DONE ? -SHMX_ESTATE : -SHMX_EINVAL;
    if (r->length_so_far > r->ch_->max_message) return -SHMX_ETOOBIG;
    for (;;) {
        if (r->holding_ && r->offset_ < r->frag_.length) {
            *src = (const uint8_t *)r->frag_.data + r->offset_;
            *avail = r->frag_.length - r->offset_;
            return 1;
        }
        if (r->holding_ && r->last_) return 0;
        if (r->holding_) {
            r->holding_ = 0;
            int rc = shmx_channel_release(r->ch_, &r->frag_);
            if (rc != 0) return rc;
        }
        int rc = reader_take(r, timeout_ns);
        if (rc != 0) return rc;
    }
}

int shmx_reader_consume(shmx_reader_t *r, size_t n) {
    if (r == NULL || !r->holding_ || n > r->frag_.length - r->offset_) return -SHMX_EINVAL;
    r->offset_ += (uint32_t)n;
    return 0;
}

int64_t shmx_reader_read(shmx_reader_t *r, void *dst, size_t len, int64_t timeout_ns) {
    if (len != 0 && dst == NULL) return -SHMX_EINVAL;
    const void *src;
    size_t avail;
    int rc = shmx_reader_next(r, &src, &avail, timeout_ns);
    if (rc <= 0) return rc;
    size_t n = len < avail ? len : avail;
    memcpy(dst, src, n);
    shmx_reader_consume(r, n);
    return (int64_t)n;
}

/*
 * Receive and drop the fragments of a message up to its last one: of the
 * message @of, or (@of NULL) of whichever message the next fragment starts.
 * Every fragment but the last carries at least one byte (a peer's empty
 * MORE fragment ends the walk), so it ends within max_message fragments
 * even if the peer lies about lengths.
 */
static int skip_rest(shmx_channel_t *ch, const shmx_message_t *of, int64_t timeout_ns) {
    int have = of != NULL;
    uint16_t type = have ? of->type : 0;
    uint64_t id = have ? of->id : 0;
    for (uint64_t n = 0; n <= ch->max_message; n++) {
        shmx_message_t m;
        int rc = shmx_channel_receive(ch, &m, timeout_ns);
        if (rc != 0) return rc;
        int more = (m.flags & SHMX_FLAG_MORE) != 0;
        int ours = (!have || (m.type == type && m.id == id)) && !(m.length == 0 && more);
        type = m.type;
        id = m.id;
        have = 1;
        shmx_channel_release(ch, &m);
        if (!ours) return -SHMX_EFRAGMENT;
        if (!more) return 0;
    }
    return -SHMX_EFRAGMENT;
}

int shmx_reader_end(shmx_reader_t *r, int64_t timeout_ns) {
    if (r == NULL || r->state_ != READER_OPEN) return -SHMX_ESTATE;
    r->state_ = READER_DONE;
    int finished = r->holding_ && r->last_;
    if (r->holding_) {
        r->holding_ = 0;
        int rc = shmx_channel_release(r->ch_, &r->frag_);
        if (rc != 0) return rc;
    }
    if (finished) return 0;
    shmx_message_t of = {.type = r->type, .id = r->id};
    return skip_rest(r->ch_, &of, timeout_ns);
}

/* ---- whole messages, copied ------------------------------------------------ */

/* Make room for @need bytes in *@buf (realloc, at least doubling). Returns 0 or -ENOMEM. */
static int grow(void **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t n = *cap * 2u > need ? *cap * 2u : need;
    void *p = realloc(*buf, n);
    if (p == NULL) return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

int64_t shmx_channel_receive_message(shmx_channel_t *ch, void **buf, size_t *cap, shmx_message_t *meta,
                                     int64_t timeout_ns) {
    if (ch == NULL || buf == NULL || cap == NULL || (*buf == NULL && *cap != 0)) return -SHMX_EINVAL;
    size_t total = 0;
    shmx_message_t first = {0};
    for (int started = 0;;) {
        shmx_message_t m;
        uint8_t *at = *buf == NULL ? NULL : (uint8_t *)*buf + total;
        /* Copy, then check the CRC over the copy (receive_copy); a frame too long
         * for the room left is not consumed: grow and take it again. */
        int64_t got = shmx_channel_receive_copy(ch, at, *cap - total, &m, started ? NO_TIMEOUT : timeout_ns);
        if (got == -SHMX_ESHORT) {
            if (total + m.length > ch->max_message) {
                /* Nothing of this fragment was consumed: it goes with the rest. */
                skip_rest(ch, started ? &first : NULL, NO_TIMEOUT);
                return -SHMX_ETOOBIG;
            }
            int rc = grow(buf, cap, total + m.length);
            if (rc != 0) return rc;
            continue;
        }
        if (got < 0) return got;
        int more = (m.flags & SHMX_FLAG_MORE) != 0;
        /* Another message's fragment, or an empty one promising more: the partial message is dropped. */
        if ((started && (m.type != first.type || m.id != first.id)) || (got == 0 && more)) return -SHMX_EFRAGMENT;
        if (!started) first = m;
        started = 1;
        if (total + (size_t)got > ch->max_message) {
            if (more) skip_rest(ch, &first, NO_TIMEOUT);
            return -SHMX_ETOOBIG;
        }
        total += (size_t)got;
        if (!more) break;
    }
    if (meta != NULL)
        *meta = (shmx_message_t){.data = *buf, .length = (uint32_t)total, .type = first.type, .id = first.id,
                                 .slot_class_ = UINT32_MAX, .slot_index_ = UINT32_MAX,
                                 .slot_generation_ = UINT32_MAX};
    return (int64_t)total;
}
