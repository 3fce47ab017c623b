/*
 * shmx_strerror: one sentence per code, saying what went wrong and, where it
 * helps, what to do about it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU strerror_r (returns the text) and strerrorname_np (glibc 2.32) */
#endif
#include <shmx/errors.h>

#include <stdio.h>
#include <string.h>

/* Room for the longest errno text plus " (ENAME, errno N)". */
#define ERRORS_BUF_SIZE 256

static const char *errors_shmx_text(long long code)
{
    switch (code) {
    case SHMX_ESHORT:
        return "buffer too short: fewer bytes than a 24-byte frame header, or than the frame or batch "
               "that had to fit; pass a larger buffer";
    case SHMX_EMAGIC:
        return "bad frame magic: the bytes do not start with 0x4C415043 (\"LAPC\"), so they are not an shmx "
               "frame or were read at the wrong offset";
    case SHMX_EVERSION:
        return "unsupported frame version: this library reads version 1 only; the sender runs an "
               "incompatible shmx";
    case SHMX_EFLAGS:
        return "reserved frame flag bits are set: only bit 0 (SHMX_FLAG_MORE) is defined, the others must be 0";
    case SHMX_ETOOBIG:
        return "message too big: the payload length is above the configured maximum (the channel's "
               "max_payload or the decoder's limit); split the message or raise the limit";
    case SHMX_ETRUNC:
        return "truncated frame: its length field runs beyond the bytes available, so the frame is cut "
               "short or its header is corrupt";
    case SHMX_ECRC:
        return "frame CRC-32 mismatch: header or payload changed after the sender wrote them (torn write, "
               "stale frame or a sender bug)";
    case SHMX_EWOULDBLOCK:
        return "would block: the ring is full or the pool has no free slot, and the timeout left no time to "
               "wait; retry later or allow a longer wait";
    case SHMX_EEMPTY:
        return "nothing to receive: no message arrived within the timeout";
    case SHMX_ECLOSED:
        return "the channel is closed (by this side or by the peer); no more messages can be sent on it";
    case SHMX_EINVAL:
        return "invalid argument: a pointer is NULL or a value is out of range for this call";
    case SHMX_ESTATE:
        return "call not valid in the current state, for example commit or abort without an open claim, "
               "or a second claim before the first is committed";
    case SHMX_EORDER:
        return "messages must be released in the order they were received; release the oldest held "
               "message first";
    case SHMX_ECONFIG:
        return "configuration rejected: a size, count or alignment is out of range; shmx_config_problem() "
               "names the field";
    case SHMX_ECORRUPT:
        return "shared ring data failed validation (positions or record fields out of range): the peer is "
               "buggy or hostile";
    case SHMX_EBADSLOT:
        return "bad slot reference: index out of range, stale generation or wrong owner (the slot may have "
               "been reclaimed from a dead peer)";
    case SHMX_EHEADER:
        return "segment header failed validation on attach (magic, layout version, size or configuration); "
               "host and guest may run different shmx versions";
    case SHMX_ENOTREADY:
        return "the segment did not become ready within the timeout: the host has not finished creating it, "
               "or died while doing so";
    case SHMX_ESEALS:
        return "the memfd segment lacks the required seals (no shrink, no grow, sealed): refusing to map "
               "memory its sender could still resize";
    case SHMX_EPERMS:
        return "named segment or socket has the wrong owner, mode or file type: it must belong to this user, "
               "mode 0600 (0700 for its directory), and not be a symlink";
    case SHMX_EFRAGMENT:
        return "message fragments out of sequence: a fragment of another message, or an empty fragment "
               "flagged MORE, arrived before the last fragment; the partial message was dropped";
    case SHMX_EPROTO:
        return "malformed or unexpected bootstrap message: host and guest may run different shmx versions";
    case SHMX_EPEERCRED:
        return "the host refused the connecting process's credentials: its user is not allowed to connect "
               "(see allowed_uid in the host's configuration)";
    case SHMX_EFULL:
        return "the host has no free channel for another guest; raise its max_channels or retry when a "
               "guest leaves";
    case SHMX_ETRANSPORT:
        return "the requested transport (shm or uds) is not offered by this host";
    case SHMX_EHOSTGONE:
        return "the host closed the bootstrap connection or died";
    case SHMX_ENOHOST:
        return "no host listens under that name (within the timeout): start the host first or check the name";
    case SHMX_EEXPELLED:
        return "the host expelled this guest: it left messages unconsumed for longer than the host's liveness "
               "timeout (liveness_ms); nothing it sends is delivered any more, reconnect for a fresh channel";
    case SHMX_EBACKOFF:
        return "the host was holding this connection back because a guest of this process broke the protocol, "
               "and a newer connection of the process replaced it: one connection per process waits at a time";
    default:
        return NULL;
    }
}

const char *shmx_strerror(int code)
{
    /* Per thread, so concurrent callers never see each other's text. */
    static _Thread_local char buf[ERRORS_BUF_SIZE];

    if (code == 0)
        return "success";
    long long c = code < 0 ? -(long long)code : code; /* -INT_MIN must not overflow */
    const char *text = errors_shmx_text(c);
    if (text != NULL)
        return text;
    /* An errno value the C library knows by name; other numbers are unknown codes. */
    const char *name = c < SHMX_EBASE ? strerrorname_np((int)c) : NULL;
    if (name != NULL) {
        char msg[ERRORS_BUF_SIZE - 48];
        snprintf(buf, sizeof buf, "%s (%s, errno %lld)", strerror_r((int)c, msg, sizeof msg), name, c);
        return buf;
    }
    snprintf(buf, sizeof buf, "unknown shmx error code %d", code);
    return buf;
}
