/*
 * The shmx frame: a 24-byte little-endian header followed by the payload.
 * Normative: DESIGN.md section 4. Every peer, C or JVM, uses these functions.
 *
 *  bytes  field       value
 *  0-3    magic       0x4C415043 ("LAPC" read as a number; on the wire: 43 50 41 4C)
 *  4      version     1
 *  5      flags       bit 0 SHMX_FLAG_MORE; other bits must be 0
 *  6-7    type        0 reserved, 1 heartbeat, 2 data, 3 control, 4 response, >=256 application
 *  8-11   length      payload bytes (header not included)
 *  12-19  message id  sender's per-channel sequence number from 1; a response carries the request's id
 *  20-23  crc         CRC-32 (zlib polynomial) over header bytes 0-19 then the payload
 */
#ifndef SHMX_FRAME_H
#define SHMX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API is exported; everything else is hidden */

#define SHMX_FRAME_MAGIC 0x4C415043u
#define SHMX_FRAME_VERSION 1u
#define SHMX_FRAME_HEADER_SIZE 24u
#define SHMX_FLAG_MORE 0x01u
#define SHMX_FLAGS_KNOWN SHMX_FLAG_MORE

enum shmx_frame_type {
    SHMX_TYPE_RESERVED = 0,
    SHMX_TYPE_HEARTBEAT = 1,
    SHMX_TYPE_DATA = 2,
    SHMX_TYPE_CONTROL = 3,
    SHMX_TYPE_RESPONSE = 4,
    SHMX_TYPE_APPLICATION = 256 /* first type value free for applications */
};

/* A decoded frame. The first fields are normative; more may follow. */
typedef struct shmx_frame {
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint32_t length;
    uint64_t id;
    uint32_t crc;
    const void *payload; /* points into the decoded buffer, not a copy */
} shmx_frame_t;

/*
 * shmx_crc32 - update a CRC-32 (reflected polynomial 0x04C11DB7, as zlib's
 * crc32(), java.util.zip.CRC32 and crc32fast).
 * @crc: 0 to start, or the result of a previous call to continue.
 * @data: bytes to add; may be NULL when @len is 0.
 * @len: number of bytes.
 * Returns the updated CRC. "123456789" from 0 gives 0xCBF43926.
 * Uses carry-less multiplication (PCLMULQDQ) when the CPU has it, chosen at
 * run time, and a table-driven loop otherwise.
 */
uint32_t shmx_crc32(uint32_t crc, const void *data, size_t len);

/*
 * shmx_crc32_implementation - name the CRC-32 implementation chosen at run
 * time: "pclmul" (carry-less multiplication, 128-bit or, where the CPU and OS
 * allow, 512-bit VPCLMULQDQ) or "table". For benchmarks and diagnostics.
 */
const char *shmx_crc32_implementation(void);

/*
 * shmx_frame_encode - write a frame (header then payload) into @dst.
 * @dst: destination buffer; @dst_len: its size in bytes.
 * @type, @flags, @id: header fields (flags may only contain SHMX_FLAG_MORE).
 * @payload: @len bytes of payload (may be NULL when @len is 0). @payload may
 *           already sit at dst + 24, in which case it is not copied.
 * Returns the number of bytes written (24 + len), or
 *  -SHMX_ESHORT  if @dst_len is smaller than 24 + len,
 *  -SHMX_EFLAGS  if @flags has a reserved bit set,
 *  -SHMX_EINVAL  if @dst is NULL or @payload is NULL with len > 0,
 *  -SHMX_ETOOBIG if 24 + len does not fit in an int.
 * A frame longer than SHMX_FRAME_MAX_PAYLOAD encodes, but only decoders given
 * a larger limit (shmx_frame_decode_limit) accept it.
 */
int shmx_frame_encode(void *dst, size_t dst_len, uint16_t type, uint8_t flags, uint64_t id,
                      const void *payload, uint32_t len);

/*
 * shmx_frame_header_encode - write only the 24-byte header for a payload that
 * lives elsewhere (for example in a pool slot); the CRC covers that payload.
 * @hdr: 24 writable bytes. Other parameters as shmx_frame_encode.
 * Returns 24, -SHMX_EFLAGS or -SHMX_EINVAL.
 */
int shmx_frame_header_encode(void *hdr, uint16_t type, uint8_t flags, uint64_t id,
                             const void *payload, uint32_t len);

/*
 * shmx_frame_decode - validate and decode a frame held in one buffer.
 * @src: the frame bytes; @src_len: bytes available.
 * @out: filled on success; out->payload points into @src.
 * The header is copied out before it is checked, so a concurrent writer can
 * not change a field between its check and its use. The payload is checked
 * where it lies: if @src is shared memory, a dishonest writer can change it
 * after the CRC check; copy it first when the writer is not trusted.
 * Returns 0, or one distinct code per rejection:
 *  -SHMX_ESHORT (src_len < 24), -SHMX_EMAGIC, -SHMX_EVERSION, -SHMX_EFLAGS,
 *  -SHMX_ETOOBIG (length above SHMX_FRAME_MAX_PAYLOAD), -SHMX_ETRUNC
 *  (length beyond src_len), -SHMX_ECRC, -SHMX_EINVAL (NULL arguments).
 */
int shmx_frame_decode(const void *src, size_t src_len, shmx_frame_t *out);

/*
 * shmx_frame_decode_limit - shmx_frame_decode with an explicit maximum payload
 * length (the channel's configured maximum) instead of SHMX_FRAME_MAX_PAYLOAD.
 */
int shmx_frame_decode_limit(const void *src, size_t src_len, uint32_t max_payload, shmx_frame_t *out);

/*
 * shmx_frame_header_decode - validate a 24-byte header whose payload lives
 * elsewhere; the CRC is checked over @payload (@payload_len bytes, which must
 * equal the header's length field or -SHMX_ETRUNC is returned).
 * @max_payload: largest accepted length. Returns 0 or the codes of
 * shmx_frame_decode. out->payload is set to @payload.
 */
int shmx_frame_header_decode(const void *hdr, const void *payload, size_t payload_len,
                             uint32_t max_payload, shmx_frame_t *out);

/* Largest payload shmx_frame_decode accepts when no limit is given: 1 GiB. */
#define SHMX_FRAME_MAX_PAYLOAD (1u << 30)

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
