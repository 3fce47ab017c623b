/*
 * shmx-bench-rtt: round-trip latency against a ping-protocol host (shmx-pong
 * or `shmx pong`), recorded in an HdrHistogram-scheme histogram (tool_hdr.h).
 *
 *   shmx-bench-rtt --name NAME [--transport shm|uds] [--size B] [--count N]
 *                  [--warmup N] [--rate R] [--hgrm FILE]
 *
 * Back to back (default): each request is sent as soon as the previous echo
 * is back, and the sample is send-to-echo. Fixed rate (--rate R, requests per
 * second): request i is due at start + i/R; the sample runs from when it was
 * due, not from when it was sent, so a slow echo that delays the next
 * requests is charged to all of them (coordinated omission, as in wrk2 and
 * HdrHistogram's recordValueWithExpectedInterval).
 *
 * Every echo is checked (type, id, length, bytes) outside the timed span.
 * Prints one JSON object on stdout, times in nanoseconds:
 *   {"p50":..,"p90":..,"p99":..,"p999":..,"max":..,"mean":..,"count":..}
 * and, with --hgrm, the percentile distribution in microseconds.
 * Exit: 0, 1 a wrong or missing echo, 2 usage, 3 could not connect.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmx/shmx.h"
#include "tool_args.h"
#include "tool_hdr.h"
#include "tool_stats.h"

#define REPLY_TIMEOUT_NS 5000000000LL
#define HIGHEST_NS 60000000000LL /* anything slower than a minute is clamped */

typedef struct options {
    const char *name;
    const char *hgrm;
    uint32_t transport;
    uint32_t size;
    uint64_t count;
    uint64_t warmup;
    uint64_t rate;
} options_t;

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-bench-rtt --name NAME [--transport shm|uds] [--size BYTES] [--count N] [--warmup N]\n"
               "                      [--rate PER_SECOND] [--hgrm FILE]\n");
}

static int parse(int argc, char **argv, options_t *o) {
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},  {"transport", required_argument, NULL, 't'},
        {"size", required_argument, NULL, 's'},  {"count", required_argument, NULL, 'c'},
        {"warmup", required_argument, NULL, 'w'}, {"rate", required_argument, NULL, 'r'},
        {"hgrm", required_argument, NULL, 'g'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (options_t){.transport = SHMX_TRANSPORT_SHM, .size = 64, .count = 100000, .warmup = 5000};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'n': o->name = optarg; break;
        case 't': bad = tool_parse_transport(optarg, 0, &o->transport); break;
        case 's':
            bad = tool_parse_u64(optarg, 0, UINT32_MAX, &v);
            o->size = (uint32_t)v;
            break;
        case 'c': bad = tool_parse_u64(optarg, 1, UINT32_MAX, &o->count); break;
        case 'w': bad = tool_parse_u64(optarg, 0, UINT32_MAX, &o->warmup); break;
        case 'r': bad = tool_parse_u64(optarg, 1, 1000000000, &o->rate); break;
        case 'g': o->hgrm = optarg; break;
        case 'h': usage(stdout); exit(TOOL_EXIT_OK);
        default: bad = 1;
        }
        if (bad) return -1;
    }
    return optind == argc && o->name ? 0 : -1;
}

static int fail(const char *what, uint64_t i, int64_t rc) {
    fprintf(stderr, "bench-rtt: %s failed at request %llu: %s\n", what, (unsigned long long)i,
            shmx_strerror((int)rc));
    return rc == -SHMX_ECLOSED || rc == -SHMX_EHOSTGONE ? TOOL_EXIT_CONNECT : TOOL_EXIT_MISMATCH;
}

static int check_echo(const shmx_message_t *m, int64_t id, const uint8_t *payload, uint32_t size) {
    if (m->type != SHMX_TYPE_RESPONSE || m->id != (uint64_t)id || m->length != size ||
        (size && memcmp(m->data, payload, size) != 0)) {
        fprintf(stderr, "bench-rtt: wrong echo of request %lld (type %u id %llu length %u)\n", (long long)id,
                m->type, (unsigned long long)m->id, m->length);
        return TOOL_EXIT_MISMATCH;
    }
    return 0;
}

static int run(shmx_channel_t *ch, const options_t *o, uint8_t *payload, tool_hdr_t *h) {
    int64_t interval = o->rate ? (int64_t)(1000000000ULL / o->rate) : 0;
    int64_t start = 0;
    for (uint64_t i = 0; i < o->warmup + o->count; i++) {
        payload[0] = (uint8_t)i; /* each request differs, so a stale echo can not pass */
        int64_t t0;
        if (i == o->warmup) start = tool_now_ns();
        if (interval && i >= o->warmup) {
            t0 = start + (int64_t)(i - o->warmup) * interval; /* when this request was due */
            while (tool_now_ns() < t0) {
                /* Spin, not sleep: a sleep would add its own wake-up delay to the next sample. */
            }
        } else {
            t0 = tool_now_ns();
        }
        int64_t id = shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, payload, o->size, REPLY_TIMEOUT_NS);
        if (id < 0) return fail("send", i, id);
        shmx_message_t m;
        int r = shmx_channel_receive(ch, &m, REPLY_TIMEOUT_NS);
        int64_t t1 = tool_now_ns();
        if (r < 0) return fail("receive", i, r);
        int rc = check_echo(&m, id, payload, o->size);
        r = shmx_channel_release(ch, &m);
        if (rc != 0) return rc;
        if (r < 0) return fail("release", i, r);
        if (i >= o->warmup) tool_hdr_record(h, t1 - t0);
    }
    return 0;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    shmx_guest_t *g = NULL;
    int rc = shmx_guest_connect(o.name, o.transport, 10000000000LL, &g);
    if (rc < 0) {
        fprintf(stderr, "bench-rtt: could not connect to '%s': %s\n", o.name, shmx_strerror(rc));
        return TOOL_EXIT_CONNECT;
    }
    shmx_channel_t *ch = shmx_guest_channel(g);
    tool_hdr_t h;
    uint8_t *payload = malloc(o.size ? o.size : 1);
    if (o.size > shmx_channel_max_payload(ch)) {
        fprintf(stderr, "bench-rtt: --size %u is above the host's maximum payload %u\n", o.size,
                shmx_channel_max_payload(ch));
        rc = TOOL_EXIT_USAGE;
    } else if (!payload || tool_hdr_init(&h, HIGHEST_NS) != 0) {
        fprintf(stderr, "bench-rtt: out of memory\n");
        rc = TOOL_EXIT_MISMATCH;
    } else {
        for (uint32_t i = 0; i < o.size; i++) payload[i] = (uint8_t)(i * 7u);
        rc = run(ch, &o, payload, &h);
        if (rc == 0) {
            printf("{\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"p999\":%lld,\"max\":%lld,\"mean\":%.1f,\"count\":%lld}\n",
                   (long long)tool_hdr_percentile(&h, 50), (long long)tool_hdr_percentile(&h, 90),
                   (long long)tool_hdr_percentile(&h, 99), (long long)tool_hdr_percentile(&h, 99.9),
                   (long long)tool_hdr_max(&h), tool_hdr_mean(&h), (long long)h.total);
            FILE *f = o.hgrm ? fopen(o.hgrm, "w") : NULL;
            if (o.hgrm && (!f || tool_hdr_write_hgrm(&h, f, 1000.0) != 0)) {
                perror("bench-rtt: writing the .hgrm file");
                rc = TOOL_EXIT_MISMATCH;
            }
            if (f) fclose(f);
        }
        tool_hdr_free(&h);
    }
    free(payload);
    shmx_guest_close(g);
    return rc;
}
