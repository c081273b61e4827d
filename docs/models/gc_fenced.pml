/*
 * The fenced online GC protocol (docs/lifecycle.md, "GC protocol"): one repository R, one blob B,
 * one manifest M that references B, grace window 0. Clients push the image (HEAD the blob, upload
 * it unless present, PUT the manifest, retrying on refusals) against one GC run that raises a
 * fence, waits until every write decision that started without seeing it has ended, unlinks B from
 * R unless a manifest of R uses it, deletes B's bytes unless something uses it, and lowers the
 * fence; it may stop at any step and a later run resumes.
 *
 * While the fence is up (or may be: a process's cached copy can lag until GC's wait is over), a
 * write decision takes the careful path: the manifest push guards blob/R@B and content/B, the
 * upload guards content/B and spares a condemned B. Without the fence, decisions take today's fast
 * path: the push reads B's link unguarded. Only GC repairs (it links back a blob it unlinked under
 * a manifest appended meanwhile); no push ever deletes what it appended.
 *
 * Every `atomic` block is one thing the registry does indivisibly: an append (its guards checked
 * and the views written in the same transaction), a read of one view, or one object operation.
 * Checked at rest: a manifest's blob is linked, a link's bytes exist, and a client that reported
 * success has its manifest.
 *
 *   spin -a docs/models/gc_fenced.pml && gcc -O2 -o pan pan.c && ./pan -m200000
 *
 * scripts/check-models.sh runs it, and checks that each safeguard is needed: -DNO_FENCE_WAIT (GC
 * does not wait for decisions that missed the fence), -DNO_SWEEP_REREAD (GC does not read the
 * manifests again after unlinking) and -DNO_CONDEMN_REREAD (GC deletes without reading B's users
 * again after condemning it) must each be violated.
 */

mtype = { LIVE, CONDEMNED, DELETING, DELETED };

#ifndef CLIENTS
#define CLIENTS 2
#endif
#define MAX_TRIES 3

bool bytes;          /* B's object is in the blob store */
bool link;           /* B is linked to R (the view) */
bool manifest;       /* M is in R (the view) */
byte blob_ver;       /* version of the stream blob/R@B */
byte content_ver;    /* version of the stream content/B */
mtype state = LIVE;  /* B's bytes' state: the last event of content/B */

bool fence;          /* the fence item */
bool gc_waiting;     /* GC raised the fence and is still waiting: cached copies may not show it */
byte fast_inflight;  /* decisions under way that took the fast path */

byte clients_done;
bool gc_done;
byte clients_ok;

/* A write decision's view of the fence: the item itself, or "down" from a stale cache while GC is
 * still waiting (after the wait every process has refreshed its copy). */
inline read_fence(careful) {
    atomic {
        if
        :: careful = fence
        :: gc_waiting -> careful = false
        fi;
        if
        :: !careful -> fast_inflight++
        :: else -> skip
        fi
    }
}

inline end_decision(careful) {
    if
    :: !careful -> atomic { fast_inflight-- }
    :: else -> skip
    fi
}

/* Upload completion, from the commit's put to the append. Careful path: guards content/B (and
 * blob/R@B), spares a condemned B in the same append, is refused while GC deletes B and, after a
 * deletion, proceeds only if its own bytes are there. Fast path: today's decision, which reads
 * nothing of content/B; safe because its put is inside the decision's time bound, so GC's wait
 * outlasts it (with the put before the bound starts, spin finds a GC that resumes a deletion over
 * the freshly put bytes). */
inline upload_decision(ok) {
    ok = false;
    read_fence(careful);
    bytes = true;                            /* the commit's put, inside the decision's time */
    do
    :: atomic { lcv = content_ver; lst = state; lbv = blob_ver };
       if
       :: !careful -> lst = LIVE
       :: else -> skip
       fi;
       if
       :: lst == DELETING -> break
       :: lst == DELETED && !bytes -> break
       :: else ->
          atomic {
              if
              :: (!careful || content_ver == lcv) && blob_ver == lbv ->
                 link = true; blob_ver++;
                 if
                 :: lst == CONDEMNED -> state = LIVE; content_ver++
                 :: else -> skip
                 fi;
                 ok = true
              :: else -> skip
              fi
          };
          if
          :: ok -> break
          :: else -> skip
          fi
       fi
    od;
    end_decision(careful)
}

/* Manifest PUT: needs B linked. Fast path: the link read unguarded, M appended guarded on nothing
 * of B. Careful path: M appended guarded on blob/R@B and content/B. */
inline push_decision(ok) {
    ok = false;
    read_fence(careful);
    do
    :: atomic { lcv = content_ver; lst = state; lbv = blob_ver; linked = link };
       if
       :: !linked -> break                   /* MANIFEST_BLOB_UNKNOWN */
       :: else ->
          if
          :: !careful -> manifest = true; ok = true
          :: else ->
             atomic {
                 if
                 :: content_ver == lcv && blob_ver == lbv -> manifest = true; ok = true
                 :: else -> skip
                 fi
             }
          fi;
          if
          :: ok -> break
          :: else -> skip
          fi
       fi
    od;
    end_decision(careful)
}

proctype Client() {
    byte tries = 0, lcv, lbv;
    mtype lst;
    bool ok, careful, linked, seen;
    do
    :: tries < MAX_TRIES ->
       tries++;
       /* HEAD: served when linked and its bytes are not being collected. */
       atomic { seen = link && (state == LIVE || state == DELETED) };
       if
       :: !seen ->
          upload_decision(ok);
          if
          :: !ok -> goto next
          :: else -> skip
          fi
       :: else -> skip
       fi;
       push_decision(ok);
       if
       :: !ok -> goto next
       :: else -> skip
       fi;
       clients_ok++;
       break;
next:  skip
    :: else -> break
    od;
    clients_done++
}

proctype Gc() {
    byte bv, cv;
    bool users;
    fence = true;
    gc_waiting = true;
    /* F seconds later every process's cached copy shows the fence: no decision starts fast. */
    gc_waiting = false;
#ifndef NO_FENCE_WAIT
    /* T seconds more: every decision that started fast has appended or given up (decisions are
     * bounded in time). */
    (fast_inflight == 0);
#endif
    if :: skip :: goto crash fi;
    /* Phase 1: unlink B from R unless a manifest of R uses it (guarded on blob/R@B). */
    atomic { bv = blob_ver; users = manifest };
    if
    :: !users && link ->
       atomic {
           if
           :: blob_ver == bv -> link = false; blob_ver++
           :: else -> skip
           fi
       };
#ifndef NO_SWEEP_REREAD
       /* A careful push only checks blob/R@B, so one appended between GC's read and its unlink
        * passes: read the manifests again and link B back (its bytes are there: phase 2 comes
        * later). A push after the unlink fails its check and is refused. */
       if
       :: atomic { manifest && !link } ->
          atomic {
              if
              :: state == LIVE -> link = true; blob_ver++
              :: else -> skip
              fi
          }
       :: else -> skip
       fi
#endif
    :: else -> skip
    fi;
    if :: skip :: goto crash fi;
    /* Phase 2: condemn B unless something uses it, read its users again, then delete. */
    atomic { cv = content_ver; users = link || manifest };
    if
    :: users || state != LIVE -> goto lower
    :: else -> skip
    fi;
    atomic {
        if
        :: content_ver == cv -> state = CONDEMNED; content_ver++; cv = content_ver
        :: else -> goto lower
        fi
    };
    if :: skip :: goto crash fi;
#ifndef NO_CONDEMN_REREAD
    atomic { users = link || manifest };
    if
    :: users ->
       atomic {
           if
           :: content_ver == cv -> state = LIVE; content_ver++
           :: else -> skip
           fi
       };
       goto lower
    :: else -> skip
    fi;
#endif
    atomic {
        if
        :: content_ver == cv -> state = DELETING; content_ver++
        :: else -> goto lower
        fi
    };
    if :: skip :: goto crash fi;
    bytes = false;
    if :: skip :: goto crash fi;
    atomic { state = DELETED; content_ver++ };
lower:
    fence = false;
    goto done;
crash:
    /* The next run finishes a deletion it started, then lowers the fence. */
    gc_waiting = false;
    if
    :: state == DELETING -> bytes = false; atomic { state = DELETED; content_ver++ }
    :: else -> skip
    fi;
    fence = false;
done:
    gc_done = true
}

init {
    /* Either B is linked to R from an earlier push whose manifest was deleted (the clients' HEAD
     * finds it), or it is not linked anywhere and only its bytes remain. */
    if
    :: bytes = true; link = true
    :: bytes = true; link = false
    fi;
    atomic {
        byte i;
        for (i : 1 .. CLIENTS) { run Client() }
        run Gc()
    }
}

active proctype AtRest() {
    (clients_done == CLIENTS && gc_done);
    assert(!manifest || link);
    assert(!link || bytes);
    assert(clients_ok == 0 || manifest)
}
