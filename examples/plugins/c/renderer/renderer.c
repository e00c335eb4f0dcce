/*
 * Keyward example renderer plugin in C (world `renderer`): Java `.properties`.
 *
 * Every key of every granted secret becomes one `key=value` line, keys sorted
 * by their UTF-8 bytes, with `.properties` escaping. A template, when given,
 * lists the secrets to include (one reference per line, `k=v` parameters
 * after it). The `prefix` setting is put in front of every key.
 *
 * The same behaviour is implemented in Rust, Python and JavaScript next to
 * this file and checked by one suite: tests/conformance/renderer.
 *
 * Ownership (wit-bindgen c): arguments belong to the callee, which frees
 * them; everything returned must be malloc'ed and is freed by the generated
 * post-return functions after the host has copied it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kw.h"
#include "renderer.h"

typedef exports_keyward_plugin_render_plugin_error_t plugin_error;
typedef exports_keyward_plugin_render_secret_ref_t secret_ref;
typedef exports_keyward_plugin_render_secret_value_t secret_value;
typedef exports_keyward_plugin_render_list_secret_ref_t list_secret_ref;

/* The data key of the Kubernetes Secret this renderer writes. */
static const char SECRET_KEY[] = "application.properties";
/* File mode when the target gives none. */
enum { DEFAULT_MODE = 0600 };

typedef struct {
    kw_json *doc; /* owns prefix */
    const char *prefix;
    size_t prefix_len;
    bool debug_hang;
    bool debug_allocate;
} settings;

static const char *const KNOWN[] = {"prefix", "debug-hang", "debug-allocate"};

static renderer_string_t take_string(kw_buf *buf) {
    renderer_string_t s = {buf->ptr, buf->len};
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    if (s.ptr == NULL) s.ptr = kw_malloc(1);
    return s;
}

static renderer_string_t copy_string(const void *data, size_t len) {
    kw_buf buf = {0};
    kw_buf_add(&buf, data, len);
    return take_string(&buf);
}

static bool fail_with(plugin_error *err, uint8_t tag, kw_buf *message) {
    err->tag = tag;
    /* every case of plugin-error carries a string at the same place */
    err->val.invalid_settings = take_string(message);
    return false;
}

static bool invalid_settings_str(plugin_error *err, const char *message) {
    kw_buf buf = {0};
    kw_buf_str(&buf, message);
    return fail_with(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS, &buf);
}

static bool invalid_input(plugin_error *err, kw_buf *message) {
    return fail_with(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT, message);
}

static bool invalid_input_str(plugin_error *err, const char *message) {
    kw_buf buf = {0};
    kw_buf_str(&buf, message);
    return invalid_input(err, &buf);
}

/* Byte-wise order, shorter first on a common prefix: code point order. */
static int compare_bytes(const void *a, size_t a_len, const void *b, size_t b_len) {
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c) return c;
    return (a_len > b_len) - (a_len < b_len);
}

static bool is_known(const char *key, size_t len) {
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        if (kw_bytes_eq(key, len, KNOWN[i])) return true;
    return false;
}

static bool flag(const kw_json *doc, const char *key, bool *out, plugin_error *err) {
    const kw_json *v = kw_json_get(doc, key);
    *out = false;
    if (v == NULL) return true;
    if (v->type != KW_JSON_BOOL) {
        kw_buf msg = {0};
        kw_buf_str(&msg, "`");
        kw_buf_str(&msg, key);
        kw_buf_str(&msg, "` must be true or false");
        return fail_with(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS, &msg);
    }
    *out = v->boolean;
    return true;
}

static bool parse_settings(const renderer_string_t *raw, settings *out, plugin_error *err) {
    memset(out, 0, sizeof *out);
    out->prefix = "";
    kw_buf why = {0};
    kw_json *doc = kw_json_parse(raw->ptr, raw->len, &why);
    if (doc == NULL) {
        kw_buf msg = {0};
        kw_buf_str(&msg, "settings are not valid JSON: ");
        kw_buf_add(&msg, why.ptr, why.len);
        kw_buf_free(&why);
        return fail_with(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS, &msg);
    }
    out->doc = doc;
    if (doc->type != KW_JSON_OBJECT) return invalid_settings_str(err, "settings must be a JSON object");

    const kw_json_member *unknown = NULL;
    for (size_t i = 0; i < doc->member_count; i++) {
        const kw_json_member *m = &doc->members[i];
        if (is_known(m->key, m->key_len)) continue;
        if (unknown == NULL ||
            compare_bytes(m->key, m->key_len, unknown->key, unknown->key_len) < 0)
            unknown = m;
    }
    if (unknown != NULL) {
        kw_buf msg = {0};
        kw_buf_str(&msg, "unknown setting `");
        kw_buf_add(&msg, unknown->key, unknown->key_len);
        kw_buf_str(&msg, "`");
        return fail_with(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS, &msg);
    }
    const kw_json *prefix = kw_json_get(doc, "prefix");
    if (prefix != NULL) {
        if (prefix->type != KW_JSON_STRING) return invalid_settings_str(err, "`prefix` must be a string");
        out->prefix = prefix->str;
        out->prefix_len = prefix->str_len;
    }
    return flag(doc, "debug-hang", &out->debug_hang, err) &&
           flag(doc, "debug-allocate", &out->debug_allocate, err);
}

bool exports_keyward_plugin_render_validate_settings(renderer_string_t *raw, plugin_error *err) {
    settings s;
    bool ok = parse_settings(raw, &s, err);
    kw_json_free(s.doc);
    renderer_string_free(raw);
    return ok;
}

/* ---- templates ------------------------------------------------------------ */

static bool is_blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

static bool same_parameters(const renderer_list_pair_t *a, const renderer_list_pair_t *b) {
    if (a->len != b->len) return false;
    for (size_t i = 0; i < a->len; i++) {
        const keyward_plugin_types_pair_t *x = &a->ptr[i], *y = &b->ptr[i];
        if (compare_bytes(x->f0.ptr, x->f0.len, y->f0.ptr, y->f0.len) != 0 ||
            compare_bytes(x->f1.ptr, x->f1.len, y->f1.ptr, y->f1.len) != 0)
            return false;
    }
    return true;
}

/* A template is a list of secrets, one per line: `reference [k=v ...]`.
 * Blank lines and lines starting with `#` are skipped. */
static bool parse_template(const renderer_string_t *text, list_secret_ref *out, plugin_error *err) {
    size_t cap = 0;
    out->ptr = NULL;
    out->len = 0;
    const uint8_t *p = text->ptr, *end = p + text->len;
    for (uint64_t number = 1;; number++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *line = p, *line_end = nl ? nl : end;
        while (line < line_end && is_blank(*line)) line++;
        while (line_end > line && is_blank(line_end[-1])) line_end--;
        if (line < line_end && *line != '#') {
            secret_ref ref;
            memset(&ref, 0, sizeof ref);
            ref.kind = EXPORTS_KEYWARD_PLUGIN_RENDER_REF_KIND_SECRET;
            size_t param_cap = 0;
            bool first = true;
            const uint8_t *q = line;
            while (q < line_end) {
                while (q < line_end && (*q == ' ' || *q == '\t')) q++;
                if (q == line_end) break;
                const uint8_t *tok = q;
                while (q < line_end && *q != ' ' && *q != '\t') q++;
                size_t n = (size_t)(q - tok);
                if (first) {
                    ref.reference = copy_string(tok, n);
                    first = false;
                    continue;
                }
                const uint8_t *eq = memchr(tok, '=', n);
                if (eq == NULL || eq == tok) {
                    kw_buf msg = {0};
                    kw_buf_str(&msg, "template line ");
                    kw_buf_u64(&msg, number);
                    kw_buf_str(&msg, ": parameter `");
                    kw_buf_add(&msg, tok, n);
                    kw_buf_str(&msg, "` is not key=value");
                    exports_keyward_plugin_render_secret_ref_free(&ref);
                    exports_keyward_plugin_render_list_secret_ref_free(out);
                    return invalid_input(err, &msg);
                }
                if (ref.parameters.len == param_cap) {
                    param_cap = param_cap ? param_cap * 2 : 4;
                    ref.parameters.ptr =
                        kw_realloc(ref.parameters.ptr, param_cap * sizeof *ref.parameters.ptr);
                }
                keyward_plugin_types_pair_t *pair = &ref.parameters.ptr[ref.parameters.len++];
                pair->f0 = copy_string(tok, (size_t)(eq - tok));
                pair->f1 = copy_string(eq + 1, (size_t)(tok + n - eq - 1));
            }
            for (size_t i = 0; i < out->len; i++) {
                if (compare_bytes(out->ptr[i].reference.ptr, out->ptr[i].reference.len,
                                  ref.reference.ptr, ref.reference.len) == 0 &&
                    same_parameters(&out->ptr[i].parameters, &ref.parameters)) {
                    kw_buf msg = {0};
                    kw_buf_str(&msg, "template line ");
                    kw_buf_u64(&msg, number);
                    kw_buf_str(&msg, ": `");
                    kw_buf_add(&msg, ref.reference.ptr, ref.reference.len);
                    kw_buf_str(&msg, "` is listed twice");
                    exports_keyward_plugin_render_secret_ref_free(&ref);
                    exports_keyward_plugin_render_list_secret_ref_free(out);
                    return invalid_input(err, &msg);
                }
            }
            if (out->len == cap) {
                cap = cap ? cap * 2 : 4;
                out->ptr = kw_realloc(out->ptr, cap * sizeof *out->ptr);
            }
            out->ptr[out->len++] = ref;
        }
        if (nl == NULL) break;
        p = nl + 1;
    }
    return true;
}

bool exports_keyward_plugin_render_plan(renderer_string_t *maybe_template, renderer_string_t *raw,
                                        list_secret_ref *ret, plugin_error *err) {
    settings s;
    bool ok = parse_settings(raw, &s, err);
    kw_json_free(s.doc);
    if (ok) {
        ret->ptr = NULL;
        ret->len = 0;
        if (maybe_template != NULL) ok = parse_template(maybe_template, ret, err);
    }
    if (maybe_template != NULL) renderer_string_free(maybe_template);
    renderer_string_free(raw);
    return ok;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct {
    kw_buf key;   /* prefix + key, unescaped */
    kw_buf value; /* rendered value, unescaped */
} entry;

typedef struct {
    entry *ptr;
    size_t len;
    size_t cap;
} entries;

static void entries_free(entries *es) {
    for (size_t i = 0; i < es->len; i++) {
        kw_buf_free(&es->ptr[i].key);
        kw_buf_free(&es->ptr[i].value);
    }
    free(es->ptr);
}

static int compare_entries(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return compare_bytes(x->key.ptr, x->key.len, y->key.ptr, y->key.len);
}

/* Add the keys of one secret. KV v2 responses (`data` and `metadata` side by
 * side) are unwrapped to their inner `data`. */
static bool add_secret(const settings *s, const secret_value *secret, entries *es, plugin_error *err) {
    kw_buf why = {0};
    kw_json *doc = kw_json_parse(secret->data.ptr, secret->data.len, &why);
    kw_buf_free(&why);
    kw_buf msg = {0};
    if (doc == NULL || doc->type != KW_JSON_OBJECT) {
        kw_json_free(doc);
        kw_buf_str(&msg, "secret `");
        kw_buf_add(&msg, secret->reference.ptr, secret->reference.len);
        kw_buf_str(&msg, "`: data is not a JSON object");
        return invalid_input(err, &msg);
    }
    const kw_json *data = doc;
    if (kw_json_get(doc, "data") != NULL && kw_json_get(doc, "metadata") != NULL) {
        data = kw_json_get(doc, "data");
        if (data->type != KW_JSON_OBJECT) {
            kw_json_free(doc);
            kw_buf_str(&msg, "secret `");
            kw_buf_add(&msg, secret->reference.ptr, secret->reference.len);
            kw_buf_str(&msg, "`: the KV v2 version holds no data (deleted or destroyed)");
            return invalid_input(err, &msg);
        }
    }
    for (size_t i = 0; i < data->member_count; i++) {
        const kw_json_member *m = &data->members[i];
        const kw_json *v = m->value;
        entry e = {{0}, {0}};
        kw_buf_add(&e.key, s->prefix, s->prefix_len);
        kw_buf_add(&e.key, m->key, m->key_len);
        if (v->type == KW_JSON_STRING) {
            kw_buf_add(&e.value, v->str, v->str_len);
        } else if (v->type == KW_JSON_BOOL) {
            kw_buf_str(&e.value, v->boolean ? "true" : "false");
        } else if (v->type == KW_JSON_NULL) {
            /* empty */
        } else if (v->type == KW_JSON_NUMBER && isfinite(v->number) &&
                   floor(v->number) == v->number && fabs(v->number) <= KW_MAX_SAFE_INTEGER) {
            kw_buf_i64(&e.value, (int64_t)v->number);
        } else {
            kw_buf_free(&e.key);
            kw_buf_str(&msg, "secret `");
            kw_buf_add(&msg, secret->reference.ptr, secret->reference.len);
            kw_buf_str(&msg, "`, key `");
            kw_buf_add(&msg, m->key, m->key_len);
            kw_buf_str(&msg, "`: only strings, integers, booleans and null can be written to .properties");
            kw_json_free(doc);
            return invalid_input(err, &msg);
        }
        for (size_t j = 0; j < es->len; j++) {
            if (compare_bytes(es->ptr[j].key.ptr, es->ptr[j].key.len, e.key.ptr, e.key.len) == 0) {
                kw_buf_str(&msg, "duplicate key `");
                kw_buf_add(&msg, e.key.ptr, e.key.len);
                kw_buf_str(&msg, "`");
                kw_buf_free(&e.key);
                kw_buf_free(&e.value);
                kw_json_free(doc);
                return invalid_input(err, &msg);
            }
        }
        if (es->len == es->cap) {
            es->cap = es->cap ? es->cap * 2 : 16;
            es->ptr = kw_realloc(es->ptr, es->cap * sizeof *es->ptr);
        }
        es->ptr[es->len++] = e;
    }
    kw_json_free(doc);
    return true;
}

/* `.properties` escaping: `\`, `=`, `:`, `#`, `!` get a backslash; newline,
 * carriage return, tab and form feed become `\n`, `\r`, `\t`, `\f`; other
 * control characters `\uXXXX`; spaces are escaped everywhere in keys and at
 * the start of values. Bytes from 0x80 up (multi-byte UTF-8) pass through. */
static void escape(kw_buf *out, const kw_buf *text, bool is_key) {
    static const char HEX[] = "0123456789ABCDEF";
    for (size_t i = 0; i < text->len; i++) {
        uint8_t c = text->ptr[i];
        switch (c) {
            case '\\': case '=': case ':': case '#': case '!':
                kw_buf_byte(out, '\\');
                kw_buf_byte(out, c);
                break;
            case '\n': kw_buf_str(out, "\\n"); break;
            case '\r': kw_buf_str(out, "\\r"); break;
            case '\t': kw_buf_str(out, "\\t"); break;
            case '\f': kw_buf_str(out, "\\f"); break;
            case ' ':
                if (is_key || i == 0) kw_buf_byte(out, '\\');
                kw_buf_byte(out, ' ');
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    kw_buf_str(out, "\\u00");
                    kw_buf_byte(out, (uint8_t)HEX[c >> 4]);
                    kw_buf_byte(out, (uint8_t)HEX[c & 0xF]);
                } else {
                    kw_buf_byte(out, c);
                }
        }
    }
}

static bool render(exports_keyward_plugin_render_render_request_t *request, const settings *s,
                   exports_keyward_plugin_render_list_artifact_t *ret, plugin_error *err) {
    const exports_keyward_plugin_render_target_t *target = &request->target;
    if (target->kind == KEYWARD_PLUGIN_TYPES_DELIVERY_KIND_ENV)
        return invalid_input_str(
            err, "this renderer writes files and Kubernetes Secrets, not environment variables");
    if (target->name.len == 0) return invalid_input_str(err, "the target has no name");

    /* The secrets to render: all of them, or those the template lists. */
    size_t count = request->secrets.len;
    const secret_value **selected = kw_malloc((count ? count : 1) * sizeof *selected);
    if (!request->template_.is_some) {
        for (size_t i = 0; i < count; i++) selected[i] = &request->secrets.ptr[i];
    } else {
        list_secret_ref refs;
        if (!parse_template(&request->template_.val, &refs, err)) {
            free(selected);
            return false;
        }
        selected = kw_realloc(selected, (refs.len ? refs.len : 1) * sizeof *selected);
        count = refs.len;
        for (size_t i = 0; i < refs.len; i++) {
            const secret_ref *ref = &refs.ptr[i];
            selected[i] = NULL;
            for (size_t j = 0; j < request->secrets.len && selected[i] == NULL; j++) {
                const secret_value *sv = &request->secrets.ptr[j];
                if (compare_bytes(sv->reference.ptr, sv->reference.len, ref->reference.ptr,
                                  ref->reference.len) == 0 &&
                    same_parameters(&sv->parameters, &ref->parameters))
                    selected[i] = sv;
            }
            if (selected[i] == NULL) {
                kw_buf msg = {0};
                kw_buf_str(&msg, "secret `");
                kw_buf_add(&msg, ref->reference.ptr, ref->reference.len);
                kw_buf_str(&msg, "` named in the template was not granted");
                exports_keyward_plugin_render_list_secret_ref_free(&refs);
                free(selected);
                return invalid_input(err, &msg);
            }
        }
        exports_keyward_plugin_render_list_secret_ref_free(&refs);
    }

    entries es = {0};
    for (size_t i = 0; i < count; i++) {
        if (!add_secret(s, selected[i], &es, err)) {
            entries_free(&es);
            free(selected);
            return false;
        }
    }
    free(selected);
    if (es.len) qsort(es.ptr, es.len, sizeof *es.ptr, compare_entries);

    kw_buf contents = {0};
    for (size_t i = 0; i < es.len; i++) {
        escape(&contents, &es.ptr[i].key, true);
        kw_buf_byte(&contents, '=');
        escape(&contents, &es.ptr[i].value, false);
        kw_buf_byte(&contents, '\n');
    }

    kw_buf line = {0};
    kw_buf_str(&line, "rendered ");
    kw_buf_u64(&line, es.len);
    kw_buf_str(&line, " keys");
    renderer_string_t message = take_string(&line);
    keyward_plugin_host_log(KEYWARD_PLUGIN_HOST_LEVEL_DEBUG, &message);
    renderer_string_free(&message);
    entries_free(&es);

    exports_keyward_plugin_render_artifact_t *artifact = kw_malloc(sizeof *artifact);
    memset(artifact, 0, sizeof *artifact);
    renderer_string_t body = take_string(&contents);
    if (target->kind == KEYWARD_PLUGIN_TYPES_DELIVERY_KIND_FILE) {
        artifact->tag = EXPORTS_KEYWARD_PLUGIN_RENDER_ARTIFACT_FILE;
        artifact->val.file.path = copy_string(target->name.ptr, target->name.len);
        artifact->val.file.mode = target->mode.is_some ? target->mode.val : DEFAULT_MODE;
        artifact->val.file.contents = (renderer_list_u8_t){body.ptr, body.len};
    } else {
        artifact->tag = EXPORTS_KEYWARD_PLUGIN_RENDER_ARTIFACT_KUBE_SECRET;
        exports_keyward_plugin_render_kube_secret_t *ks = &artifact->val.kube_secret;
        ks->name = copy_string(target->name.ptr, target->name.len);
        ks->secret_type = copy_string("Opaque", 6);
        ks->data.ptr = kw_malloc(sizeof *ks->data.ptr);
        ks->data.len = 1;
        ks->data.ptr[0].f0 = copy_string(SECRET_KEY, sizeof SECRET_KEY - 1);
        ks->data.ptr[0].f1 = (renderer_list_u8_t){body.ptr, body.len};
    }
    ret->ptr = artifact;
    ret->len = 1;
    return true;
}

bool exports_keyward_plugin_render_render(exports_keyward_plugin_render_render_request_t *request,
                                          exports_keyward_plugin_render_list_artifact_t *ret,
                                          plugin_error *err) {
    settings s;
    bool ok = parse_settings(&request->settings, &s, err);
    if (ok) {
        if (s.debug_hang) kw_hang();
        if (s.debug_allocate) kw_allocate_until_failure();
        ok = render(request, &s, ret, err);
    }
    kw_json_free(s.doc);
    exports_keyward_plugin_render_render_request_free(request);
    return ok;
}
