/*
 * The 24-byte frame header (DESIGN.md section 4): encoding, and decoding that
 * validates a private copy, so a peer writing the shared buffer at the same
 * time cannot change a field between its check and its use.
 */
#include <shmx/errors.h>
#include <shmx/frame.h>

#include <limits.h>
#include <string.h>

/* Field offsets in the header. */
#define FRAME_OFF_MAGIC 0
#define FRAME_OFF_VERSION 4
#define FRAME_OFF_FLAGS 5
#define FRAME_OFF_TYPE 6
#define FRAME_OFF_LENGTH 8
#define FRAME_OFF_ID 12
#define FRAME_OFF_CRC 20 /* the CRC covers the bytes before it */

/* Little-endian fields, byte by byte: no alignment or host-order assumption. */
static void frame_put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t frame_get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t frame_crc(const unsigned char *hdr, const void *payload, uint32_t len)
{
    return shmx_crc32(shmx_crc32(0, hdr, FRAME_OFF_CRC), payload, len);
}

/* Fill all 24 header bytes, the CRC over the payload included. */
static void frame_build_header(unsigned char hdr[SHMX_FRAME_HEADER_SIZE], uint16_t type, uint8_t flags,
                               uint64_t id, const void *payload, uint32_t len)
{
    frame_put_le(hdr + FRAME_OFF_MAGIC, SHMX_FRAME_MAGIC, 4);
    hdr[FRAME_OFF_VERSION] = SHMX_FRAME_VERSION;
    hdr[FRAME_OFF_FLAGS] = flags;
    frame_put_le(hdr + FRAME_OFF_TYPE, type, 2);
    frame_put_le(hdr + FRAME_OFF_LENGTH, len, 4);
    frame_put_le(hdr + FRAME_OFF_ID, id, 8);
    frame_put_le(hdr + FRAME_OFF_CRC, frame_crc(hdr, payload, len), 4);
}

int shmx_frame_header_encode(void *hdr, uint16_t type, uint8_t flags, uint64_t id, const void *payload,
                             uint32_t len)
{
    if (hdr == NULL || (payload == NULL && len > 0))
        return -SHMX_EINVAL;
    if (flags & ~SHMX_FLAGS_KNOWN)
        return -SHMX_EFLAGS;
    unsigned char local[SHMX_FRAME_HEADER_SIZE];
    frame_build_header(local, type, flags, id, payload, len);
    memcpy(hdr, local, sizeof local);
    return SHMX_FRAME_HEADER_SIZE;
}

int shmx_frame_encode(void *dst, size_t dst_len, uint16_t type, uint8_t flags, uint64_t id,
                      const void *payload, uint32_t len)
{
    if (dst == NULL || (payload == NULL && len > 0))
        return -SHMX_EINVAL;
    if (flags & ~SHMX_FLAGS_KNOWN)
        return -SHMX_EFLAGS;
    if (len > (uint32_t)INT_MAX - SHMX_FRAME_HEADER_SIZE)
        return -SHMX_ETOOBIG;
    if (dst_len < SHMX_FRAME_HEADER_SIZE + (size_t)len)
        return -SHMX_ESHORT;

    unsigned char *body = (unsigned char *)dst + SHMX_FRAME_HEADER_SIZE;
    /* Payload first: it may overlap the header's bytes, and the CRC covers what lands in dst. */
    if (len > 0 && payload != body)
        memmove(body, payload, len);
    unsigned char hdr[SHMX_FRAME_HEADER_SIZE];
    frame_build_header(hdr, type, flags, id, body, len);
    memcpy(dst, hdr, sizeof hdr);
    return (int)(SHMX_FRAME_HEADER_SIZE + len);
}

/*
 * Checks of a private header copy up to the length limit, in the order of
 * DESIGN.md section 4. Sets *len to the length field.
 */
static int frame_check_header(const unsigned char hdr[SHMX_FRAME_HEADER_SIZE], uint32_t max_payload,
                              uint32_t *len)
{
    if (frame_get_le(hdr + FRAME_OFF_MAGIC, 4) != SHMX_FRAME_MAGIC)
        return -SHMX_EMAGIC;
    if (hdr[FRAME_OFF_VERSION] != SHMX_FRAME_VERSION)
        return -SHMX_EVERSION;
    if (hdr[FRAME_OFF_FLAGS] & ~SHMX_FLAGS_KNOWN)
        return -SHMX_EFLAGS;
    *len = (uint32_t)frame_get_le(hdr + FRAME_OFF_LENGTH, 4);
    if (*len > max_payload)
        return -SHMX_ETOOBIG;
    return 0;
}

/* Verify the CRC over the header copy and @payload, then fill @out. */
static int frame_finish(const unsigned char hdr[SHMX_FRAME_HEADER_SIZE], const void *payload, uint32_t len,
                        shmx_frame_t *out)
{
    uint32_t crc = (uint32_t)frame_get_le(hdr + FRAME_OFF_CRC, 4);
    if (frame_crc(hdr, payload, len) != crc)
        return -SHMX_ECRC;
    out->version = hdr[FRAME_OFF_VERSION];
    out->flags = hdr[FRAME_OFF_FLAGS];
    out->type = (uint16_t)frame_get_le(hdr + FRAME_OFF_TYPE, 2);
    out->length = len;
    out->id = frame_get_le(hdr + FRAME_OFF_ID, 8);
    out->crc = crc;
    out->payload = payload;
    return 0;
}

int shmx_frame_decode_limit(const void *src, size_t src_len, uint32_t max_payload, shmx_frame_t *out)
{
    if (src == NULL || out == NULL)
        return -SHMX_EINVAL;
    if (src_len < SHMX_FRAME_HEADER_SIZE)
        return -SHMX_ESHORT;
    unsigned char hdr[SHMX_FRAME_HEADER_SIZE];
    memcpy(hdr, src, sizeof hdr);
    uint32_t len;
    int rc = frame_check_header(hdr, max_payload, &len);
    if (rc < 0)
        return rc;
    if (len > src_len - SHMX_FRAME_HEADER_SIZE)
        return -SHMX_ETRUNC;
    return frame_finish(hdr, (const unsigned char *)src + SHMX_FRAME_HEADER_SIZE, len, out);
}

int shmx_frame_decode(const void *src, size_t src_len, shmx_frame_t *out)
{
    return shmx_frame_decode_limit(src, src_len, SHMX_FRAME_MAX_PAYLOAD, out);
}

int shmx_frame_header_decode(const void *hdr, const void *payload, size_t payload_len, uint32_t max_payload,
                             shmx_frame_t *out)
{
    if (hdr == NULL || out == NULL || (payload == NULL && payload_len > 0))
        return -SHMX_EINVAL;
    unsigned char local[SHMX_FRAME_HEADER_SIZE];
    memcpy(local, hdr, sizeof local);
    uint32_t len;
    int rc = frame_check_header(local, max_payload, &len);
    if (rc < 0)
        return rc;
    if (len != payload_len)
        return -SHMX_ETRUNC;
    return frame_finish(local, payload, len, out);
}
