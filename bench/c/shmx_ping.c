/*
 * shmx-ping: the guest side of the ping protocol (DESIGN.md section 5).
 *
 * Latency mode: warmup + count requests of type 2 (DATA), each waiting for
 * its echo (type 4, same id, same bytes); prints
 *   rtt_ns p50=... p90=... p99=... p999=... max=... count=...
 * Throughput mode: count messages of type 256 (sink) as fast as the channel
 * takes them, then one type 257 (sink end) whose reply carries the host's
 * count and byte total; prints
 *   throughput msgs_per_s=... mbytes_per_s=... count=... size=...
 * With --memcpy, throughput mode first measures memcpy of the same size in
 * this process and prints
 *   memcpy mbytes_per_s=... size=...
 * Any size up to the host's maximum message works; above one frame's
 * payload the messages travel as fragments (echoes are reassembled).
 * Payload byte k of message id I is (uint8_t)(k * 7 + I * 13).
 *
 * With --ticket it attaches as a guest its host spawned (shmx_host_spawn),
 * by the spawn ticket in $SHMX_TICKET, and pings the same way.
 *
 * Exit: 0 success, 1 a wrong or missing echo or count, 2 usage, 3 could not
 * connect or the host closed the channel, 4 the host is gone (died or was
 * destroyed), 5 the host expelled this guest (liveness); 4 and 5 print one
 * stderr line saying so.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmx/shmx.h"
#include "tool_args.h"
#include "tool_payload.h"
#include "tool_stats.h"

#define REPLY_TIMEOUT_NS 5000000000LL
#define SINK_END_TIMEOUT_NS 30000000000LL /* the host may still be draining a full ring and pool */
#define TYPE_SINK 256u
#define TYPE_SINK_END 257u

typedef struct options {
    const char *name;
    int ticket; /* attach by the spawn ticket in SHMX_TICKET instead of by name */
    uint32_t transport;
    uint32_t size;
    uint64_t count;
    uint64_t warmup;
    int throughput;
    int memcpy_baseline;
    uint64_t timeout_ms;
    int spin_set;
    uint32_t spin;
} options_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: shmx-ping --name NAME [--transport shm|uds|auto] [--size BYTES] [--count N] [--warmup N]\n"
            "                 [--throughput [--memcpy]] [--timeout-ms T] [--spin N]\n"
            "       shmx-ping --ticket [the same options but --name and --transport]\n"
            "  --ticket      attach as a guest the host spawned, by the spawn ticket in $SHMX_TICKET\n"
            "                (shared memory), instead of connecting by name\n"
            "  --transport   shm (default), uds, or auto (shm if the host can give it, else uds)\n"
            "  --size        payload bytes per message (default 64)\n"
            "  --count       measured messages (default 100000)\n"
            "  --warmup      unmeasured messages first, latency mode (default 1000)\n"
            "  --throughput  one-way sink messages instead of round trips\n"
            "  --memcpy      with --throughput: print memcpy's rate for the same size first\n"
            "  --timeout-ms  how long to wait for the host to appear (default 10000)\n"
            "  --spin        busy polls before a wait yields and sleeps (channel idle strategy)\n"
            "exit: 0 ok, 1 wrong or missing echo, 2 usage, 3 could not connect, 4 the host is gone,\n"
            "      5 expelled by the host\n");
}

static int parse(int argc, char **argv, options_t *o) {
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},    {"transport", required_argument, NULL, 't'},
        {"size", required_argument, NULL, 's'},    {"count", required_argument, NULL, 'c'},
        {"warmup", required_argument, NULL, 'w'},  {"throughput", no_argument, NULL, 'T'},
        {"timeout-ms", required_argument, NULL, 'o'}, {"spin", required_argument, NULL, 'p'},
        {"memcpy", no_argument, NULL, 'm'},        {"help", no_argument, NULL, 'h'},
        {"ticket", no_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    *o = (options_t){.transport = SHMX_TRANSPORT_SHM, .size = 64, .count = 100000, .warmup = 1000,
                     .timeout_ms = 10000};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n': o->name = optarg; break;
        case 't':
            if (tool_parse_transport(optarg, 0, &o->transport) != 0) return -1;
            break;
        case 's':
            if (tool_parse_u64(optarg, 0, UINT32_MAX, &v) != 0) return -1;
            o->size = (uint32_t)v;
            break;
        case 'c':
            if (tool_parse_u64(optarg, 1, UINT32_MAX, &o->count) != 0) return -1;
            break;
        case 'w':
            if (tool_parse_u64(optarg, 0, UINT32_MAX, &o->warmup) != 0) return -1;
            break;
        case 'T': o->throughput = 1; break;
        case 'k': o->ticket = 1; break;
        case 'm': o->memcpy_baseline = 1; break;
        case 'o':
            if (tool_parse_u64(optarg, 0, 86400000, &o->timeout_ms) != 0) return -1;
            break;
        case 'p':
            if (tool_parse_u64(optarg, 0, UINT32_MAX, &v) != 0) return -1;
            o->spin = (uint32_t)v;
            o->spin_set = 1;
            break;
        case 'h': usage(stdout); exit(TOOL_EXIT_OK);
        default: return -1;
        }
    }
    if (optind != argc || (o->ticket ? o->name != NULL : o->name == NULL)) return -1; /* exactly one of them */
    if (o->ticket && o->transport != SHMX_TRANSPORT_SHM) return -1;                   /* a ticket is shm only */
    return 0;
}

/* A failed receive or send: the channel ended (exit 3, 4, 5) or something broke (exit 1). */
static int fail_io(const char *what, uint64_t id, int64_t rc) {
    if (rc == -SHMX_EHOSTGONE || rc == -SHMX_EEXPELLED || rc == -SHMX_ECLOSED) {
        const char *how = rc == -SHMX_EHOSTGONE ? "the host is gone"
                          : rc == -SHMX_EEXPELLED ? "expelled by the host"
                                                  : "the host closed the channel";
        fprintf(stderr, "ping: %s (%s, message %llu): %s\n", how, what, (unsigned long long)id,
                shmx_strerror((int)rc));
        return rc == -SHMX_EHOSTGONE ? TOOL_EXIT_HOST_GONE : rc == -SHMX_EEXPELLED ? TOOL_EXIT_EXPELLED
                                                                               : TOOL_EXIT_CONNECT;
    }
    if (rc == -SHMX_EEMPTY) {
        fprintf(stderr, "ping: no reply to message %llu within %lld s\n", (unsigned long long)id,
                (long long)(REPLY_TIMEOUT_NS / 1000000000LL));
        return TOOL_EXIT_MISMATCH;
    }
    fprintf(stderr, "ping: %s failed at message %llu: %s\n", what, (unsigned long long)id, shmx_strerror((int)rc));
    return TOOL_EXIT_MISMATCH;
}

/* Check that a send or commit numbered the message as expected. Returns 0 or an exit code. */
static int check_sent(int64_t id, uint64_t want_id, const char *what) {
    if (id < 0) return fail_io(what, want_id, id);
    if ((uint64_t)id != want_id) {
        fprintf(stderr, "ping: %s returned id %lld, expected %llu\n", what, (long long)id, (unsigned long long)want_id);
        return TOOL_EXIT_MISMATCH;
    }
    return 0;
}

/* Send by claim: copy message @want_id's pattern from @src (tool_payload_source) into the claim, commit. */
static int claim_pattern(shmx_channel_t *ch, uint16_t type, const uint8_t *src, uint32_t size, uint64_t want_id) {
    void *buf;
    int rc = shmx_channel_claim(ch, size, REPLY_TIMEOUT_NS, &buf);
    if (rc < 0) return fail_io("claim", want_id, rc);
    memcpy(buf, src + tool_payload_shift(want_id), size);
    return check_sent(shmx_channel_commit(ch, type, 0, 0), want_id, "commit");
}

/* Check an echo of request @id of @size bytes. Returns 0 or TOOL_EXIT_MISMATCH. */
static int check_echo(const shmx_message_t *m, uint64_t id, uint32_t size) {
    if (m->type != SHMX_TYPE_RESPONSE || m->id != id || m->length != size) {
        fprintf(stderr, "ping: bad echo for message %llu: type %u id %llu length %u (want type 4 id %llu length %u)\n",
                (unsigned long long)id, m->type, (unsigned long long)m->id, m->length, (unsigned long long)id, size);
        return TOOL_EXIT_MISMATCH;
    }
    int64_t at = tool_payload_check(m->data, m->length, id);
    if (at >= 0) {
        fprintf(stderr, "ping: echo of message %llu differs at byte %lld\n", (unsigned long long)id, (long long)at);
        return TOOL_EXIT_MISMATCH;
    }
    return 0;
}

/* A reassembling receive running beside the send of a fragmented message: pong echoes each
 * fragment as it arrives, so the echo must be drained while the request is still going out. */
typedef struct echo_receive {
    shmx_channel_t *ch;
    void *buf;
    size_t cap;
    shmx_message_t meta;
    int64_t result;
    int64_t done_ns;
} echo_receive_t;

static void *receive_echo(void *arg) {
    echo_receive_t *e = arg;
    e->result = shmx_channel_receive_message(e->ch, &e->buf, &e->cap, &e->meta, REPLY_TIMEOUT_NS);
    e->done_ns = tool_now_ns();
    return NULL;
}

/* One fragmented round trip: send @payload while a thread receives the echo. */
static int round_trip_fragmented(shmx_channel_t *ch, const uint8_t *payload, uint32_t size, uint64_t id,
                                 echo_receive_t *e, int64_t *rtt) {
    pthread_t t;
    int64_t t0 = tool_now_ns();
    if (pthread_create(&t, NULL, receive_echo, e) != 0) {
        fprintf(stderr, "ping: could not start the echo receiver\n");
        return TOOL_EXIT_MISMATCH;
    }
    int rc = check_sent(shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, payload, size, REPLY_TIMEOUT_NS), id, "send");
    pthread_join(t, NULL);
    if (rc != 0) return rc;
    if (e->result < 0) return fail_io("receive", id, e->result);
    *rtt = e->done_ns - t0;
    return check_echo(&e->meta, id, size);
}

static int run_latency(shmx_channel_t *ch, const options_t *o) {
    uint64_t total = o->warmup + o->count;
    uint64_t *samples = malloc(o->count * sizeof *samples);
    if (!samples) {
        fprintf(stderr, "ping: out of memory for %llu samples\n", (unsigned long long)o->count);
        return TOOL_EXIT_MISMATCH;
    }
    uint8_t *payload = malloc(o->size ? o->size : 1);
    if (!payload) {
        free(samples);
        fprintf(stderr, "ping: out of memory for a %u-byte payload\n", o->size);
        return TOOL_EXIT_MISMATCH;
    }
    int rc = 0;
    int fragmented = o->size > shmx_channel_max_payload(ch);
    echo_receive_t echo = {.ch = ch};
    for (uint64_t i = 0; i < total && rc == 0; i++) {
        uint64_t id = i + 1; /* the channel numbers our messages 1, 2, 3, ... */
        /* The payload is made before the clock starts (as the Java ping does): the round
         * trip measures the copy into the channel, not the pattern generator. */
        tool_payload_fill(payload, o->size, id);
        if (fragmented) {
            int64_t rtt = 0;
            rc = round_trip_fragmented(ch, payload, o->size, id, &echo, &rtt);
            if (rc == 0 && i >= o->warmup) samples[i - o->warmup] = (uint64_t)rtt;
            continue;
        }
        int64_t t0 = tool_now_ns();
        rc = check_sent(shmx_channel_send(ch, SHMX_TYPE_DATA, 0, 0, payload, o->size, REPLY_TIMEOUT_NS), id, "send");
        if (rc != 0) break;
        shmx_message_t m;
        int r = shmx_channel_receive(ch, &m, REPLY_TIMEOUT_NS);
        int64_t t1 = tool_now_ns();
        if (r < 0) {
            rc = fail_io("receive", id, r);
            break;
        }
        rc = check_echo(&m, id, o->size);
        r = shmx_channel_release(ch, &m);
        if (rc == 0 && r < 0) rc = fail_io("release", id, r);
        if (i >= o->warmup) samples[i - o->warmup] = (uint64_t)(t1 - t0);
    }
    if (rc == 0) {
        tool_percentiles_t p;
        tool_percentiles(samples, o->count, &p);
        tool_print_percentiles(stdout, "rtt_ns", &p);
    }
    free(echo.buf);
    free(payload);
    free(samples);
    return rc;
}

static uint64_t get_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* The same for a message of any size: the pattern is copied straight into each fragment. */
static int write_pattern(shmx_channel_t *ch, uint16_t type, const uint8_t *src, uint32_t size, uint64_t want_id) {
    shmx_writer_t w;
    int rc = shmx_writer_begin(&w, ch, type, 0);
    if (rc == 0) rc = shmx_writer_size_hint(&w, size);
    if (rc == 0) rc = (int)shmx_writer_write(&w, src + tool_payload_shift(want_id), size, REPLY_TIMEOUT_NS);
    if (rc < 0) {
        shmx_writer_abort(&w);
        return fail_io("write", want_id, rc);
    }
    return check_sent(shmx_writer_finish(&w, REPLY_TIMEOUT_NS), want_id, "finish");
}

/* memcpy's rate for @size-byte copies between two buffers, about half a second of them. */
static void print_memcpy_rate(uint32_t size) {
    size_t len = size ? size : 1;
    uint8_t *a = malloc(len), *b = malloc(len);
    if (!a || !b) {
        free(a);
        free(b);
        return;
    }
    memset(a, 1, len);
    memset(b, 2, len);
    uint64_t n = 0;
    int64_t t0 = tool_now_ns(), t1;
    do {
        for (int k = 0; k < 16; k++, n++) memcpy((n & 1) ? a : b, (n & 1) ? b : a, len);
        t1 = tool_now_ns();
    } while (t1 - t0 < 500000000LL);
    printf("memcpy mbytes_per_s=%.2f size=%u\n", (double)n * len / ((double)(t1 - t0) / 1e9) / 1e6, size);
    free(a);
    free(b);
}

static int run_throughput(shmx_channel_t *ch, const options_t *o) {
    if (o->memcpy_baseline) print_memcpy_rate(o->size);
    int fragmented = o->size > shmx_channel_max_payload(ch);
    uint8_t *src = tool_payload_source(o->size);
    if (src == NULL) {
        fprintf(stderr, "ping: out of memory for a %u-byte payload\n", o->size);
        return TOOL_EXIT_MISMATCH;
    }
    int64_t t0 = tool_now_ns();
    for (uint64_t i = 0; i < o->count; i++) {
        int rc = fragmented ? write_pattern(ch, TYPE_SINK, src, o->size, i + 1)
                            : claim_pattern(ch, TYPE_SINK, src, o->size, i + 1);
        if (rc != 0) {
            free(src);
            return rc;
        }
    }
    free(src);
    uint64_t end_id = o->count + 1;
    int64_t id = shmx_channel_send(ch, TYPE_SINK_END, 0, 0, NULL, 0, REPLY_TIMEOUT_NS);
    if (id < 0) return fail_io("send", end_id, id);
    shmx_message_t m;
    int r = shmx_channel_receive(ch, &m, SINK_END_TIMEOUT_NS);
    int64_t t1 = tool_now_ns();
    if (r < 0) return fail_io("receive", end_id, r);
    int rc = 0;
    if (m.type != SHMX_TYPE_RESPONSE || m.id != (uint64_t)id || m.length != 16) {
        fprintf(stderr, "ping: bad sink-end reply: type %u id %llu length %u\n", m.type, (unsigned long long)m.id,
                m.length);
        rc = TOOL_EXIT_MISMATCH;
    } else {
        uint64_t n = get_le64(m.data), bytes = get_le64((const uint8_t *)m.data + 8);
        if (n != o->count || bytes != o->count * o->size) {
            fprintf(stderr, "ping: the host counted %llu messages / %llu bytes, sent %llu / %llu\n",
                    (unsigned long long)n, (unsigned long long)bytes, (unsigned long long)o->count,
                    (unsigned long long)(o->count * o->size));
            rc = TOOL_EXIT_MISMATCH;
        }
    }
    r = shmx_channel_release(ch, &m);
    if (rc == 0 && r < 0) rc = fail_io("release", end_id, r);
    if (rc != 0) return rc;
    double secs = (double)(t1 - t0) / 1e9;
    printf("throughput msgs_per_s=%.0f mbytes_per_s=%.2f count=%llu size=%u\n", (double)o->count / secs,
           (double)o->count * o->size / secs / 1e6, (unsigned long long)o->count, o->size);
    return 0;
}

int main(int argc, char **argv) {
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    shmx_guest_t *g = NULL;
    int rc = o.ticket ? shmx_guest_attach_ticket(NULL, (int64_t)o.timeout_ms * 1000000LL, &g)
                      : shmx_guest_connect(o.name, o.transport, (int64_t)o.timeout_ms * 1000000LL, &g);
    if (rc < 0) {
        if (o.ticket) fprintf(stderr, "ping: could not attach by the spawn ticket in $SHMX_TICKET: %s\n", shmx_strerror(rc));
        else fprintf(stderr, "ping: could not connect to '%s': %s\n", o.name, shmx_strerror(rc));
        return TOOL_EXIT_CONNECT;
    }
    shmx_channel_t *ch = shmx_guest_channel(g);
    if (o.size > shmx_channel_max_message(ch)) {
        fprintf(stderr, "ping: --size %u is above the host's maximum message of %u bytes\n", o.size,
                shmx_channel_max_message(ch));
        shmx_guest_close(g);
        return TOOL_EXIT_USAGE;
    }
    if (o.spin_set) {
        shmx_config_t d; /* --spin changes the spin phase only; the yield phase keeps its default */
        shmx_config_default(&d);
        shmx_channel_set_idle(ch, o.spin, d.yield_iterations);
    }
    rc = o.throughput ? run_throughput(ch, &o) : run_latency(ch, &o);
    fflush(stdout);
    shmx_guest_close(g);
    return rc;
}
