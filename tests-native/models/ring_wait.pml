/*
 * ring_wait.pml - the SPSC ring (native/ring.c) with its wait/wake protocol
 * (native/wait.c) and the doorbell arm/ring check, one producer, one
 * consumer, either of which may stop forever at any step.
 * Step-to-code map and abstractions: README.md in this directory.
 *
 * Spin interleaves whole statements: the model is sequentially consistent.
 * The C code earns that where the model relies on it: the store->load pairs
 * (header vs waiters/armed, waiters/armed vs header) are Dekker pairs of
 * seq_cst fences; everything else is release/acquire message passing.
 *
 * Must-fail variants (scripts/models expects spin to find a violation):
 *   -DBUG_NOTIFY_EARLY  commit loads waiters before its header store (no fence)
 *   -DBUG_NO_RECHECK    the waiter sleeps without re-checking after announcing
 *   -DBUG_HEADER_FIRST  commit publishes the header before the body (torn)
 */
#ifndef N
#define N 2            /* ring capacity in records */
#endif
#ifndef M
#define M 3            /* messages the producer sends, then it closes */
#endif

byte hdr[N];           /* record header word: 0 = nothing published, else the message number */
byte body[N];          /* record body: the message number */
byte head;             /* ctl->head: consumer's released position */
bool closed;           /* ctl->closed */
byte d_waiters, d_seq; /* ctl->data waitpoint (consumer sleeps there) */
byte s_waiters, s_seq; /* ctl->space waitpoint (producer sleeps there) */
bool armed;            /* ctl->armed */
bool bell;             /* eventfd counter of the consumer's doorbell, nonzero = readable */

/* the kernel's view */
bool c_asleep, p_asleep; /* in futex_wait on d_seq / s_seq */
bool c_bellwait;         /* consumer in epoll on its bell and the socket's hang-up */
bool p_stopped, c_stopped; /* stopped forever (socket hang-up visible to the peer) */
byte bud = 1;           /* early deadlines left (one per run, either side) */

/* ghosts */
byte c_read;           /* consumer's private read position */
byte committed;        /* headers stored */
byte received;         /* records the consumer accepted */
bool p_notifying;      /* producer between a publication (header, closed) and the end of its notify */
bool c_notifying;      /* consumer between its head store and the end of its notify */
bool lost_wakeup;      /* set by the monitor: a sleeper whose condition holds has no wake coming */

#define DATA_READY  (hdr[c_read % N] != 0 || closed)   /* ring.c data_ready */
#define SPACE_READY (committed - head < N)               /* ring.c space_ready (tail == committed here) */

/*
 * shmx_wait_until (wait.c:46) after spinning: announce, fence, read seq,
 * re-check, futex_wait, withdraw, re-check. rdy: 1 ready, 0 deadline passed.
 * The deadline passes either early (once per run, either side, at any moment:
 * bud) or,
 * through spin's timeout, when nothing else in the system can move; that
 * second case is legal only with the peer stopped (no deadlock otherwise).
 */
inline wait_until(W, SEQ, ASLEEP, READY, PEER_STOPPED) {
    rdy = READY;                                       /* wait.c:51 */
    do
    :: rdy -> break
    :: else ->
        W++;                                           /* wait.c:70 announce; :71 fence */
        s = SEQ;                                       /* wait.c:74 */
#ifndef BUG_NO_RECHECK
        if :: READY -> W--; rdy = 1; break :: else fi  /* wait.c:75 */
#endif
        if
        :: atomic { bud > 0 -> bud-- }; W--; break               /* wait.c:80 deadline */
        :: true
        fi;
        atomic { if :: SEQ == s -> ASLEEP = 1 :: else fi } /* wait.c:84 futex_wait: sleep iff seq unchanged */
        if
        :: !ASLEEP -> to = 0                           /* woken, or seq had changed */
        :: atomic { ASLEEP && bud > 0 -> bud--; ASLEEP = 0 }; to = 1  /* deadline while asleep */
        :: timeout -> assert(PEER_STOPPED); ASLEEP = 0; to = 1 /* stuck: only the deadline moves */
        fi;
        W--;                                           /* wait.c:85 */
        rdy = READY;                                   /* wait.c:88 */
        if :: rdy || to -> break :: else fi            /* wait.c:89 */
    od
}

/* shmx_waitpoint_notify (wait.c:107): fence, then wake only announced waiters. */
inline notify(W, SEQ, ASLEEP) {
    if
    :: W != 0 -> SEQ++; ASLEEP = 0                      /* wait.c:111, :113 bump, :114 futex_wake */
    :: else
    fi
}

proctype producer() {
    byte tail, hc, m = 1, s;
    bool rdy, to, w;
    {
        do
        :: m <= M ->
claim:      if                                          /* ring.c:144 claim: cached head first */
            :: tail - hc < N
            :: else ->
                hc = head;                              /* ring.c:126 refresh_space */
                if
                :: tail - hc < N
                :: else ->                              /* ring.c:276 wait_space */
                    wait_until(s_waiters, s_seq, p_asleep, SPACE_READY, c_stopped);
                    if
                    :: !rdy && c_stopped -> goto done   /* deadline: socket hung up, peer gone */
                    :: else -> goto claim
                    fi
                fi
            fi;
#ifdef BUG_NOTIFY_EARLY
            w = d_waiters;                              /* the load the fence keeps after the store */
#endif
#ifdef BUG_HEADER_FIRST
            atomic { hdr[tail % N] = m; committed++; p_notifying = 1 };
            body[tail % N] = m;
#else
            body[tail % N] = m;                         /* the caller writes the claimed body */
            atomic { hdr[tail % N] = m; committed++; p_notifying = 1 } /* ring.c:167 release */
#endif
            tail++; m++;                                /* ring.c:174-177 */
#ifdef BUG_NOTIFY_EARLY
            if :: w != 0 -> d_seq++; c_asleep = 0 :: else fi;
#else
            notify(d_waiters, d_seq, c_asleep);         /* ring.c:178 */
#endif
            if                                          /* ring.c:182 */
            :: armed -> atomic { w = armed; armed = 0 }; /* ring.c:189 exchange */
                if :: w -> bell = 1 :: else fi
            :: else
            fi;
            p_notifying = 0
        :: else -> break
        od;
        /* shmx_ring_close_bell (ring.c:359) */
        atomic { closed = 1; p_notifying = 1 };         /* ring.c:354 */
        d_seq++; c_asleep = 0;                          /* ring.c:355 notify_all(data) */
        s_seq++; p_asleep = 0;                          /* ring.c:356 notify_all(space) */
        if                                              /* ring.c:363-364 */
        :: armed -> atomic { w = armed; armed = 0 };
            if :: w -> bell = 1 :: else fi
        :: else
        fi;
        p_notifying = 0;
done:   skip
    } unless { p_stopped }
}

proctype consumer() {
    byte h, s;
    bool cl, rdy, to;
    {
        skip;
peek:   h = hdr[c_read % N];                         /* ring.c:292 */
        if
        :: h == 0 ->
            cl = closed;                                /* ring.c:297 */
            h = hdr[c_read % N];                        /* ring.c:298 */
            if
            :: h == 0 && cl ->                          /* ECLOSED: everything committed was read */
                assert(received == committed); goto done
            :: h == 0 && !cl -> goto wait_data
            :: else
            fi
        :: else
        fi;
        assert(body[c_read % N] == h);                  /* never torn */
        assert(h == received + 1);                      /* in order, none lost or duplicated */
        received++;
        /* shmx_ring_release (ring.c:325) */
        hdr[c_read % N] = 0; body[c_read % N] = 0;      /* ring.c:329 zero_span */
        c_read++;
        atomic { head = c_read; c_notifying = 1 };      /* ring.c:333 release */
        notify(s_waiters, s_seq, p_asleep);             /* ring.c:334 */
        c_notifying = 0;
        goto peek;

wait_data:
        if
        :: /* futex: shm_wait_record (channel.c:218) -> shmx_ring_wait_data */
            wait_until(d_waiters, d_seq, c_asleep, DATA_READY, p_stopped);
            if
            :: !rdy && p_stopped -> goto gone           /* channel.c:247 hang-up check */
            :: else -> goto peek
            fi
        :: /* doorbell: shmx_channel_arm (channel_events.c:155), then epoll */
            bell = 0;                                   /* channel_events.c:160 drain */
            armed = 1;                                  /* ring.c:371; :372 fence */
            if
            :: DATA_READY -> armed = 0; goto peek       /* ring.c:373-376 */
            :: else
            fi;
            if :: p_stopped -> goto gone :: else fi;    /* channel_events.c:166 hang-up */
            c_bellwait = 1;
            if                                          /* epoll: bell, socket hang-up, caller's deadline */
            :: bell || p_stopped
            :: atomic { bud > 0 -> bud-- }
            :: timeout -> assert(false)                 /* the hang-up is in the set: never stuck */
            fi;
            c_bellwait = 0;
            if
            :: p_stopped -> goto gone
            :: else -> goto peek
            fi
        fi;
gone:   h = hdr[c_read % N];                            /* channel.c:249 peek after the hang-up */
        if
        :: h != 0 -> goto peek
        :: else -> assert(received == committed)        /* peer gone: nothing committed is left */
        fi;
done:   skip
    } unless { c_stopped }
}

/* At most one side stops forever, at any moment (between any two of its steps). */
proctype killer() {
    if
    :: p_stopped = 1
    :: c_stopped = 1
    :: skip
    fi
}

/* No lost wake-up: a sleeper with its condition true always has a wake on the way. */
active proctype monitor() {
end:
    atomic {
        ((c_asleep && !c_stopped && DATA_READY && !p_notifying) ||
         (c_bellwait && !c_stopped && DATA_READY && !bell && !p_notifying && !p_stopped) ||
         (p_asleep && !p_stopped && SPACE_READY && !c_notifying))
        -> lost_wakeup = 1; assert(!lost_wakeup)
    }
}

init {
    atomic { run producer(); run consumer(); run killer() }
}
