/*
 * shmx messages of any size: fragments, the copying whole-message receive,
 * and the streaming writer and reader.
 *
 * A frame carries at most the channel's max_payload bytes (the largest pool
 * class by default). A longer message travels as consecutive frames of one
 * type and one id, every one but the last flagged SHMX_FLAG_MORE, up to the
 * channel's max_message bytes in all. Flow control is real: a sender has at
 * most window_bytes of pool slots in flight per channel and waits for the
 * receiver to release before it sends more, so a 64 MiB message passes
 * through a few MiB of pool without starving other guests.
 *
 * Once a message's first fragment is sent, the rest of it must follow: a
 * sender waits for its receiver as long as the channel is open and the peer
 * is alive, whatever the timeout (the timeout bounds the wait for the first
 * fragment). Abandoning a started message closes the channel, so that the
 * receiver never takes a truncated message for a whole one.
 *
 * Threading as for channels: one writer or sender, one reader or receiver
 * per channel at a time.
 */
#ifndef SHMX_STREAM_H
#define SHMX_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

/* shmx_channel_max_message - largest message (all fragments) this channel sends or accepts. */
uint32_t shmx_channel_max_message(const shmx_channel_t *ch);

/*
 * shmx_channel_receive_message - receive one whole message, however many
 * fragments it has, into a malloc'd buffer, getline() style: *@buf is NULL or
 * a malloc'd buffer of *@cap bytes, grown with realloc as needed (the caller
 * frees it). Each fragment's CRC is checked on the copy.
 * @meta: if not NULL, receives type, id and total length (data = *@buf).
 * @timeout_ns: bounds the wait for the first fragment; later fragments are
 * waited for as long as the sender is alive (see above).
 * Returns the message length, -SHMX_EEMPTY, -SHMX_ECLOSED, -SHMX_EHOSTGONE,
 * -ENOMEM, -SHMX_ETOOBIG (longer than max_message: the rest of it is
 * skipped), -SHMX_EFRAGMENT (a fragment of another type or id arrived before
 * the last one: the partial message is dropped), or a decode code (the bad
 * fragment's message is dropped).
 */
int64_t shmx_channel_receive_message(shmx_channel_t *ch, void **buf, size_t *cap, shmx_message_t *meta,
                                     int64_t timeout_ns);

/* ---- the streaming writer ------------------------------------------------- */

/* A message being written. Fields are private; the struct lives where the caller puts it. */
typedef struct shmx_writer {
    shmx_channel_t *ch_;
    uint8_t *dst_;      /* the open fragment's payload (a claim), or NULL */
    uint32_t room_;     /* bytes the open fragment can hold */
    uint32_t used_;     /* bytes written into it */
    uint64_t total_;    /* bytes of the message so far, open fragment included */
    uint64_t expect_;   /* the message's length when known in advance (a whole send), else 0 */
    uint64_t id_;       /* the message id (fixed by the first fragment) */
    uint16_t type_;
    uint8_t sent_;      /* a fragment went out: the message can no longer be withdrawn */
    uint8_t state_;
} shmx_writer_t;

/*
 * shmx_writer_begin - start a message of type @type on @ch (@id 0: the
 * channel's next sequence number, else that id). Nothing is sent yet.
 * Returns 0, -SHMX_EINVAL, -SHMX_ESTATE (a claim is open on @ch).
 */
int shmx_writer_begin(shmx_writer_t *w, shmx_channel_t *ch, uint16_t type, uint64_t id);

/*
 * shmx_writer_size_hint - tell the writer the message will be @length bytes,
 * so that fragments are cut to fit (no oversized last slot, no small first
 * fragment). Only a hint: writing more or less is still correct.
 * Returns 0 or -SHMX_ESTATE (the writer is not open).
 */
int shmx_writer_size_hint(shmx_writer_t *w, uint64_t length);

/*
 * shmx_writer_reserve - where the next bytes go, zero-copy: sets *@dst and
 * *@room (>= 1 bytes of the current fragment), sending the previous fragment
 * (flagged MORE) and claiming a new one if it is full. Write, then call
 * shmx_writer_advance with how much was written.
 * Returns 0, -SHMX_EWOULDBLOCK (no fragment within @timeout_ns; only before
 * anything was sent), -SHMX_ETOOBIG (max_message reached), -SHMX_ECLOSED,
 * -SHMX_ESTATE.
 */
int shmx_writer_reserve(shmx_writer_t *w, void **dst, size_t *room, int64_t timeout_ns);

/* shmx_writer_advance - account @n bytes written at the reserved place (<= room). Returns 0 or -SHMX_EINVAL. */
int shmx_writer_advance(shmx_writer_t *w, size_t n);

/*
 * shmx_writer_write - copy @len bytes into the message (reserve, copy,
 * advance until done). Returns @len or a code of shmx_writer_reserve (then
 * the bytes counted before the error are in the message).
 */
int64_t shmx_writer_write(shmx_writer_t *w, const void *src, size_t len, int64_t timeout_ns);

/*
 * shmx_writer_finish - send the last fragment (no MORE flag) and end the
 * message. An empty message is one empty frame.
 * Returns the message id (> 0) or a code of shmx_channel_commit.
 */
int64_t shmx_writer_finish(shmx_writer_t *w, int64_t timeout_ns);

/*
 * shmx_writer_abort - withdraw the message. If nothing was sent yet nothing
 * ever is; otherwise the channel is closed (the receiver gets -SHMX_ECLOSED
 * instead of a truncated message). Returns 0 or -SHMX_ESTATE.
 */
int shmx_writer_abort(shmx_writer_t *w);

/* ---- the streaming reader ------------------------------------------------- */

/* A message being read. Fields are private except type, id and length_so_far. */
typedef struct shmx_reader {
    uint16_t type;          /* the message's type (from its first fragment) */
    uint64_t id;            /* the message's id */
    uint64_t length_so_far; /* payload bytes of the fragments received so far */
    shmx_channel_t *ch_;
    shmx_message_t frag_;   /* the held fragment */
    uint32_t offset_;       /* bytes of it consumed */
    uint8_t holding_;
    uint8_t last_;          /* the held fragment is the last one */
    uint8_t state_;
} shmx_reader_t;

/*
 * shmx_reader_begin - wait up to @timeout_ns for a message and start reading
 * it (its first fragment is received and held).
 * Returns 0 or the codes of shmx_channel_receive.
 */
int shmx_reader_begin(shmx_reader_t *r, shmx_channel_t *ch, int64_t timeout_ns);

/*
 * shmx_reader_next - zero-copy view of the next unread bytes: *@src and
 * *@avail (>= 1) within the current fragment, receiving the next fragment
 * (and releasing the spent one) as needed. Consume with shmx_reader_consume.
 * Returns 1 (bytes available), 0 (end of message), -SHMX_EFRAGMENT,
 * -SHMX_ETOOBIG, or the codes of shmx_channel_receive (-SHMX_EEMPTY only if
 * the sender sent nothing for @timeout_ns).
 */
int shmx_reader_next(shmx_reader_t *r, const void **src, size_t *avail, int64_t timeout_ns);

/* shmx_reader_consume - mark @n bytes of the last view read (<= avail). Returns 0 or -SHMX_EINVAL. */
int shmx_reader_consume(shmx_reader_t *r, size_t n);

/*
 * shmx_reader_read - copy up to @len bytes of the message into @dst.
 * Returns the bytes copied (0 at the end of the message) or a code of
 * shmx_reader_next.
 */
int64_t shmx_reader_read(shmx_reader_t *r, void *dst, size_t len, int64_t timeout_ns);

/*
 * shmx_reader_end - finish with the message: release the held fragment and
 * receive and drop whatever fragments of it remain (waiting up to
 * @timeout_ns for each), so the next receive starts at a message boundary.
 * Returns 0, or a receive code if the rest could not be skipped.
 */
int shmx_reader_end(shmx_reader_t *r, int64_t timeout_ns);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
