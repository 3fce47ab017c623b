#include "readmit.h"

#include <unistd.h>

/* The wait after the @strikes-th violation in a row (1 or more): 10 ms doubling, at most 1 s. */
static int64_t wait_after(uint32_t strikes) {
    int64_t w = SHMX_READMIT_FIRST_NS;
    for (uint32_t i = 1; i < strikes && w < SHMX_READMIT_MAX_NS; i++) w *= 2;
    return w < SHMX_READMIT_MAX_NS ? w : SHMX_READMIT_MAX_NS;
}

void shmx_readmit_init(shmx_readmit_t *r, pid_t own_pid) {
    for (uint32_t i = 0; i < SHMX_READMIT_PIDS; i++) r->entry[i] = (shmx_readmit_entry_t){.held_sock = -1};
    r->own_pid = own_pid;
    r->held_total = 0;
}

void shmx_readmit_fini(shmx_readmit_t *r) {
    for (uint32_t i = 0; i < SHMX_READMIT_PIDS; i++) {
        if (r->entry[i].held_sock >= 0) close(r->entry[i].held_sock);
        r->entry[i] = (shmx_readmit_entry_t){.held_sock = -1};
    }
}

static shmx_readmit_entry_t *find(shmx_readmit_t *r, pid_t pid) {
    for (uint32_t i = 0; i < SHMX_READMIT_PIDS; i++)
        if (r->entry[i].pid == pid) return &r->entry[i];
    return NULL;
}

/* An entry for a process not in the table: a free one, else the one forgotten soonest that holds nothing. */
static shmx_readmit_entry_t *vacate(shmx_readmit_t *r) {
    shmx_readmit_entry_t *best = NULL;
    for (uint32_t i = 0; i < SHMX_READMIT_PIDS; i++) {
        shmx_readmit_entry_t *e = &r->entry[i];
        if (e->pid == 0) return e;
        if (e->held_sock < 0 && (best == NULL || e->forget_ns < best->forget_ns)) best = e;
    }
    return best;
}

void shmx_readmit_strike(shmx_readmit_t *r, pid_t pid, int64_t now) {
    if (pid <= 0 || pid == r->own_pid) return;
    shmx_readmit_entry_t *e = find(r, pid);
    if (e == NULL) {
        e = vacate(r);
        if (e == NULL) return; /* every entry holds a connection: this one is not remembered */
        *e = (shmx_readmit_entry_t){.pid = pid, .held_sock = -1};
    }
    if (now >= e->forget_ns) e->strikes = 0; /* clean long enough: a first violation again */
    if (e->strikes < UINT32_MAX) e->strikes++;
    e->until_ns = now + wait_after(e->strikes);
    e->forget_ns = now + SHMX_READMIT_FORGET_NS;
}

int shmx_readmit_hold(shmx_readmit_t *r, pid_t pid, int sock, int64_t now, int *replaced) {
    *replaced = -1;
    if (pid <= 0) return 0;
    shmx_readmit_entry_t *e = find(r, pid);
    if (e == NULL) return 0;
    if (now >= e->until_ns) {
        if (now >= e->forget_ns && e->held_sock < 0) {
            *e = (shmx_readmit_entry_t){.held_sock = -1}; /* clean long enough: forgotten */
            return 0;
        }
        /* Admitted; the next connection waits again: one per wait while the process is remembered. */
        e->until_ns = now + wait_after(e->strikes);
        return 0;
    }
    *replaced = e->held_sock;
    e->held_sock = sock;
    r->held_total++;
    return 1;
}

int shmx_readmit_take_due(shmx_readmit_t *r, int64_t now, int64_t *next) {
    int sock = -1;
    *next = INT64_MAX;
    for (uint32_t i = 0; i < SHMX_READMIT_PIDS; i++) {
        shmx_readmit_entry_t *e = &r->entry[i];
        if (e->held_sock < 0) continue;
        if (sock < 0 && e->until_ns <= now) {
            sock = e->held_sock;
            e->held_sock = -1;
            e->until_ns = now + wait_after(e->strikes); /* one admission per wait */
        } else if (e->until_ns < *next) {
            *next = e->until_ns;
        }
    }
    return sock;
}
