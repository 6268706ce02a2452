/*
 * nitro_attest._native: many ECDSA P-384/SHA-384 verifications in one call, on
 * several threads, with the GIL released. Arithmetic by GNU Nettle/hogweed
 * (LGPL, linked dynamically: -lhogweed -lnettle -lgmp).
 *
 * Only the arithmetic lives here; nitro_attest/_backend.py decides what a job
 * is and what a verdict means. Python API (limited API / abi3, CPython >= 3.10):
 *
 *     verify_p384_many(jobs, workers) -> bytes
 *
 * jobs: a sequence of (public_key, message, signature) tuples of bytes:
 *   public_key  SEC1 uncompressed point 0x04 || X || Y (97 bytes),
 *   message     the signed bytes (hashed here with SHA-384),
 *   signature   r || s (2 x 48 bytes, big-endian).
 * workers: threads to use (clamped to 1..MAX_WORKERS and to the job count).
 * Returns one byte per job, in order: 1 when the signature is valid, else 0.
 * A job of the wrong shape, type or length is 0, never an exception; only a
 * `jobs` that is not a sequence (TypeError) or an allocation failure
 * (MemoryError) raises.
 *
 *     start_p384_many(jobs, workers) -> pending
 *     finish_p384_many(pending) -> bytes
 *
 * The same work in two halves, for verify_batch's pipeline: start copies the
 * jobs and starts `workers` threads, then returns while they run (they never
 * take the GIL, so Python keeps decoding); finish waits with the GIL released,
 * the calling thread taking jobs too, and returns what verify_p384_many would
 * have. A pending call dropped unfinished stops its threads and frees its memory.
 *
 *     check_cbor(data, start, max_depth, max_items) -> (reason, position) | None
 *
 * The strict CBOR well-formedness scan of nitro_attest/_cbor.py (its rules,
 * its order of checks, its messages, byte for byte): None when data[start:] is
 * one well-formed item under the decoding profile, else why not and where.
 * tests/test_cbor_scan.py holds the two to the same answers on every input.
 *
 * Threads: everything is copied out of the Python objects into C memory first,
 * with the GIL held; the threaded part touches no Python object, so the GIL is
 * released around it (or, after start_p384_many, never needed). The calling
 * thread works too (plus workers - 1 pthreads in verify_p384_many); each
 * takes the next job index from an atomic counter until none is left, and
 * writes only that job's verdict. If a thread cannot
 * be started, the threads that did start (at least the caller) do all jobs.
 */

#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmp.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/sha2.h>
#include <nettle/version.h>

#define FIELD_SIZE 48                  /* bytes of a P-384 coordinate, r or s */
#define POINT_SIZE (1 + 2 * FIELD_SIZE) /* 0x04 || X || Y */
#define SIGNATURE_SIZE (2 * FIELD_SIZE) /* r || s */
#define MAX_WORKERS 256

/* The P-384 field prime p and group order n (SEC 2, section 2.5.1), big-endian. */
static const uint8_t P384_P[FIELD_SIZE] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
};
static const uint8_t P384_N[FIELD_SIZE] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
};
static const uint8_t ZERO[FIELD_SIZE] = {0};

typedef struct {
    int well_formed;                  /* the Python job had the right shape, types and lengths */
    uint8_t point[POINT_SIZE];
    uint8_t signature[SIGNATURE_SIZE];
    uint8_t *message;                 /* malloc'd copy (at least 1 byte allocated) */
    size_t message_length;
    uint8_t verdict;                  /* 1 valid, 0 not; written by exactly one thread */
} job_t;

typedef struct {
    job_t *jobs;
    size_t count;
    atomic_size_t next;               /* the next job index to take */
} work_t;

static const struct ecc_curve *curve; /* nettle's secp384r1, set at module init */

/* Big-endian byte strings of equal length compare like the numbers they are. */
static int less_than(const uint8_t *value, const uint8_t *bound) {
    return memcmp(value, bound, FIELD_SIZE) < 0;
}

/* 0 < value < bound */
static int in_open_range(const uint8_t *value, const uint8_t *bound) {
    return memcmp(value, ZERO, FIELD_SIZE) != 0 && less_than(value, bound);
}

static void import_field(mpz_t out, const uint8_t *bytes) {
    /* 48 words of 1 byte, most significant first, no nails. */
    mpz_import(out, FIELD_SIZE, 1, 1, 0, 0, bytes);
}

/* The verdict of one job: 1 only when every check passes and ecdsa_verify returns exactly 1.
 * nettle 3.8 also rejects one kind of valid signature (u1*G == u2*Q, Wycheproof "point
 * duplication during verification"): _backend.py asks OpenSSL again about every rejection,
 * so no curve arithmetic of our own is needed here. */
static uint8_t verify_job(const job_t *job) {
    const uint8_t *x = job->point + 1;
    const uint8_t *y = job->point + 1 + FIELD_SIZE;
    const uint8_t *r = job->signature;
    const uint8_t *s = job->signature + FIELD_SIZE;
    struct sha384_ctx hash;
    uint8_t digest[SHA384_DIGEST_SIZE];
    mpz_t mx, my;
    struct ecc_point pub;
    struct dsa_signature signature;
    int valid = 0;

    if (!job->well_formed || job->point[0] != 0x04)
        return 0;
    /* Coordinates in 0..p-1 (ecc_point_set checks this too) and r, s in 1..n-1
     * (ecdsa_verify checks this too, in ecc_ecdsa_verify); explicit here so
     * that neither verdict depends on those library internals. */
    if (!less_than(x, P384_P) || !less_than(y, P384_P))
        return 0;
    if (!in_open_range(r, P384_N) || !in_open_range(s, P384_N))
        return 0;

    sha384_init(&hash);
    sha384_update(&hash, job->message_length, job->message);
    sha384_digest(&hash, SHA384_DIGEST_SIZE, digest);

    mpz_init(mx);
    mpz_init(my);
    import_field(mx, x);
    import_field(my, y);
    ecc_point_init(&pub, curve);
    /* 1 when (x, y) satisfies the curve equation (and both are < p); P-384's cofactor is 1. */
    if (ecc_point_set(&pub, mx, my) == 1) {
        dsa_signature_init(&signature);
        import_field(signature.r, r);
        import_field(signature.s, s);
        valid = ecdsa_verify(&pub, SHA384_DIGEST_SIZE, digest, &signature) == 1;
        dsa_signature_clear(&signature);
    }
    ecc_point_clear(&pub);
    mpz_clear(mx);
    mpz_clear(my);
    return valid ? 1 : 0;
}

static void *work(void *argument) {
    work_t *w = argument;
    for (;;) {
        size_t index = atomic_fetch_add_explicit(&w->next, 1, memory_order_relaxed);
        if (index >= w->count)
            return NULL;
        w->jobs[index].verdict = verify_job(&w->jobs[index]);
    }
}

/* One call's jobs, copied out of Python, and the threads working on them. */
typedef struct {
    work_t w;
    pthread_t threads[MAX_WORKERS];
    int started;                      /* threads running (joined by complete) */
    int claimed;                      /* finish_p384_many was called: set with the GIL held */
} pending_t;

/* Starts up to `threads` pthreads on the jobs; fewer if some cannot be started (complete does the rest). */
static void start_threads(pending_t *p, int threads) {
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&p->threads[p->started], NULL, work, &p->w) != 0)
            break;
        p->started++;
    }
}

/* The calling thread takes jobs too until none is left, then joins the threads. Touches no Python object. */
static void complete(pending_t *p) {
    work(&p->w);
    for (int t = 0; t < p->started; t++)
        pthread_join(p->threads[t], NULL);
    p->started = 0;
}

/* Copies a bytes object's contents; 0 when `object` is not bytes of exactly `size` bytes. */
static int copy_fixed(PyObject *object, uint8_t *out, Py_ssize_t size) {
    char *buffer;
    Py_ssize_t length;
    if (!PyBytes_Check(object) || PyBytes_AsStringAndSize(object, &buffer, &length) < 0 || length != size) {
        PyErr_Clear();
        return 0;
    }
    memcpy(out, buffer, (size_t)size);
    return 1;
}

/* Fills `job` from one Python job. -1 (with MemoryError set) only when a copy cannot be allocated. */
static int copy_job(PyObject *item, job_t *job) {
    PyObject *point, *message, *signature;
    char *buffer;
    Py_ssize_t length;

    job->well_formed = 0;
    if (!PyTuple_Check(item) || PyTuple_Size(item) != 3)
        return 0;
    point = PyTuple_GetItem(item, 0); /* borrowed */
    message = PyTuple_GetItem(item, 1);
    signature = PyTuple_GetItem(item, 2);
    if (point == NULL || message == NULL || signature == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!copy_fixed(point, job->point, POINT_SIZE) || !copy_fixed(signature, job->signature, SIGNATURE_SIZE))
        return 0;
    if (!PyBytes_Check(message) || PyBytes_AsStringAndSize(message, &buffer, &length) < 0) {
        PyErr_Clear();
        return 0;
    }
    job->message = malloc(length > 0 ? (size_t)length : 1);
    if (job->message == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(job->message, buffer, (size_t)length);
    job->message_length = (size_t)length;
    job->well_formed = 1;
    return 0;
}

static void free_jobs(job_t *jobs, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++)
        free(jobs[i].message);
    free(jobs);
}

static void free_pending(pending_t *p) {
    free_jobs(p->w.jobs, (Py_ssize_t)p->w.count);
    free(p);
}

/* Copies every job of `sequence` (with the GIL held); NULL with an exception set on failure. */
static pending_t *new_pending(PyObject *sequence) {
    PyObject *item;
    Py_ssize_t count, i;
    pending_t *p;

    count = PySequence_Size(sequence);
    if (count < 0)
        return NULL;
    p = calloc(1, sizeof(pending_t));
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    p->w.jobs = calloc(count > 0 ? (size_t)count : 1, sizeof(job_t));
    if (p->w.jobs == NULL) {
        free(p);
        PyErr_NoMemory();
        return NULL;
    }
    p->w.count = (size_t)count;
    atomic_init(&p->w.next, 0);
    for (i = 0; i < count; i++) {
        item = PySequence_GetItem(sequence, i); /* new reference */
        if (item == NULL || copy_job(item, &p->w.jobs[i]) < 0) {
            Py_XDECREF(item);
            free_pending(p);
            return NULL;
        }
        Py_DECREF(item);
    }
    return p;
}

static int clamp_workers(int workers, size_t count) {
    if (workers < 1)
        workers = 1;
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    if ((size_t)workers > count)
        workers = count > 0 ? (int)count : 1;
    return workers;
}

static PyObject *verdict_bytes(const pending_t *p) {
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)p->w.count);
    char *out;
    if (result == NULL)
        return NULL;
    out = PyBytes_AsString(result);
    if (out == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    for (size_t i = 0; i < p->w.count; i++)
        out[i] = p->w.jobs[i].verdict == 1 ? 1 : 0;
    return result;
}

static PyObject *verify_p384_many(PyObject *module, PyObject *args) {
    PyObject *sequence, *result;
    int workers;
    pending_t *p;
    (void)module;

    if (!PyArg_ParseTuple(args, "Oi:verify_p384_many", &sequence, &workers))
        return NULL;
    p = new_pending(sequence);
    if (p == NULL)
        return NULL;
    workers = clamp_workers(workers, p->w.count);
    Py_BEGIN_ALLOW_THREADS
    start_threads(p, workers - 1); /* the calling thread is the last worker */
    complete(p);
    Py_END_ALLOW_THREADS
    result = verdict_bytes(p);
    free_pending(p);
    return result;
}

#define PENDING_NAME "nitro_attest._native.pending"

/* A pending call dropped unfinished (its caller raised): its threads stop taking jobs, and are joined. */
static void destroy_pending(PyObject *capsule) {
    pending_t *p = PyCapsule_GetPointer(capsule, PENDING_NAME);
    if (p == NULL) {
        PyErr_Clear();
        return;
    }
    if (!p->claimed) {
        /* No job is started after this; the ones running end within a verification. The GIL stays held:
         * the threads never take it, and a destructor is no place to let other Python code run. */
        atomic_store(&p->w.next, p->w.count);
        complete(p);
    }
    free_pending(p);
}

static PyObject *start_p384_many(PyObject *module, PyObject *args) {
    PyObject *sequence, *capsule;
    int workers;
    pending_t *p;
    (void)module;

    if (!PyArg_ParseTuple(args, "Oi:start_p384_many", &sequence, &workers))
        return NULL;
    p = new_pending(sequence);
    if (p == NULL)
        return NULL;
    capsule = PyCapsule_New(p, PENDING_NAME, destroy_pending);
    if (capsule == NULL) {
        free_pending(p);
        return NULL;
    }
    start_threads(p, clamp_workers(workers, p->w.count)); /* all of them: the caller goes back to Python */
    return capsule;
}

static PyObject *finish_p384_many(PyObject *module, PyObject *args) {
    PyObject *capsule;
    pending_t *p;
    (void)module;

    if (!PyArg_ParseTuple(args, "O:finish_p384_many", &capsule))
        return NULL;
    p = PyCapsule_GetPointer(capsule, PENDING_NAME); /* ValueError for any other object */
    if (p == NULL)
        return NULL;
    if (p->claimed) { /* checked and set with the GIL held: one caller only, even across threads */
        PyErr_SetString(PyExc_ValueError, "finish_p384_many: this call was already finished");
        return NULL;
    }
    p->claimed = 1;
    Py_BEGIN_ALLOW_THREADS
    complete(p);
    Py_END_ALLOW_THREADS
    return verdict_bytes(p); /* the memory goes with the capsule */
}

/* ---- the strict CBOR scan (nitro_attest/_cbor.py's _item, in C) ---------------------------- */

#define CBOR_BREAK 0xff

typedef struct {
    const uint8_t *data;
    size_t length;
    long long left;        /* data items the scan may still visit */
    long long max_items;
    size_t max_depth;
    char reason[128];
    size_t position;
} scan_t;

typedef struct {
    int major;
    int info;
    int indefinite;
    unsigned long long argument;
    size_t next;           /* the position after the head */
} head_t;

/* Records why and where the scan failed; always -1, so a caller can `return fail(...)`. */
static int fail(scan_t *s, size_t position, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(s->reason, sizeof s->reason, format, arguments);
    va_end(arguments);
    s->position = position;
    return -1;
}

static int spend(scan_t *s, long long items, size_t position) {
    s->left -= items;
    return s->left < 0 ? fail(s, position, "more than %lld data items", s->max_items) : 0;
}

static int read_head(scan_t *s, size_t pos, head_t *head) {
    uint8_t initial;
    if (pos >= s->length)
        return fail(s, pos, "1 bytes declared but only 0 remain");
    initial = s->data[pos];
    head->major = initial >> 5;
    head->info = initial & 0x1f;
    head->indefinite = 0;
    if (head->info < 24) {
        head->argument = (unsigned long long)head->info;
        head->next = pos + 1;
        return 0;
    }
    if (head->info <= 27) {
        size_t size = (size_t)1 << (head->info - 24);
        if (size > s->length - pos - 1)
            return fail(s, pos + 1, "%zu bytes declared but only %zu remain", size, s->length - pos - 1);
        head->argument = 0;
        for (size_t i = 0; i < size; i++)
            head->argument = (head->argument << 8) | s->data[pos + 1 + i];
        head->next = pos + 1 + size;
        return 0;
    }
    if (head->info == 31) {
        head->indefinite = 1;
        head->argument = 0;
        head->next = pos + 1;
        return 0;
    }
    return fail(s, pos, "reserved additional information %d", head->info);
}

/* Arrays and maps as map keys: see _COLLIDING_KEY_TYPES in _cbor.py. */
static int colliding_key(const scan_t *s, size_t pos) {
    int major = s->data[pos] >> 5;
    return major == 4 || major == 5;
}

static int fail_colliding_key(scan_t *s, size_t pos) {
    return fail(s, pos, "map key that is an %s", s->data[pos] >> 5 == 4 ? "array" : "map");
}

/* One complete item at `pos`, everything nested included; its end in *end. 0, or -1 with the reason set. */
static int scan_item(scan_t *s, size_t pos, size_t depth, size_t *end) {
    head_t head, chunk;
    size_t after, per_entry;
    if (read_head(s, pos, &head) < 0)
        return -1;
    after = head.next;
    if (head.major <= 1) {
        if (head.indefinite)
            return fail(s, pos, "indefinite-length integer");
        *end = after;
        return 0;
    }
    if (head.major <= 3) {
        if (!head.indefinite) {
            if (head.argument > s->length - after)
                return fail(s, after, "%llu bytes declared but only %zu remain", head.argument, s->length - after);
            *end = after + (size_t)head.argument;
            return 0;
        }
        for (;;) { /* definite chunks of the same type, then a break */
            if (after >= s->length)
                return fail(s, after, "indefinite-length item not terminated");
            if (s->data[after] == CBOR_BREAK) {
                *end = after + 1;
                return 0;
            }
            if (spend(s, 1, after) < 0 || read_head(s, after, &chunk) < 0)
                return -1;
            if (chunk.major != head.major || chunk.indefinite)
                return fail(s, after, "indefinite-length string chunk of the wrong type");
            if (chunk.argument > s->length - chunk.next)
                return fail(s, chunk.next, "%llu bytes declared but only %zu remain", chunk.argument,
                            s->length - chunk.next);
            after = chunk.next + (size_t)chunk.argument;
        }
    }
    if (head.major <= 5) {
        if (depth >= s->max_depth)
            return fail(s, pos, "nesting deeper than %zu", s->max_depth);
        per_entry = head.major == 4 ? 1 : 2;
        if (head.indefinite) {
            for (;;) {
                if (after >= s->length)
                    return fail(s, after, "indefinite-length item not terminated");
                if (s->data[after] == CBOR_BREAK) {
                    *end = after + 1;
                    return 0;
                }
                if (spend(s, (long long)per_entry, after) < 0)
                    return -1;
                if (head.major == 5 && colliding_key(s, after))
                    return fail_colliding_key(s, after);
                for (size_t k = 0; k < per_entry; k++)
                    if (scan_item(s, after, depth + 1, &after) < 0)
                        return -1;
            }
        }
        /* Every item takes at least one byte (as in _cbor.py; this form cannot overflow). */
        if (head.argument > (s->length - after) / per_entry)
            return fail(s, pos, "%s of %llu entries exceeds the input", head.major == 4 ? "array" : "map",
                        head.argument);
        if (spend(s, (long long)(head.argument * per_entry), pos) < 0)
            return -1;
        for (size_t index = 0; index < head.argument * per_entry; index++) {
            if (head.major == 5 && !(index & 1) && after < s->length && colliding_key(s, after))
                return fail_colliding_key(s, after);
            if (scan_item(s, after, depth + 1, &after) < 0)
                return -1;
        }
        *end = after;
        return 0;
    }
    if (head.major == 6) {
        if (head.indefinite)
            return fail(s, pos, "CBOR tag None is not allowed here"); /* Python's text for no argument */
        return fail(s, pos, "CBOR tag %llu is not allowed here", head.argument);
    }
    if (head.info == 20 || head.info == 21 || head.info == 22) { /* false, true, null */
        *end = after;
        return 0;
    }
    if (head.info >= 25 && head.info <= 27)
        return fail(s, pos, "floating-point value");
    if (head.indefinite)
        return fail(s, pos, "unexpected 'break'");
    return fail(s, pos, "simple value %llu (only false, true and null are allowed)", head.argument);
}

static PyObject *check_cbor(PyObject *module, PyObject *args) {
    const char *data;
    Py_ssize_t length, start, max_depth, max_items;
    scan_t s;
    size_t end = 0;
    int failed;
    (void)module;

    if (!PyArg_ParseTuple(args, "y#nnn:check_cbor", &data, &length, &start, &max_depth, &max_items))
        return NULL;
    if (start < 0 || start > length || max_depth < 0 || max_items < 1) {
        PyErr_SetString(PyExc_ValueError, "check_cbor: start, max_depth or max_items out of range");
        return NULL;
    }
    s.data = (const uint8_t *)data;
    s.length = (size_t)length;
    s.left = s.max_items = max_items;
    s.max_depth = (size_t)max_depth;
    s.reason[0] = '\0';
    s.position = 0;
    failed = spend(&s, 1, (size_t)start) < 0 || scan_item(&s, (size_t)start, 0, &end) < 0;
    if (!failed && end != s.length)
        failed = fail(&s, end, "%zu trailing bytes", s.length - end) < 0;
    if (!failed)
        Py_RETURN_NONE;
    return Py_BuildValue("(sn)", s.reason, (Py_ssize_t)s.position);
}

static PyMethodDef methods[] = {
    {"verify_p384_many", verify_p384_many, METH_VARARGS,
     "verify_p384_many(jobs, workers, /) -> bytes\n--\n\n"
     "One byte per (public_key, message, signature) job: 1 when the ECDSA P-384/SHA-384\n"
     "signature is valid, else 0. Runs on `workers` threads with the GIL released."},
    {"start_p384_many", start_p384_many, METH_VARARGS,
     "start_p384_many(jobs, workers, /) -> pending\n--\n\n"
     "verify_p384_many's jobs, copied and started on `workers` threads; returns at once.\n"
     "finish_p384_many(pending) waits (GIL released, the caller helping) and returns the verdicts."},
    {"finish_p384_many", finish_p384_many, METH_VARARGS,
     "finish_p384_many(pending, /) -> bytes\n--\n\n"
     "The verdicts of a start_p384_many call, once all are made; only once per call."},
    {"check_cbor", check_cbor, METH_VARARGS,
     "check_cbor(data, start, max_depth, max_items, /) -> (reason, position) | None\n--\n\n"
     "nitro_attest._cbor's strict well-formedness scan of data[start:], in C: None when it is one\n"
     "well-formed item under the decoding profile, else why not and at which byte."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "nitro_attest._native",
    "ECDSA P-384/SHA-384 verification in bulk with GNU Nettle (see nitro_attest._backend).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *module;
    char version[32];

    curve = nettle_get_secp_384r1();
    if (curve == NULL || ecc_bit_size(curve) != 384) {
        PyErr_SetString(PyExc_ImportError, "nitro_attest._native: nettle has no usable secp384r1");
        return NULL;
    }
    module = PyModule_Create(&module_definition);
    if (module == NULL)
        return NULL;
    /* The nettle the module runs with (which may be newer than the headers it was built with). */
    snprintf(version, sizeof version, "%d.%d", nettle_version_major(), nettle_version_minor());
    if (PyModule_AddStringConstant(module, "NETTLE_VERSION", version) < 0 ||
        PyModule_AddIntConstant(module, "MAX_WORKERS", MAX_WORKERS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
