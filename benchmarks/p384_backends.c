/*
 * ECDSA P-384/SHA-384 verification, one library at a time: Wycheproof agreement
 * first, then verifications per second on one thread.
 *
 * Built once per library by benchmarks/p384_backends.py, with exactly one of
 *   -DBACKEND_NETTLE            GNU Nettle/hogweed (what nitro_attest/_native.c uses)
 *   -DBACKEND_OPENSSL_EVP       OpenSSL 3 EVP_PKEY_fromdata + EVP_PKEY_verify
 *   -DBACKEND_OPENSSL_ECKEY     OpenSSL's EC_KEY + ECDSA_do_verify (deprecated in 3.0, still built)
 *   -DBACKEND_OPENSSL_PRECOMP   the same, with the generator's wNAF table precomputed once
 *   -DBACKEND_GCRYPT            libgcrypt gcry_pk_verify on S-expressions
 *   -DBACKEND_WOLFSSL           wolfCrypt wc_ecc_verify_hash_ex
 *   -DBACKEND_BOTAN             Botan 2 through its C API (botan/ffi.h)
 * and run as `p384_backends INPUT SECONDS ROUNDS`. It prints one JSON object.
 *
 * INPUT (written by the driver), one record per line, fields separated by one space,
 * byte strings in hex ("-" for an empty one):
 *   W tcId point message signature expected   a Wycheproof vector (expected 1 valid, 0 not)
 *   P name point message signature            a point that must not become a key; if it does,
 *                                             the signature (forged where it can be) must fail
 *   K point                                   the timing workload's keys, in order
 *   T workload key_index message signature    a valid signature of the timing workload
 *
 * Each backend gives the same five functions: backend_init, key_make (the
 * 97-byte SEC1 point 0x04 || X || Y to whatever per-key object the library can
 * keep and reuse, NULL when the point is not a P-384 point), key_verify (SHA-384
 * of the message and the r || s signature against that key: 1 valid, else 0),
 * key_free, and sha384 (the library's own hash, timed alone). The harness
 * (below the backends) refuses a signature that is not 96 bytes before any
 * backend sees it, as nitro_attest does.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELD_SIZE 48
#define POINT_SIZE (1 + 2 * FIELD_SIZE)
#define SIGNATURE_SIZE (2 * FIELD_SIZE)
#define DIGEST_SIZE 48
#define WARM_UP 16 /* jobs run untimed before each timed mode */

typedef struct bk_key bk_key;

/* ------------------------------------------------------------------------------------------ */
#if defined(BACKEND_NETTLE)

#include <gmp.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/sha2.h>
#include <nettle/version.h>

#define BACKEND_NAME "nettle"
#define LIBRARY "GNU Nettle/hogweed"

struct bk_key {
    struct ecc_point point;
};

static const struct ecc_curve *curve;

static const char *backend_init(char *version, size_t size) {
    curve = nettle_get_secp_384r1();
    snprintf(version, size, "%d.%d", nettle_version_major(), nettle_version_minor());
    return NULL;
}

static bk_key *key_make(const uint8_t *point) {
    mpz_t x, y;
    bk_key *key;
    int ok;
    if (point[0] != 0x04 || (key = malloc(sizeof *key)) == NULL)
        return NULL;
    mpz_init(x);
    mpz_init(y);
    mpz_import(x, FIELD_SIZE, 1, 1, 0, 0, point + 1);
    mpz_import(y, FIELD_SIZE, 1, 1, 0, 0, point + 1 + FIELD_SIZE);
    ecc_point_init(&key->point, curve);
    /* 1 only when both coordinates are below p and (x, y) is on the curve. */
    ok = ecc_point_set(&key->point, x, y) == 1;
    mpz_clear(x);
    mpz_clear(y);
    if (!ok) {
        ecc_point_clear(&key->point);
        free(key);
        return NULL;
    }
    return key;
}

static void key_free(bk_key *key) {
    ecc_point_clear(&key->point);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    struct sha384_ctx ctx;
    sha384_init(&ctx);
    sha384_update(&ctx, length, message);
    sha384_digest(&ctx, DIGEST_SIZE, digest);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    uint8_t digest[DIGEST_SIZE];
    struct dsa_signature sig;
    int valid;
    sha384(message, length, digest);
    dsa_signature_init(&sig);
    mpz_import(sig.r, FIELD_SIZE, 1, 1, 0, 0, signature);
    mpz_import(sig.s, FIELD_SIZE, 1, 1, 0, 0, signature + FIELD_SIZE);
    /* ecdsa_verify refuses r or s outside 1..n-1 itself. */
    valid = ecdsa_verify(&key->point, DIGEST_SIZE, digest, &sig) == 1;
    dsa_signature_clear(&sig);
    return valid;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(BACKEND_OPENSSL_EVP)

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define BACKEND_NAME "openssl-evp"
#define LIBRARY "OpenSSL libcrypto (EVP)"

/* The key object a caller keeps: the EVP_PKEY and a verify context initialised on it. */
struct bk_key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *verify;
};

static EVP_MD *sha384_md; /* fetched once: a fetch per call is a provider lookup */

static const char *backend_init(char *version, size_t size) {
    sha384_md = EVP_MD_fetch(NULL, "SHA384", NULL);
    snprintf(version, size, "%s", OpenSSL_version(OPENSSL_VERSION_STRING));
    return sha384_md == NULL ? "EVP_MD_fetch(SHA384) failed" : NULL;
}

static bk_key *key_make(const uint8_t *point) {
    char group[] = "secp384r1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, POINT_SIZE),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pkey = NULL;
    bk_key *key = NULL;
    /* EC_POINT_oct2point underneath refuses coordinates >= p and points off the curve. */
    if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1 && (key = malloc(sizeof *key)) != NULL) {
        key->pkey = pkey;
        key->verify = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (key->verify == NULL || EVP_PKEY_verify_init(key->verify) != 1) {
            EVP_PKEY_CTX_free(key->verify);
            free(key);
            key = NULL;
        }
    }
    if (key == NULL)
        EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void key_free(bk_key *key) {
    EVP_PKEY_CTX_free(key->verify);
    EVP_PKEY_free(key->pkey);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    EVP_Digest(message, length, digest, NULL, sha384_md, NULL);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    uint8_t digest[DIGEST_SIZE];
    uint8_t der[2 * (FIELD_SIZE + 3) + 3];
    uint8_t *end = der;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, FIELD_SIZE, NULL);
    BIGNUM *s = BN_bin2bn(signature + FIELD_SIZE, FIELD_SIZE, NULL);
    int valid = 0;
    sha384(message, length, digest);
    /* EVP takes the DER form, as every caller of EVP_PKEY_verify must build it from r || s. */
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* owned by sig now */
        if (i2d_ECDSA_SIG(sig, &end) > 0)
            valid = EVP_PKEY_verify(key->verify, der, (size_t)(end - der), digest, DIGEST_SIZE) == 1;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return valid;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(BACKEND_OPENSSL_ECKEY) || defined(BACKEND_OPENSSL_PRECOMP)

#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY and ECDSA_do_verify: deprecated in 3.0, not removed */
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

#if defined(BACKEND_OPENSSL_PRECOMP)
#define BACKEND_NAME "openssl-eckey-precomp"
#define LIBRARY "OpenSSL libcrypto (EC_KEY, G table)"
#else
#define BACKEND_NAME "openssl-eckey"
#define LIBRARY "OpenSSL libcrypto (EC_KEY)"
#endif

struct bk_key {
    EC_KEY *ec;
};

static EC_GROUP *group; /* made once; EC_KEY_set_group copies it (the precomputed table by reference) */

static const char *backend_init(char *version, size_t size) {
    snprintf(version, size, "%s", OpenSSL_version(OPENSSL_VERSION_STRING));
    group = EC_GROUP_new_by_curve_name(NID_secp384r1);
    if (group == NULL)
        return "EC_GROUP_new_by_curve_name(secp384r1) failed";
#if defined(BACKEND_OPENSSL_PRECOMP)
    if (EC_GROUP_precompute_mult(group, NULL) != 1)
        return "EC_GROUP_precompute_mult failed";
#endif
    return NULL;
}

static bk_key *key_make(const uint8_t *point) {
    bk_key *key = malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    key->ec = EC_KEY_new();
    /* EC_KEY_oct2key refuses coordinates >= p and points off the curve. */
    if (key->ec == NULL || EC_KEY_set_group(key->ec, group) != 1 ||
        EC_KEY_oct2key(key->ec, point, POINT_SIZE, NULL) != 1) {
        EC_KEY_free(key->ec);
        free(key);
        return NULL;
    }
    return key;
}

static void key_free(bk_key *key) {
    EC_KEY_free(key->ec);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    SHA384(message, length, digest);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    uint8_t digest[DIGEST_SIZE];
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, FIELD_SIZE, NULL);
    BIGNUM *s = BN_bin2bn(signature + FIELD_SIZE, FIELD_SIZE, NULL);
    int valid = 0;
    sha384(message, length, digest);
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* owned by sig now */
        /* refuses r or s outside 1..n-1 itself */
        valid = ECDSA_do_verify(digest, DIGEST_SIZE, sig, key->ec) == 1;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return valid;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(BACKEND_GCRYPT)

#include <gcrypt.h>

#define BACKEND_NAME "gcrypt"
#define LIBRARY "libgcrypt"

/* libgcrypt keeps no key object: gcry_pk_verify parses this S-expression on every call. */
struct bk_key {
    gcry_sexp_t sexp;
};

static const char *backend_init(char *version, size_t size) {
    const char *running = gcry_check_version(GCRYPT_VERSION);
    if (running == NULL)
        return "gcry_check_version: the library is older than its headers";
    snprintf(version, size, "%s", running);
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return NULL;
}

/* Neither gcry_sexp_build nor gcry_pk_verify checks that Q is on the curve (libgcrypt's
 * ecc_verify only checks that the curve's parameters are there; without this check the probes'
 * keys are all made): checked here, through libgcrypt's own point API. */
static int on_curve(gcry_sexp_t sexp) {
    gcry_ctx_t ctx;
    gcry_mpi_point_t q;
    int on;
    if (gcry_mpi_ec_new(&ctx, sexp, NULL) != 0)
        return 0;
    q = gcry_mpi_ec_get_point("q", ctx, 1); /* a copy, released below: asked for without one, the
                                            * point decoded for "q" is never freed */
    on = q != NULL && gcry_mpi_ec_curve_point(q, ctx) == 1;
    gcry_mpi_point_release(q);
    gcry_ctx_release(ctx);
    return on;
}

static bk_key *key_make(const uint8_t *point) {
    bk_key *key = malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    if (point[0] != 0x04 ||
        gcry_sexp_build(&key->sexp, NULL, "(public-key (ecc (curve \"NIST P-384\") (q %b)))", POINT_SIZE,
                        point) != 0) {
        free(key);
        return NULL;
    }
    if (!on_curve(key->sexp)) {
        gcry_sexp_release(key->sexp);
        free(key);
        return NULL;
    }
    return key;
}

static void key_free(bk_key *key) {
    gcry_sexp_release(key->sexp);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    gcry_md_hash_buffer(GCRY_MD_SHA384, digest, message, length);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    uint8_t digest[DIGEST_SIZE];
    gcry_sexp_t data, sig;
    int valid = 0;
    sha384(message, length, digest);
    if (gcry_sexp_build(&data, NULL, "(data (flags raw) (value %b))", DIGEST_SIZE, digest) != 0)
        return 0;
    if (gcry_sexp_build(&sig, NULL, "(sig-val (ecdsa (r %b) (s %b)))", FIELD_SIZE, signature, FIELD_SIZE,
                        signature + FIELD_SIZE) == 0) {
        valid = gcry_pk_verify(sig, data, key->sexp) == 0;
        gcry_sexp_release(sig);
    }
    gcry_sexp_release(data);
    return valid;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(BACKEND_WOLFSSL)

#include <wolfssl/options.h> /* first: the flags the library was built with */
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha512.h>
#include <wolfssl/wolfcrypt/wolfmath.h>

#define BACKEND_NAME "wolfssl"
#define LIBRARY "wolfSSL wolfCrypt"

struct bk_key {
    ecc_key ecc;
};

static const char *backend_init(char *version, size_t size) {
    snprintf(version, size, "%s", wolfSSL_lib_version());
    return wolfCrypt_Init() == 0 ? NULL : "wolfCrypt_Init failed";
}

static bk_key *key_make(const uint8_t *point) {
    bk_key *key = malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    if (wc_ecc_init(&key->ecc) != 0) {
        free(key);
        return NULL;
    }
    /* wc_ecc_import_x963_ex checks nothing about the point unless the library was built with
     * WOLFSSL_VALIDATE_ECC_IMPORT (Debian's is not), and without this check a key made of
     * 0x04 || 0...0 verifies the probe's signature, forged with no private key. wc_ecc_check_key
     * would add an n*Q multiplication; range and curve equation are checked here instead, by
     * wolfCrypt's own function. */
    if (wc_ecc_import_x963_ex(point, POINT_SIZE, &key->ecc, ECC_SECP384R1) != 0 ||
        wc_ecc_point_is_on_curve(&key->ecc.pubkey, key->ecc.idx) != 0) {
        wc_ecc_free(&key->ecc);
        free(key);
        return NULL;
    }
    return key;
}

static void key_free(bk_key *key) {
    wc_ecc_free(&key->ecc);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    wc_Sha384Hash(message, (word32)length, digest);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    uint8_t digest[DIGEST_SIZE];
    mp_int r, s;
    int result = 0, valid = 0;
    sha384(message, length, digest);
    if (mp_init(&r) != 0)
        return 0;
    if (mp_init(&s) == 0) {
        if (mp_read_unsigned_bin(&r, signature, FIELD_SIZE) == 0 &&
            mp_read_unsigned_bin(&s, signature + FIELD_SIZE, FIELD_SIZE) == 0)
            valid = wc_ecc_verify_hash_ex(&r, &s, digest, DIGEST_SIZE, &result, &key->ecc) == 0 && result == 1;
        mp_clear(&s);
    }
    mp_clear(&r);
    return valid;
}

/* ------------------------------------------------------------------------------------------ */
#elif defined(BACKEND_BOTAN)

#include <botan/ffi.h>

#define BACKEND_NAME "botan"
#define LIBRARY "Botan 2 (C API)"

/* The key object a caller keeps: the public key and a verify operation on it (reusable). */
struct bk_key {
    botan_pubkey_t pub;
    botan_pk_op_verify_t op;
};

/* SubjectPublicKeyInfo of a P-384 key is this fixed 23-byte header and the 97-byte point.
 * botan_pubkey_load_ecdsa (x, y) makes a key of a point off the curve (the probes' off_curve and
 * zeros); loading the SPKI checks the point (OS2ECP), and takes the hybrid form too. */
static const uint8_t SPKI_PREFIX[] = {
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
};

static botan_hash_t hash; /* reused: botan_hash_final resets it */

static const char *backend_init(char *version, size_t size) {
    snprintf(version, size, "%s", botan_version_string());
    return botan_hash_init(&hash, "SHA-384", 0) == 0 ? NULL : "botan_hash_init(SHA-384) failed";
}

static bk_key *key_make(const uint8_t *point) {
    uint8_t spki[sizeof SPKI_PREFIX + POINT_SIZE];
    bk_key *key = malloc(sizeof *key);
    if (key == NULL)
        return NULL;
    memcpy(spki, SPKI_PREFIX, sizeof SPKI_PREFIX);
    memcpy(spki + sizeof SPKI_PREFIX, point, POINT_SIZE);
    if (botan_pubkey_load(&key->pub, spki, sizeof spki) != 0) {
        free(key);
        return NULL;
    }
    /* flags 0: the signature is IEEE 1363 r || s */
    if (botan_pk_op_verify_create(&key->op, key->pub, "EMSA1(SHA-384)", 0) != 0) {
        botan_pubkey_destroy(key->pub);
        free(key);
        return NULL;
    }
    return key;
}

static void key_free(bk_key *key) {
    botan_pk_op_verify_destroy(key->op);
    botan_pubkey_destroy(key->pub);
    free(key);
}

static void sha384(const uint8_t *message, size_t length, uint8_t *digest) {
    botan_hash_update(hash, message, length);
    botan_hash_final(hash, digest);
}

static int key_verify(bk_key *key, const uint8_t *message, size_t length, const uint8_t *signature) {
    /* 0 valid, BOTAN_FFI_INVALID_VERIFIER (1) not; refuses r or s outside 1..n-1 itself */
    return botan_pk_op_verify_update(key->op, message, length) == 0 &&
           botan_pk_op_verify_finish(key->op, signature, SIGNATURE_SIZE) == 0;
}

/* ------------------------------------------------------------------------------------------ */
#else
#error "compile with one -DBACKEND_<NAME> (see the top of this file)"
#endif

/* ===================================== the harness ======================================== */

typedef struct {
    uint8_t *bytes;
    size_t length;
} blob;

typedef struct {
    char tag;
    char *name;       /* W: tcId; P: probe name; T: workload */
    long index;       /* T: key index; W: expected verdict */
    blob point;       /* W, P, K */
    blob message;     /* W, P, T */
    blob signature;   /* W, P, T */
} record;

static void die(const char *what) {
    fprintf(stderr, "p384_backends: %s\n", what);
    exit(2);
}

static int nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static blob unhex(const char *text) {
    blob out = {NULL, 0};
    size_t digits = strlen(text);
    if (strcmp(text, "-") == 0)
        digits = 0;
    if (digits % 2 != 0)
        die("odd number of hex digits in the input");
    out.length = digits / 2;
    out.bytes = malloc(out.length > 0 ? out.length : 1);
    if (out.bytes == NULL)
        die("out of memory");
    for (size_t i = 0; i < out.length; i++) {
        int high = nibble(text[2 * i]), low = nibble(text[2 * i + 1]);
        if (high < 0 || low < 0)
            die("a non-hex digit in the input");
        out.bytes[i] = (uint8_t)(high << 4 | low);
    }
    return out;
}

/* The next space-separated field of *line (which it advances); dies when there is none. */
static char *field(char **line) {
    char *start = *line, *end;
    if (start == NULL || *start == '\0')
        die("a record has too few fields");
    end = strchr(start, ' ');
    if (end != NULL) {
        *end = '\0';
        *line = end + 1;
    } else {
        *line = start + strlen(start);
    }
    return start;
}

static char *copy_text(const char *text) {
    char *out = malloc(strlen(text) + 1);
    if (out == NULL)
        die("out of memory");
    return strcpy(out, text);
}

static record *read_input(const char *path, size_t *count) {
    FILE *file = fopen(path, "r");
    char *line = NULL, *cursor;
    size_t capacity = 0, allocated = 256;
    ssize_t got;
    record *records = malloc(allocated * sizeof *records);
    if (file == NULL)
        die(strerror(errno));
    if (records == NULL)
        die("out of memory");
    *count = 0;
    while ((got = getline(&line, &capacity, file)) > 0) {
        record r = {0};
        if (line[got - 1] == '\n')
            line[got - 1] = '\0';
        if (line[0] == '\0')
            continue;
        cursor = line;
        r.tag = field(&cursor)[0];
        switch (r.tag) {
        case 'W':
            r.name = copy_text(field(&cursor));
            r.point = unhex(field(&cursor));
            r.message = unhex(field(&cursor));
            r.signature = unhex(field(&cursor));
            r.index = strtol(field(&cursor), NULL, 10);
            break;
        case 'P':
            r.name = copy_text(field(&cursor));
            r.point = unhex(field(&cursor));
            r.message = unhex(field(&cursor));
            r.signature = unhex(field(&cursor));
            break;
        case 'K':
            r.point = unhex(field(&cursor));
            break;
        case 'T':
            r.name = copy_text(field(&cursor));
            r.index = strtol(field(&cursor), NULL, 10);
            r.message = unhex(field(&cursor));
            r.signature = unhex(field(&cursor));
            break;
        default:
            die("an unknown record tag");
        }
        if ((r.tag == 'W' || r.tag == 'P' || r.tag == 'K') && r.point.length != POINT_SIZE)
            die("a point that is not 97 bytes");
        if (*count == allocated) {
            allocated *= 2;
            records = realloc(records, allocated * sizeof *records);
            if (records == NULL)
                die("out of memory");
        }
        records[(*count)++] = r;
    }
    free(line);
    fclose(file);
    return records;
}

static void free_records(record *records, size_t count) {
    for (size_t i = 0; i < count; i++) {
        free(records[i].name);
        free(records[i].point.bytes);
        free(records[i].message.bytes);
        free(records[i].signature.bytes);
    }
    free(records);
}

/* What nitro_attest's callers get: a wrong-length signature never reaches a backend. */
static int verify_with(bk_key *key, const blob *message, const blob *signature) {
    if (key == NULL || signature->length != SIGNATURE_SIZE)
        return 0;
    return key_verify(key, message->bytes, message->length, signature->bytes);
}

static int verify_fresh(const blob *point, const blob *message, const blob *signature) {
    bk_key *key = key_make(point->bytes);
    int valid = verify_with(key, message, signature);
    if (key != NULL)
        key_free(key);
    return valid;
}

static double now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef enum { MODE_CACHED, MODE_FRESH, MODE_SHA384, MODE_KEY_MAKE } mode_t_;

static const char *const MODE_NAMES[] = {"verify_cached", "verify_fresh", "sha384", "key_make"};

typedef struct {
    record **jobs;   /* the T records of one workload */
    size_t count;
    bk_key **keys;   /* made once, for MODE_CACHED */
    record **points; /* the K records */
} workload;

static volatile uint8_t sink; /* keeps the hash-only loop from being optimised away */

/* One pass over every job of the workload; the number of verdicts that were not 1. */
static size_t one_pass(const workload *w, mode_t_ mode) {
    size_t failures = 0;
    uint8_t digest[DIGEST_SIZE];
    for (size_t i = 0; i < w->count; i++) {
        const record *job = w->jobs[i];
        switch (mode) {
        case MODE_CACHED:
            failures += verify_with(w->keys[job->index], &job->message, &job->signature) != 1;
            break;
        case MODE_FRESH:
            failures += verify_fresh(&w->points[job->index]->point, &job->message, &job->signature) != 1;
            break;
        case MODE_SHA384:
            sha384(job->message.bytes, job->message.length, digest);
            sink ^= digest[0];
            break;
        case MODE_KEY_MAKE: {
            bk_key *key = key_make(w->points[job->index]->point.bytes);
            failures += key == NULL;
            if (key != NULL)
                key_free(key);
            break;
        }
        }
    }
    return failures;
}

/* Prints "NAME": {"wall": [...], "cpu": [...], "failures": F}: operations per second of wall-clock
 * and of this thread's CPU time, one per sample of whole passes over the workload, each sample at
 * least `seconds` long; F counts the verdicts that were not 1 (all of the workload is valid). */
static void time_mode(const workload *w, mode_t_ mode, const char *label, double seconds, int rounds, int first) {
    double wall[64], cpu[64];
    size_t failures = 0;
    if (rounds > 64)
        rounds = 64;
    workload warm = *w;
    if (warm.count > WARM_UP)
        warm.count = WARM_UP;
    failures += one_pass(&warm, mode); /* caches, lazily built tables */
    for (int r = 0; r < rounds; r++) {
        size_t operations = 0;
        double wall0 = now(CLOCK_MONOTONIC), cpu0 = now(CLOCK_THREAD_CPUTIME_ID), wall1, cpu1;
        do {
            failures += one_pass(w, mode);
            operations += w->count;
            wall1 = now(CLOCK_MONOTONIC);
        } while (wall1 - wall0 < seconds);
        cpu1 = now(CLOCK_THREAD_CPUTIME_ID);
        wall[r] = (double)operations / (wall1 - wall0);
        cpu[r] = (double)operations / (cpu1 - cpu0);
    }
    printf("%s\n    \"%s:%s\": {\"wall\": [", first ? "" : ",", MODE_NAMES[mode], label);
    for (int r = 0; r < rounds; r++)
        printf("%s%.1f", r ? ", " : "", wall[r]);
    printf("], \"cpu\": [");
    for (int r = 0; r < rounds; r++)
        printf("%s%.1f", r ? ", " : "", cpu[r]);
    printf("], \"failures\": %zu}", failures);
}

int main(int argc, char **argv) {
    char version[128] = "?";
    const char *error;
    size_t count, wycheproof = 0, agree = 0, printed = 0;
    record *records;
    record **points;
    size_t key_count = 0;
    double seconds;
    int rounds, first = 1;

    if (argc != 4)
        die("usage: p384_backends INPUT SECONDS ROUNDS");
    seconds = strtod(argv[2], NULL);
    rounds = atoi(argv[3]);
    if (rounds < 1)
        die("ROUNDS must be at least 1");
    error = backend_init(version, sizeof version);
    if (error != NULL)
        die(error);
    records = read_input(argv[1], &count);

    printf("{\"backend\": \"%s\", \"library\": \"%s\", \"version\": \"%s\",\n", BACKEND_NAME, LIBRARY, version);

    /* Wycheproof: a fresh key per vector, then the same vector again through a key made once
     * per distinct point (the two paths must agree). */
    printf(" \"wycheproof_disagree\": [");
    for (size_t i = 0; i < count; i++) {
        const record *v = &records[i];
        int got;
        if (v->tag != 'W')
            continue;
        wycheproof++;
        got = verify_fresh(&v->point, &v->message, &v->signature);
        if (got == v->index) {
            agree++;
        } else {
            printf("%s{\"tcId\": %s, \"expected\": %ld, \"got\": %d}", printed++ ? ", " : "", v->name, v->index, got);
        }
    }
    printf("],\n \"wycheproof_total\": %zu, \"wycheproof_agree\": %zu,\n", wycheproof, agree);
    printf(" \"cached_differs\": [");
    printed = 0;
    {
        bk_key *key = NULL;
        const uint8_t *current = NULL;
        for (size_t i = 0; i < count; i++) {
            const record *v = &records[i];
            if (v->tag != 'W')
                continue;
            if (current == NULL || memcmp(current, v->point.bytes, POINT_SIZE) != 0) {
                if (key != NULL)
                    key_free(key);
                key = key_make(v->point.bytes);
                current = v->point.bytes;
            }
            if (verify_with(key, &v->message, &v->signature) != verify_fresh(&v->point, &v->message, &v->signature))
                printf("%s%s", printed++ ? ", " : "", v->name);
        }
        if (key != NULL)
            key_free(key);
    }
    printf("],\n");

    /* Points that are not P-384 points: key_make must refuse each (and if it does not, the
     * probe's signature, forged for a key that behaves as the point at infinity or as a point
     * of order 2, must still fail). */
    printf(" \"probes\": {");
    printed = 0;
    for (size_t i = 0; i < count; i++) {
        const record *p = &records[i];
        bk_key *key;
        const char *verdict = "refused";
        if (p->tag != 'P')
            continue;
        key = key_make(p->point.bytes);
        if (key != NULL) {
            verdict = verify_with(key, &p->message, &p->signature) ? "KEY MADE, SIGNATURE VERIFIED"
                                                                    : "key made, signature refused";
            key_free(key);
        }
        printf("%s\"%s\": \"%s\"", printed++ ? ", " : "", p->name, verdict);
    }
    printf("},\n");

    points = malloc((count > 0 ? count : 1) * sizeof *points);
    if (points == NULL)
        die("out of memory");
    for (size_t i = 0; i < count; i++)
        if (records[i].tag == 'K')
            points[key_count++] = &records[i];

    /* Timing: one workload per distinct T label, in input order. */
    printf(" \"timing\": {");
    {
        bk_key **keys = calloc(key_count > 0 ? key_count : 1, sizeof *keys);
        record **jobs = malloc((count > 0 ? count : 1) * sizeof *jobs);
        int key_timed = 0;
        if (keys == NULL || jobs == NULL)
            die("out of memory");
        for (size_t k = 0; k < key_count; k++)
            if ((keys[k] = key_make(points[k]->point.bytes)) == NULL)
                die("a timing key was refused");
        for (size_t i = 0; i < count; i++) {
            workload w = {jobs, 0, keys, points};
            int seen = 0;
            if (records[i].tag != 'T')
                continue;
            for (size_t j = 0; j < i && !seen; j++)
                seen = records[j].tag == 'T' && strcmp(records[j].name, records[i].name) == 0;
            if (seen)
                continue;
            for (size_t j = i; j < count; j++) {
                if (records[j].tag != 'T' || strcmp(records[j].name, records[i].name) != 0)
                    continue;
                if (records[j].index < 0 || (size_t)records[j].index >= key_count)
                    die("a timing job names a key that is not there");
                jobs[w.count++] = &records[j];
            }
            time_mode(&w, MODE_CACHED, records[i].name, seconds, rounds, first);
            first = 0;
            time_mode(&w, MODE_FRESH, records[i].name, seconds, rounds, first);
            time_mode(&w, MODE_SHA384, records[i].name, seconds, rounds, first);
            if (!key_timed) {
                time_mode(&w, MODE_KEY_MAKE, "point", seconds, rounds, first);
                key_timed = 1;
            }
        }
        for (size_t k = 0; k < key_count; k++)
            key_free(keys[k]);
        free(keys);
        free(jobs);
    }
    free(points);
    free_records(records, count);
    printf("\n }\n}\n");
    return 0;
}
