/*
 * shmx error codes.
 *
 * Every shmx function that can fail returns 0 (or a count, or an id) on
 * success and a negative code on failure: either -errno for a failed system
 * call, or -SHMX_E... for a condition of shmx's own. shmx_strerror() explains
 * any code the library returns. There is no hidden global error state.
 */
#ifndef SHMX_ERRORS_H
#define SHMX_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

/* shmx's own codes start above every errno value so that the two never clash. */
enum shmx_error {
    SHMX_EBASE = 4096,
    /* frame decoding, one code per kind of rejection (DESIGN.md section 4) */
    SHMX_ESHORT = 4097,     /* buffer shorter than the 24-byte frame header */
    SHMX_EMAGIC = 4098,     /* frame magic is not 0x4C415043 */
    SHMX_EVERSION = 4099,   /* frame version is not 1 */
    SHMX_EFLAGS = 4100,     /* reserved frame flag bits are set */
    SHMX_ETOOBIG = 4101,    /* payload length above the configured maximum */
    SHMX_ETRUNC = 4102,     /* payload length runs beyond the buffer */
    SHMX_ECRC = 4103,       /* CRC-32 mismatch */
    /* hot-path outcomes that are not failures of the library */
    SHMX_EWOULDBLOCK = 4110, /* ring full or pool empty and no time left to wait */
    SHMX_EEMPTY = 4111,      /* nothing to receive and no time left to wait */
    SHMX_ECLOSED = 4112,     /* the channel was closed by either side */
    /* usage errors */
    SHMX_EINVAL = 4120,      /* an argument is out of range (NULL, bad name, unknown kind, ...) */
    SHMX_ESTATE = 4121,      /* call not valid now (commit without claim, claim twice, ...) */
    SHMX_EORDER = 4122,      /* messages must be released in the order they were received */
    SHMX_ECONFIG = 4123,     /* configuration rejected (sizes, counts, alignment) */
    /* shared data that failed validation: a buggy or hostile peer */
    SHMX_ECORRUPT = 4130,    /* ring positions or record fields failed validation */
    SHMX_EBADSLOT = 4131,    /* slot reference out of range, stale generation or wrong owner */
    SHMX_EHEADER = 4132,     /* segment header failed validation on attach */
    SHMX_ENOTREADY = 4133,   /* segment never became ready within the timeout */
    SHMX_ESEALS = 4134,      /* memfd segment lacks the required seals */
    SHMX_EPERMS = 4135,      /* named segment or socket has the wrong owner, mode or type */
    SHMX_EFRAGMENT = 4136,   /* a fragment of another message (or an empty one flagged MORE) interrupted a message */
    /* bootstrap */
    SHMX_EPROTO = 4140,      /* malformed or unexpected bootstrap message */
    SHMX_EPEERCRED = 4141,   /* the connecting process's credentials were refused */
    SHMX_EFULL = 4142,       /* the host has no free channel for another guest */
    SHMX_ETRANSPORT = 4143,  /* the requested transport is not offered by this host */
    SHMX_EHOSTGONE = 4144,   /* the host closed the bootstrap connection or died */
    SHMX_ENOHOST = 4145,     /* no host listens under that name (within the timeout) */
    /* liveness */
    SHMX_EEXPELLED = 4146,   /* the host expelled this guest (it stopped responding past the liveness timeout) */
    SHMX_EBACKOFF = 4147,    /* the host held this connection after a violation of its process; a newer one replaced it */
    SHMX_ELAST = 4148
};

/*
 * shmx_strerror - explain a code returned by any shmx function.
 * @code: a negative (or positive) shmx or errno code; 0 gives "success".
 * Returns a non-empty, NUL-terminated English sentence, never NULL: static for
 * shmx codes; for errno and unknown codes a thread-local buffer that the same
 * thread's next call overwrites.
 */
const char *shmx_strerror(int code);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
