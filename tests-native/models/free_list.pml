/*
 * free_list.pml - the tagged Treiber stack of free slots (native/pool.c: pop,
 * push_chain, the state CAS), NT threads over S slots; one thread may stop
 * forever at any step, between its load and its CAS included (C2).
 * Step-to-code map and abstractions: README.md in this directory.
 *
 * Spin is sequentially consistent; the C code's acquire/release pairs
 * (push's release CAS -> pop's acquire load) give the same outcomes for
 * these steps, since every decision rests on a CAS of the one head word.
 *
 * Must-fail variant: -DNO_TAG (the head CAS compares only the top: ABA).
 */
#ifndef NT
#define NT 3           /* threads */
#endif
#ifndef S
#define S 3            /* slots */
#endif
#ifndef OPS
#define OPS 3          /* list operations per thread */
#endif
#define TAG_MOD 16     /* the model's tag width: 4 bits, more than the head updates of a run */
#if NT * OPS >= TAG_MOD
#error "the tag could wrap within a run: widen TAG_MOD"
#endif
#define NONE 255

#define FREE 0
#define CLAIMED 1

byte top = 1;          /* head's low half: index + 1 of the top slot, 0 = empty */
byte tag;              /* head's high half */
byte nxt[S];           /* meta.next: index + 1 of the next slot, 0 = end */
byte state[S];         /* meta.state */
byte own[S];           /* ghost: thread holding the slot (popped, not yet pushed), or NONE */
byte finished;         /* threads done or stopped */
byte stopped = NONE;   /* the thread that stops forever, if any */

#ifdef NO_TAG
#define SAME_HEAD(t, g) (top == t)
#else
#define SAME_HEAD(t, g) (top == t && tag == g)
#endif

proctype thread(byte me) {
    byte t, g, nx, i, n, held[2], nh;
    bool won;
    {
        do
        :: n < OPS && nh < 2 ->                        /* pop (pool.c:154) */
            atomic { t = top; g = tag };               /* pool.c:158 load head (acquire) */
            do
            :: t == 0 -> break                         /* pool.c:161 empty */
            :: else ->
                nx = nxt[t - 1];                       /* pool.c:166 load next (relaxed) */
                atomic {                               /* pool.c:176 CAS head (tag + 1, next) */
                    if
                    :: SAME_HEAD(t, g) ->
                        top = nx; tag = (tag + 1) % TAG_MOD;
                        assert(own[t - 1] == NONE);    /* never popped twice without a push */
                        own[t - 1] = me; won = 1
                    :: else -> t = top; g = tag        /* failure reloads head */
                    fi
                };
                if :: won -> break :: else fi
            od;
            if
            :: won ->                                  /* pool.c:181 state CAS FREE -> CLAIMED */
                atomic { assert(state[t - 1] == FREE); state[t - 1] = CLAIMED };
                held[nh] = t; nh++
            :: else
            fi;
            atomic { n++; won = 0; t = 0; g = 0; nx = 0 }
        :: n < OPS && nh > 0 ->                        /* free (pool.c:300) one held slot, either */
            if
            :: nh == 2 -> atomic { i = held[0]; held[0] = held[1]; held[1] = i }
            :: true
            fi;
            i = held[nh - 1] - 1;
            state[i] = FREE;                           /* pool.c:322 release store */
            atomic { t = top; g = tag };               /* pool.c:196 load head */
            do
            :: nxt[i] = t;                             /* pool.c:201 link (relaxed) */
                atomic {                               /* pool.c:203 CAS head (tag + 1, slot) */
                    if
                    :: SAME_HEAD(t, g) ->
                        top = i + 1; tag = (tag + 1) % TAG_MOD;
                        own[i] = NONE; nh--; held[nh] = 0;
                        break
                    :: else -> t = top; g = tag
                    fi
                }
            od;
            atomic { n++; t = 0; g = 0; i = 0 }
        :: else -> break
        od
    } unless { stopped == me };
    finished++
}

/* At most one thread stops forever, at any moment. */
proctype killer() {
    byte k;
    if
    :: skip
    :: atomic { k = 0; do :: k < NT - 1 -> k++ :: break od; stopped = k }
    fi
}

init {
    byte i, p, seen, held_n;
    bool visited[S];
    atomic {
        i = 0;
        do
        :: i < S -> nxt[i] = (i + 1 < S -> i + 2 : 0); own[i] = NONE; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NT -> run thread(i); i++
        :: else -> break
        od;
        run killer()
    };
    finished == NT;
    /* The list from head: no cycle, only slots nobody holds; with the held ones, every slot. */
    d_step {
        p = top; seen = 0;
        do
        :: p == 0 -> break
        :: else ->
            assert(!visited[p - 1]);                   /* no cycle */
            assert(own[p - 1] == NONE);                /* never listed while held */
            visited[p - 1] = 1; seen++; p = nxt[p - 1]
        od;
        i = 0; held_n = 0;
        do
        :: i < S -> if :: own[i] != NONE -> held_n++ :: else fi; i++
        :: else -> break
        od;
        assert(seen + held_n == S)                     /* free + held == total */
    }
}
