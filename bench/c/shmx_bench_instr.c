/*
 * shmx-bench-instr: the C hot paths in one process, for instruction counting
 * under valgrind --tool=callgrind (the performance gate's exact C measure).
 *
 *   valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=DIR/cg.%p \
 *       build/bin/shmx-bench-instr
 *
 * A host and a guest of one segment live in this process (a thread only for
 * the connect handshake); then one thread plays both sides in turn, so every
 * call finds its data or room at once and never waits: the instruction count
 * is the same in every run of one build. Each section runs once unmeasured
 * (lazy symbol binding, first-touch page faults), then a fixed number of
 * messages with collection on, and ends with a callgrind dump named after the
 * section; setup and teardown are never counted, so a 10% slowdown of one
 * path is 10% of its section. Prints one line per section:
 *   section NAME messages=N
 * (the gate divides the dump's instruction total by N). Without valgrind it
 * runs the same work, which checks that every section succeeds.
 *
 * Sections (guest -> host unless named otherwise; sizes are payload bytes):
 *   rtt_SIZE          round trip: guest send; host receive, send the echo, release; guest receive, release
 *   send_SIZE         guest send; host receive, release
 *   claim_SIZE        guest claim, commit; host receive, release
 *   receive_copy_SIZE guest send; host receive_copy (copy, CRC over the copy, release)
 *   batch_64          32 guest sends; host receive_batch, 32 releases (per message)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmx/shmx.h"

/* Exit status when built without valgrind's header: scripts/bench then rebuilds this program. */
#define EXIT_NO_CALLGRIND 4

#if !__has_include(<valgrind/callgrind.h>)
/* The header comes with Debian's valgrind package; a build that ran before it was installed
 * (scripts/test on a fresh machine) must still succeed, so this build only says what is missing. */
int main(void) {
    fprintf(stderr, "shmx-bench-instr: built without <valgrind/callgrind.h>: install valgrind and rebuild\n");
    return EXIT_NO_CALLGRIND;
}
#else
#include <valgrind/callgrind.h>

#define CONNECT_TIMEOUT_NS 10000000000LL
#define BATCH 32

typedef struct pair {
    shmx_channel_t *host; /* host side of the channel */
    shmx_channel_t *guest;
    uint8_t *payload;     /* what the guest sends */
    uint8_t *copy;        /* receive_copy destination */
} pair_t;

typedef struct connector {
    const char *name;
    shmx_guest_t *guest;
    int rc;
} connector_t;

static void *connect_main(void *arg) {
    connector_t *c = arg;
    c->rc = shmx_guest_connect(c->name, SHMX_TRANSPORT_SHM, CONNECT_TIMEOUT_NS, &c->guest);
    return NULL;
}

static int check(const char *what, int64_t rc) {
    if (rc >= 0) return 0;
    fprintf(stderr, "bench-instr: %s failed: %s\n", what, shmx_strerror((int)rc));
    return -1;
}

/* Nothing waits: every call below has its data or room already (timeout 0). */
static int rtt(pair_t *p, uint32_t size) {
    shmx_message_t m;
    if (check("guest send", shmx_channel_send(p->guest, SHMX_TYPE_DATA, 0, 0, p->payload, size, 0))) return -1;
    if (check("host receive", shmx_channel_receive(p->host, &m, 0))) return -1;
    if (check("host echo", shmx_channel_send(p->host, SHMX_TYPE_RESPONSE, 0, m.id, m.data, m.length, 0))) return -1;
    if (check("host release", shmx_channel_release(p->host, &m))) return -1;
    if (check("guest receive", shmx_channel_receive(p->guest, &m, 0))) return -1;
    return check("guest release", shmx_channel_release(p->guest, &m));
}

static int send_one(pair_t *p, uint32_t size) {
    shmx_message_t m;
    if (check("send", shmx_channel_send(p->guest, SHMX_TYPE_DATA, 0, 0, p->payload, size, 0))) return -1;
    if (check("receive", shmx_channel_receive(p->host, &m, 0))) return -1;
    return check("release", shmx_channel_release(p->host, &m));
}

static int claim_one(pair_t *p, uint32_t size) {
    void *buf;
    shmx_message_t m;
    if (check("claim", shmx_channel_claim(p->guest, size, 0, &buf))) return -1;
    if (check("commit", shmx_channel_commit(p->guest, SHMX_TYPE_DATA, 0, 0))) return -1;
    if (check("receive", shmx_channel_receive(p->host, &m, 0))) return -1;
    return check("release", shmx_channel_release(p->host, &m));
}

static int receive_copy_one(pair_t *p, uint32_t size) {
    if (check("send", shmx_channel_send(p->guest, SHMX_TYPE_DATA, 0, 0, p->payload, size, 0))) return -1;
    int64_t n = shmx_channel_receive_copy(p->host, p->copy, size, NULL, 0);
    if (check("receive_copy", n)) return -1;
    if ((uint32_t)n != size) {
        fprintf(stderr, "bench-instr: receive_copy returned %lld bytes, sent %u\n", (long long)n, size);
        return -1;
    }
    return 0;
}

/* BATCH messages: sent one by one, received in batches (a batch may stop short). */
static int batch_of(pair_t *p, uint32_t size) {
    shmx_message_t m[BATCH];
    for (int i = 0; i < BATCH; i++)
        if (check("send", shmx_channel_send(p->guest, SHMX_TYPE_DATA, 0, 0, p->payload, size, 0))) return -1;
    for (int got = 0; got < BATCH;) {
        int n = shmx_channel_receive_batch(p->host, m, BATCH - got, 0);
        if (check("receive_batch", n)) return -1;
        for (int i = 0; i < n; i++)
            if (check("release", shmx_channel_release(p->host, &m[i]))) return -1;
        got += n;
    }
    return 0;
}

typedef struct section {
    const char *name;
    int (*step)(pair_t *, uint32_t);
    uint32_t size;
    uint32_t steps;        /* measured steps */
    uint32_t per_step;     /* messages per step */
} section_t;

/* Counts keep each section at a few million instructions: large enough that one path's 1% shows. */
static const section_t SECTIONS[] = {
    {"rtt_64", rtt, 64, 2000, 1},
    {"rtt_1024", rtt, 1024, 1000, 1},
    {"rtt_65536", rtt, 65536, 100, 1},
    {"rtt_1048576", rtt, 1048576, 10, 1},
    {"send_64", send_one, 64, 2000, 1},
    {"send_65536", send_one, 65536, 100, 1},
    {"claim_64", claim_one, 64, 2000, 1},
    {"claim_65536", claim_one, 65536, 100, 1},
    {"receive_copy_64", receive_copy_one, 64, 2000, 1},
    {"receive_copy_65536", receive_copy_one, 65536, 100, 1},
    {"batch_64", batch_of, 64, 60, BATCH},
};

static int run_section(pair_t *p, const section_t *s) {
    for (uint32_t i = 0; i < s->steps; i++) /* warm-up: the same work, not counted */
        if (s->step(p, s->size) != 0) return -1;
    CALLGRIND_TOGGLE_COLLECT;
    int rc = 0;
    for (uint32_t i = 0; i < s->steps && rc == 0; i++) rc = s->step(p, s->size);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(s->name);
    if (rc == 0) printf("section %s messages=%u\n", s->name, s->steps * s->per_step);
    return rc;
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: shmx-bench-instr (no arguments; run under valgrind --tool=callgrind "
                        "--collect-atstart=no)\n");
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "bench-instr-%ld", (long)getpid());
    shmx_host_t *host = NULL;
    int rc = shmx_host_create(name, NULL, &host);
    if (check("host create", rc)) return 1;

    connector_t c = {.name = name};
    pthread_t t;
    shmx_channel_t *hc = NULL;
    if (pthread_create(&t, NULL, connect_main, &c) != 0) {
        fprintf(stderr, "bench-instr: pthread_create failed\n");
        shmx_host_destroy(host);
        return 1;
    }
    rc = shmx_host_accept(host, CONNECT_TIMEOUT_NS, &hc);
    pthread_join(t, NULL);
    if (check("accept", rc) || check("connect", c.rc)) {
        shmx_guest_close(c.guest);
        shmx_host_destroy(host);
        return 1;
    }

    pair_t p = {.host = hc, .guest = shmx_guest_channel(c.guest)};
    uint32_t max = shmx_channel_max_payload(p.guest);
    p.payload = malloc(1048576);
    p.copy = malloc(1048576);
    rc = p.payload && p.copy ? 0 : -1;
    if (rc != 0) fprintf(stderr, "bench-instr: out of memory\n");
    else
        for (uint32_t i = 0; i < 1048576; i++) p.payload[i] = (uint8_t)(i * 7u);
    for (size_t i = 0; rc == 0 && i < sizeof SECTIONS / sizeof SECTIONS[0]; i++) {
        if (SECTIONS[i].size > max) {
            fprintf(stderr, "bench-instr: section %s needs %u-byte payloads, the channel takes %u\n",
                    SECTIONS[i].name, SECTIONS[i].size, max);
            rc = -1;
            break;
        }
        rc = run_section(&p, &SECTIONS[i]);
    }
    free(p.payload);
    free(p.copy);
    shmx_guest_close(c.guest);
    shmx_channel_free(hc);
    shmx_host_destroy(host);
    return rc == 0 ? 0 : 1;
}
#endif
