/*
 * The online GC protocol of docs/lifecycle.md ("GC protocol"), one repository R, one blob B and one
 * manifest M that references B, grace window 0 (the worst case): clients pushing the image (HEAD
 * the blob, upload it unless present, PUT the manifest, retrying on refusals) against one GC run
 * (phase 1 unlinks B from R unless a manifest of R uses it; phase 2 deletes B's bytes unless
 * something uses it), which may stop at any step (a crash, a Lambda's deadline) and resume.
 *
 * Every `atomic` block is one thing the registry does indivisibly: an append to the log (its guard
 * checked and the views written in the same transaction), a read of one view, or one object
 * operation. Checked: at rest, every client succeeded or gave up cleanly, a manifest never references
 * an unlinked blob, and a link never points at absent bytes.
 *
 *   spin -a docs/models/gc.pml && gcc -O2 -o pan pan.c && ./pan -m100000
 *
 * (scripts/check-models.sh runs it.) With one client (-DCLIENTS=1) the protocol holds; with two
 * (the default) spin finds its flaw: one client's compensating delete takes the manifest the other
 * relied on (docs/lifecycle.md, "What the model says"). Each read-after-write is needed: with
 * -DNO_PUSH_REREAD, -DNO_SWEEP_REREAD or -DNO_CONDEMN_REREAD (spin -DNO_PUSH_REREAD -a ...) spin
 * finds an interleaving that ends with a dangling manifest or a link to deleted bytes, and the
 * script checks that it does.
 */

mtype = { LIVE, CONDEMNED, DELETING, DELETED };

bool bytes;          /* B's object is in the blob store */
bool link;           /* B is linked to R (the view) */
bool manifest;       /* M is in R (the view) */
byte blob_ver;       /* version of the stream blob/R@B */
byte content_ver;    /* version of the stream content/B */
mtype state = LIVE;  /* B's bytes' state, the last event of content/B */

/* How many clients push the image at once (spin -DCLIENTS=1 for one). */
#ifndef CLIENTS
#define CLIENTS 2
#endif

byte clients_done;
bool gc_done;
byte clients_ok;     /* pushes that ended with M in R */

#define MAX_TRIES 3

/* A decision that creates a user of B (upload completion, relink): reads content/B, guards its
 * version (and blob/R@B's), spares a condemned B in the same append. `ok` says whether B is linked
 * now; `gone` whether B's bytes were found deleted (the writer must upload again). */
/* The caller declares `lcv`, `lbv` (bytes) and `lst` (an mtype): inlines are textual. */
inline link_decision(ok, gone) {
    ok = false; gone = false;
    do
    :: atomic { lcv = content_ver; lst = state; lbv = blob_ver };
       if
       :: lst == DELETING -> break           /* refused as retryable; the client tries again */
       :: lst == DELETED && !bytes -> gone = true; break
       :: else ->
          atomic {
              if
              :: content_ver == lcv && blob_ver == lbv ->
                 link = true; blob_ver++;
                 if
                 :: lst == CONDEMNED -> state = LIVE; content_ver++
                 :: else -> skip
                 fi;
                 ok = true
              :: else -> skip                /* conflict: decide again */
              fi
          };
          if
          :: ok -> break
          :: else -> skip
          fi
       fi
    od
}

proctype Client() {
    byte tries = 0, lcv, lbv;
    mtype lst;
    bool ok, gone, linked_seen;
    do
    :: tries < MAX_TRIES ->
       tries++;
       /* HEAD: served only when linked and its bytes are live (a condemned blob answers 404). */
       atomic { linked_seen = link && (state == LIVE || state == DELETED) };
       if
       :: !linked_seen ->
          bytes = true;                      /* the upload's bytes, put before its decision */
          link_decision(ok, gone);
          if
          :: !ok -> goto next                /* refused: start over */
          :: else -> skip
          fi
       :: else -> skip
       fi;
       /* PUT the manifest: its decision reads the link unguarded, appends M. */
       if
       :: atomic { link } -> manifest = true
       :: else -> goto next                  /* MANIFEST_BLOB_UNKNOWN: start over */
       fi;
#ifndef NO_PUSH_REREAD
       /* After the append, read the links again (the protocol's second read). */
       if
       :: atomic { !link } ->
          link_decision(ok, gone);
          if
          :: !ok -> manifest = false; goto next   /* compensate: delete M, answer 400 */
          :: else -> skip
          fi
       :: else -> skip
       fi;
#endif
       clients_ok++;
       break;
next:  skip
    :: else -> break
    od;
    clients_done++
}

proctype Gc() {
    byte bv, cv, lcv, lbv;
    mtype lst;
    bool ok, gone, users;
    /* Phase 1: unlink B from R unless a manifest of R uses it. */
    if
    :: atomic { bv = blob_ver; users = manifest };
       if
       :: !users && link ->
          atomic {
              if
              :: blob_ver == bv -> link = false; blob_ver++
              :: else -> skip                /* relinked meanwhile: leave it */
              fi
          };
#ifndef NO_SWEEP_REREAD
          /* ... then read the manifests again: one that appeared is repaired. */
          if
          :: atomic { manifest && !link } -> link_decision(ok, gone)
          :: else -> skip
          fi
#endif
       :: else -> skip
       fi
    :: goto crash
    fi;
    /* Phase 2: delete B's bytes unless something uses it. */
    if
    :: atomic { cv = content_ver; users = link || manifest };
       if
       :: users || state != LIVE -> goto done
       :: else -> skip
       fi;
       atomic {
           if
           :: content_ver == cv -> state = CONDEMNED; content_ver++; cv = content_ver
           :: else -> goto done
           fi
       };
       if
       :: skip
       :: goto crash
       fi;
       atomic { users = link || manifest };
#ifndef NO_CONDEMN_REREAD
       if
       :: users ->
          atomic {
              if
              :: content_ver == cv -> state = LIVE; content_ver++
              :: else -> skip
              fi
          };
          goto done
       :: else -> skip
       fi;
#endif
       atomic {
           if
           :: content_ver == cv -> state = DELETING; content_ver++
           :: else -> goto done              /* spared meanwhile */
           fi
       };
       if
       :: skip
       :: goto crash
       fi;
       bytes = false;
       if
       :: skip
       :: goto crash
       fi;
       atomic { state = DELETED; content_ver++ }
    :: goto crash
    fi;
    goto done;
crash:
    /* The next run resumes a deletion it started, and does nothing else here. */
    if
    :: state == DELETING -> bytes = false; atomic { state = DELETED; content_ver++ }
    :: else -> skip
    fi;
done:
    gc_done = true
}

init {
    /* Either B is linked to R from an earlier push whose manifest was deleted (the client's HEAD
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

/* At rest: a manifest's blob is linked, a link's bytes are there. */
active proctype AtRest() {
    (clients_done == CLIENTS && gc_done);
    assert(!manifest || link);
    assert(!link || bytes);
    assert(clients_ok == 0 || manifest)
}
