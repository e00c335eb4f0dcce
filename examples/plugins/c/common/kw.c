#include "kw.h"

#include <stdlib.h>
#include <string.h>

void *kw_malloc(size_t size) {
    void *ptr = malloc(size ? size : 1);
    if (ptr == NULL) abort();
    return ptr;
}

void *kw_realloc(void *ptr, size_t size) {
    void *grown = realloc(ptr, size ? size : 1);
    if (grown == NULL) abort();
    return grown;
}

void kw_buf_add(kw_buf *buf, const void *data, size_t len) {
    if (buf->len + len > buf->cap) {
        size_t cap = buf->cap ? buf->cap * 2 : 64;
        while (cap < buf->len + len) cap *= 2;
        buf->ptr = kw_realloc(buf->ptr, cap);
        buf->cap = cap;
    }
    if (len) memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
}

void kw_buf_str(kw_buf *buf, const char *text) { kw_buf_add(buf, text, strlen(text)); }

void kw_buf_byte(kw_buf *buf, uint8_t byte) { kw_buf_add(buf, &byte, 1); }

void kw_buf_u64(kw_buf *buf, uint64_t value) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) kw_buf_byte(buf, (uint8_t)digits[--n]);
}

void kw_buf_i64(kw_buf *buf, int64_t value) {
    if (value < 0) {
        kw_buf_byte(buf, '-');
        kw_buf_u64(buf, (uint64_t)0 - (uint64_t)value);
    } else {
        kw_buf_u64(buf, (uint64_t)value);
    }
}

void kw_buf_free(kw_buf *buf) {
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}

bool kw_bytes_eq(const void *a, size_t a_len, const char *b) {
    size_t b_len = strlen(b);
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* ---- JSON ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *start;
    kw_buf *err;
    bool failed;
} parser;

enum { MAX_DEPTH = 128 };

static void fail(parser *ps, const char *what) {
    if (ps->failed) return;
    ps->failed = true;
    kw_buf_str(ps->err, what);
    kw_buf_str(ps->err, " at byte ");
    kw_buf_u64(ps->err, (uint64_t)(ps->p - ps->start));
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static kw_json *new_value(kw_json_type type) {
    kw_json *v = kw_malloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return true;
    }
    return false;
}

static int hex4(parser *ps) {
    if (ps->end - ps->p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    ps->p += 4;
    return v;
}

static void put_utf8(kw_buf *out, uint32_t cp) {
    if (cp < 0x80) {
        kw_buf_byte(out, (uint8_t)cp);
    } else if (cp < 0x800) {
        kw_buf_byte(out, (uint8_t)(0xC0 | (cp >> 6)));
        kw_buf_byte(out, (uint8_t)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        kw_buf_byte(out, (uint8_t)(0xE0 | (cp >> 12)));
        kw_buf_byte(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        kw_buf_byte(out, (uint8_t)(0x80 | (cp & 0x3F)));
    } else {
        kw_buf_byte(out, (uint8_t)(0xF0 | (cp >> 18)));
        kw_buf_byte(out, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
        kw_buf_byte(out, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        kw_buf_byte(out, (uint8_t)(0x80 | (cp & 0x3F)));
    }
}

/* Parse a string body after the opening quote into `out`. */
static bool parse_string(parser *ps, kw_buf *out) {
    while (ps->p < ps->end) {
        uint8_t c = *ps->p++;
        if (c == '"') return true;
        if (c < 0x20) {
            ps->p--;
            fail(ps, "control character in string");
            return false;
        }
        if (c != '\\') {
            kw_buf_byte(out, c);
            continue;
        }
        if (ps->p >= ps->end) break;
        c = *ps->p++;
        switch (c) {
            case '"': kw_buf_byte(out, '"'); break;
            case '\\': kw_buf_byte(out, '\\'); break;
            case '/': kw_buf_byte(out, '/'); break;
            case 'b': kw_buf_byte(out, '\b'); break;
            case 'f': kw_buf_byte(out, '\f'); break;
            case 'n': kw_buf_byte(out, '\n'); break;
            case 'r': kw_buf_byte(out, '\r'); break;
            case 't': kw_buf_byte(out, '\t'); break;
            case 'u': {
                int hi = hex4(ps);
                if (hi < 0) {
                    fail(ps, "bad \\u escape");
                    return false;
                }
                uint32_t cp = (uint32_t)hi;
                if (hi >= 0xD800 && hi <= 0xDBFF) {
                    int lo = -1;
                    if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                        ps->p += 2;
                        lo = hex4(ps);
                    }
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail(ps, "unpaired surrogate in \\u escape");
                        return false;
                    }
                    cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                    fail(ps, "unpaired surrogate in \\u escape");
                    return false;
                }
                put_utf8(out, cp);
                break;
            }
            default:
                ps->p--;
                fail(ps, "bad escape in string");
                return false;
        }
    }
    fail(ps, "unterminated string");
    return false;
}

static kw_json *parse_value(parser *ps, int depth);

static kw_json *parse_number(parser *ps) {
    const uint8_t *begin = ps->p;
    bool integer = true;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p < ps->end && *ps->p == '0') {
        ps->p++;
    } else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    } else {
        fail(ps, "bad number");
        return NULL;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integer = false;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            fail(ps, "bad number");
            return NULL;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integer = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            fail(ps, "bad number");
            return NULL;
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    size_t n = (size_t)(ps->p - begin);
    char *text = kw_malloc(n + 1);
    memcpy(text, begin, n);
    text[n] = '\0';
    kw_json *v = new_value(KW_JSON_NUMBER);
    v->number = strtod(text, NULL);
    v->integer_literal = integer;
    free(text);
    return v;
}

static kw_json *parse_value(parser *ps, int depth) {
    if (depth > MAX_DEPTH) {
        fail(ps, "nesting too deep");
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return NULL;
    }
    uint8_t c = *ps->p;
    if (c == '{') {
        ps->p++;
        kw_json *obj = new_value(KW_JSON_OBJECT);
        size_t cap = 0;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return obj;
        }
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, "expected a string key");
                kw_json_free(obj);
                return NULL;
            }
            ps->p++;
            kw_buf key = {0};
            if (!parse_string(ps, &key)) {
                kw_buf_free(&key);
                kw_json_free(obj);
                return NULL;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                kw_buf_free(&key);
                fail(ps, "expected `:`");
                kw_json_free(obj);
                return NULL;
            }
            ps->p++;
            kw_json *value = parse_value(ps, depth + 1);
            if (value == NULL) {
                kw_buf_free(&key);
                kw_json_free(obj);
                return NULL;
            }
            if (obj->member_count == cap) {
                cap = cap ? cap * 2 : 8;
                obj->members = kw_realloc(obj->members, cap * sizeof *obj->members);
            }
            kw_buf_byte(&key, 0); /* NUL-terminate for convenience; not counted */
            obj->members[obj->member_count++] =
                (kw_json_member){(char *)key.ptr, key.len - 1, value};
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                return obj;
            }
            fail(ps, "expected `,` or `}`");
            kw_json_free(obj);
            return NULL;
        }
    }
    if (c == '[') {
        ps->p++;
        kw_json *arr = new_value(KW_JSON_ARRAY);
        size_t cap = 0;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return arr;
        }
        for (;;) {
            kw_json *item = parse_value(ps, depth + 1);
            if (item == NULL) {
                kw_json_free(arr);
                return NULL;
            }
            if (arr->item_count == cap) {
                cap = cap ? cap * 2 : 8;
                arr->items = kw_realloc(arr->items, cap * sizeof *arr->items);
            }
            arr->items[arr->item_count++] = item;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                return arr;
            }
            fail(ps, "expected `,` or `]`");
            kw_json_free(arr);
            return NULL;
        }
    }
    if (c == '"') {
        ps->p++;
        kw_buf s = {0};
        if (!parse_string(ps, &s)) {
            kw_buf_free(&s);
            return NULL;
        }
        kw_json *v = new_value(KW_JSON_STRING);
        v->str_len = s.len;
        kw_buf_byte(&s, 0);
        v->str = (char *)s.ptr;
        return v;
    }
    if (literal(ps, "true")) {
        kw_json *v = new_value(KW_JSON_BOOL);
        v->boolean = true;
        return v;
    }
    if (literal(ps, "false")) return new_value(KW_JSON_BOOL);
    if (literal(ps, "null")) return new_value(KW_JSON_NULL);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps);
    fail(ps, "unexpected character");
    return NULL;
}

kw_json *kw_json_parse(const uint8_t *text, size_t len, kw_buf *err) {
    parser ps = {text, text + len, text, err, false};
    kw_json *v = parse_value(&ps, 0);
    if (v == NULL) return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "trailing characters");
        kw_json_free(v);
        return NULL;
    }
    return v;
}

kw_json *kw_json_get(const kw_json *object, const char *key) {
    if (object == NULL || object->type != KW_JSON_OBJECT) return NULL;
    for (size_t i = object->member_count; i > 0; i--) {
        const kw_json_member *m = &object->members[i - 1];
        if (kw_bytes_eq(m->key, m->key_len, key)) return m->value;
    }
    return NULL;
}

void kw_json_free(kw_json *value) {
    if (value == NULL) return;
    free(value->str);
    for (size_t i = 0; i < value->item_count; i++) kw_json_free(value->items[i]);
    free(value->items);
    for (size_t i = 0; i < value->member_count; i++) {
        free(value->members[i].key);
        kw_json_free(value->members[i].value);
    }
    free(value->members);
    free(value);
}

/* ---- test-only triggers ---------------------------------------------------- */

_Noreturn void kw_hang(void) {
    /* volatile: the loop has an observable effect and cannot be removed. */
    volatile uint64_t spins = 0;
    for (;;) spins++;
}

_Noreturn void kw_allocate_until_failure(void) {
    /* Each chunk is written to (its first and last bytes: one page fault
     * each, so the limit is reached in milliseconds, long before the
     * deadline) and linked into a list that stays reachable through a
     * volatile pointer, so the compiler can drop neither the allocations nor
     * the writes. kw_malloc aborts (traps) once the host's memory limit
     * refuses to grow memory. */
    enum { CHUNK = 1 << 20 };
    static void *volatile head = NULL;
    for (;;) {
        uint8_t *chunk = kw_malloc(CHUNK);
        chunk[CHUNK - 1] = 0xA5;
        *(void **)chunk = head;
        head = chunk;
    }
}
