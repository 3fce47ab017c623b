/*
 * shmx-bench-tput: one-way throughput into a ping-protocol host (shmx-pong
 * or `shmx pong`), from one or several producers, copying or zero-copy.
 *
 *   shmx-bench-tput --name NAME [--transport shm|uds] [--size B] [--count N]
 *                   [--producers P] [--api copy|zerocopy]
 *
 * Each producer is a thread with its own guest connection (its own channel;
 * the host serves each in its own thread). After all have connected they
 * start together; each sends N sink messages (type 256) and then a sink end
 * (type 257), whose reply carries the host's count and byte total, checked
 * against what was sent. The time runs from the common start to the last
 * producer's reply, so it covers every message being received and released.
 *   copy:     shmx_channel_send from a prepared buffer (one copy)
 *   zerocopy: shmx_channel_claim, write the payload in place, commit
 * Prints one JSON object: {"msgs_per_s":..,"bytes_per_s":..,"count":..,"seconds":..}
 * Exit: 0, 1 a failure or wrong count, 2 usage, 3 could not connect.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmx/shmx.h"
#include "tool_args.h"
#include "tool_stats.h"

#define SEND_TIMEOUT_NS 5000000000LL
#define SINK_END_TIMEOUT_NS 30000000000LL /* the host may still be draining a full ring */
#define TYPE_SINK 256u
#define TYPE_SINK_END 257u
#define MAX_PRODUCERS 16

typedef struct options {
    const char *name;
    uint32_t transport;
    uint32_t size;
    uint64_t count;
    uint32_t producers;
    int zerocopy;
} options_t;

typedef struct producer {
    const options_t *o;
    shmx_guest_t *guest;
    pthread_barrier_t *start;
    int64_t t0, t1;
    int rc;
} producer_t;

static void usage(FILE *f) {
    fprintf(f, "usage: shmx-bench-tput --name NAME [--transport shm|uds] [--size BYTES] [--count N]\n"
               "                       [--producers P (1..16)] [--api copy|zerocopy]\n");
}

static int parse(int argc, char **argv, options_t *o) {
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},      {"transport", required_argument, NULL, 't'},
        {"size", required_argument, NULL, 's'},      {"count", required_argument, NULL, 'c'},
        {"producers", required_argument, NULL, 'p'}, {"api", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    *o = (options_t){.transport = SHMX_TRANSPORT_SHM, .size = 64, .count = 1000000, .producers = 1};
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
        case 'p':
            bad = tool_parse_u64(optarg, 1, MAX_PRODUCERS, &v);
            o->producers = (uint32_t)v;
            break;
        case 'a':
            if (strcmp(optarg, "copy") == 0) o->zerocopy = 0;
            else if (strcmp(optarg, "zerocopy") == 0) o->zerocopy = 1;
            else bad = 1;
            break;
        case 'h': usage(stdout); exit(TOOL_EXIT_OK);
        default: bad = 1;
        }
        if (bad) return -1;
    }
    return optind == argc && o->name ? 0 : -1;
}

static uint64_t get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int fail(const char *what, int64_t rc) {
    fprintf(stderr, "bench-tput: %s failed: %s\n", what, shmx_strerror((int)rc));
    return rc == -SHMX_ECLOSED || rc == -SHMX_EHOSTGONE ? TOOL_EXIT_CONNECT : TOOL_EXIT_MISMATCH;
}

static int produce(shmx_channel_t *ch, const options_t *o, const uint8_t *payload) {
    for (uint64_t i = 0; i < o->count; i++) {
        if (o->zerocopy) {
            void *buf;
            int r = shmx_channel_claim(ch, o->size, SEND_TIMEOUT_NS, &buf);
            if (r < 0) return fail("claim", r);
            memset(buf, (int)(i & 0xFF), o->size); /* the producer writes its message in place */
            int64_t id = shmx_channel_commit(ch, TYPE_SINK, 0, 0);
            if (id < 0) return fail("commit", id);
        } else {
            int64_t id = shmx_channel_send(ch, TYPE_SINK, 0, 0, payload, o->size, SEND_TIMEOUT_NS);
            if (id < 0) return fail("send", id);
        }
    }
    int64_t id = shmx_channel_send(ch, TYPE_SINK_END, 0, 0, NULL, 0, SEND_TIMEOUT_NS);
    if (id < 0) return fail("send (sink end)", id);
    shmx_message_t m;
    int r = shmx_channel_receive(ch, &m, SINK_END_TIMEOUT_NS);
    if (r < 0) return fail("receive (sink end reply)", r);
    int rc = 0;
    if (m.type != SHMX_TYPE_RESPONSE || m.id != (uint64_t)id || m.length != 16) {
        fprintf(stderr, "bench-tput: bad sink-end reply: type %u id %llu length %u\n", m.type,
                (unsigned long long)m.id, m.length);
        rc = TOOL_EXIT_MISMATCH;
    } else if (get_le64(m.data) != o->count || get_le64((const uint8_t *)m.data + 8) != o->count * o->size) {
        fprintf(stderr, "bench-tput: the host counted %llu messages, %llu bytes; sent %llu, %llu\n",
                (unsigned long long)get_le64(m.data), (unsigned long long)get_le64((const uint8_t *)m.data + 8),
                (unsigned long long)o->count, (unsigned long long)(o->count * o->size));
        rc = TOOL_EXIT_MISMATCH;
    }
    r = shmx_channel_release(ch, &m);
    return rc != 0 ? rc : r < 0 ? fail("release", r) : 0;
}

static void *producer_main(void *arg) {
    producer_t *p = arg;
    uint8_t *payload = malloc(p->o->size ? p->o->size : 1);
    if (payload) memset(payload, 0x5A, p->o->size);
    pthread_barrier_wait(p->start);
    p->t0 = tool_now_ns();
    p->rc = payload ? produce(shmx_guest_channel(p->guest), p->o, payload) : TOOL_EXIT_MISMATCH;
    p->t1 = tool_now_ns();
    free(payload);
    return NULL;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    producer_t ps[MAX_PRODUCERS] = {0};
    pthread_t threads[MAX_PRODUCERS];
    pthread_barrier_t start;
    int rc = 0;
    uint32_t connected = 0;
    for (; connected < o.producers; connected++) {
        ps[connected] = (producer_t){.o = &o, .start = &start};
        int r = shmx_guest_connect(o.name, o.transport, 10000000000LL, &ps[connected].guest);
        if (r < 0) {
            fprintf(stderr, "bench-tput: could not connect to '%s': %s\n", o.name, shmx_strerror(r));
            rc = TOOL_EXIT_CONNECT;
            break;
        }
        if (o.size > shmx_channel_max_payload(shmx_guest_channel(ps[connected].guest))) {
            fprintf(stderr, "bench-tput: --size %u is above the host's maximum payload\n", o.size);
            rc = TOOL_EXIT_USAGE;
            connected++;
            break;
        }
    }
    uint32_t started = 0;
    if (rc == 0) {
        pthread_barrier_init(&start, NULL, o.producers);
        for (; started < o.producers; started++)
            if (pthread_create(&threads[started], NULL, producer_main, &ps[started]) != 0) break;
        if (started < o.producers) {
            /* The barrier can never open: nothing was sent yet, so end the run here. */
            fprintf(stderr, "bench-tput: could not start producer thread %u\n", started);
            for (uint32_t i = 0; i < connected; i++) shmx_channel_close(shmx_guest_channel(ps[i].guest));
            _exit(TOOL_EXIT_MISMATCH);
        }
        for (uint32_t i = 0; i < started; i++) pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start);
    }
    int64_t t0 = INT64_MAX, t1 = 0;
    for (uint32_t i = 0; i < started; i++) {
        if (ps[i].rc != 0 && rc == 0) rc = ps[i].rc;
        if (ps[i].t0 < t0) t0 = ps[i].t0;
        if (ps[i].t1 > t1) t1 = ps[i].t1;
    }
    for (uint32_t i = 0; i < connected; i++) shmx_guest_close(ps[i].guest);
    if (rc != 0) return rc;
    double secs = (double)(t1 - t0) / 1e9;
    double msgs = (double)o.count * o.producers;
    printf("{\"msgs_per_s\":%.0f,\"bytes_per_s\":%.0f,\"count\":%.0f,\"seconds\":%.6f}\n", msgs / secs,
           msgs * o.size / secs, msgs, secs);
    return 0;
}
