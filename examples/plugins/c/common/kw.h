/*
 * Small helpers shared by the C example plugins: a growable byte buffer and a
 * JSON parser (enough for settings and Vault responses). Allocation failure
 * aborts, which traps: the host reports it, and a memory limit shows as such.
 */
#ifndef KEYWARD_EXAMPLE_KW_H
#define KEYWARD_EXAMPLE_KW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest integer every language's JSON parser reads exactly. */
#define KW_MAX_SAFE_INTEGER 9007199254740991.0

void *kw_malloc(size_t size);
void *kw_realloc(void *ptr, size_t size);

/* A growable byte buffer; `ptr` is malloc'ed and may be handed over. */
typedef struct {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} kw_buf;

void kw_buf_add(kw_buf *buf, const void *data, size_t len);
void kw_buf_str(kw_buf *buf, const char *text);
void kw_buf_byte(kw_buf *buf, uint8_t byte);
void kw_buf_u64(kw_buf *buf, uint64_t value);
void kw_buf_i64(kw_buf *buf, int64_t value);
void kw_buf_free(kw_buf *buf);

/* JSON values. Strings are UTF-8 with their length (they may hold NUL). */
typedef enum {
    KW_JSON_NULL,
    KW_JSON_BOOL,
    KW_JSON_NUMBER,
    KW_JSON_STRING,
    KW_JSON_ARRAY,
    KW_JSON_OBJECT,
} kw_json_type;

typedef struct kw_json kw_json;

typedef struct {
    char *key;
    size_t key_len;
    kw_json *value;
} kw_json_member;

struct kw_json {
    kw_json_type type;
    bool boolean;
    double number;
    /* The number was written as an integer literal (no fraction, no exponent). */
    bool integer_literal;
    char *str;
    size_t str_len;
    kw_json **items;
    size_t item_count;
    kw_json_member *members;
    size_t member_count;
};

/* Parse a whole document. On error returns NULL and appends a reason to `err`. */
kw_json *kw_json_parse(const uint8_t *text, size_t len, kw_buf *err);
/* The last member named `key` (as JavaScript and Python keep the last), or NULL. */
kw_json *kw_json_get(const kw_json *object, const char *key);
void kw_json_free(kw_json *value);

bool kw_bytes_eq(const void *a, size_t a_len, const char *b);

/* Test-only triggers shared by both plugins. */
_Noreturn void kw_hang(void);
_Noreturn void kw_allocate_until_failure(void);

#endif
