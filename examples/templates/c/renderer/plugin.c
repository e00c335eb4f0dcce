/*
 * {{name}}: a Keyward renderer plugin (world `renderer`).
 *
 * Starter format: every key of every granted secret as a `key=value` line,
 * sorted, in one file. Change it, then the cases in `cases/`.
 */
#include <stdlib.h>
#include <string.h>

#include "kw.h"
#include "renderer.h"

typedef exports_keyward_plugin_render_plugin_error_t plugin_error;

static renderer_string_t take_string(kw_buf *buf) {
    renderer_string_t s = {buf->ptr ? buf->ptr : kw_malloc(1), buf->len};
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    return s;
}

static bool fail(plugin_error *err, uint8_t tag, const char *text, const void *name, size_t name_len) {
    kw_buf msg = {0};
    kw_buf_str(&msg, text);
    if (name != NULL) {
        kw_buf_str(&msg, " `");
        kw_buf_add(&msg, name, name_len);
        kw_buf_str(&msg, "`");
    }
    err->tag = tag;
    err->val.invalid_input = take_string(&msg); /* every case holds a string */
    return false;
}

static bool check_settings(const renderer_string_t *raw, plugin_error *err) {
    kw_buf why = {0};
    kw_json *doc = kw_json_parse(raw->ptr, raw->len, &why);
    if (doc == NULL) {
        bool r = fail(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS,
                      "settings are not valid JSON:", why.ptr, why.len);
        kw_buf_free(&why);
        return r;
    }
    bool ok = true;
    if (doc->type != KW_JSON_OBJECT)
        ok = fail(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS,
                  "settings must be a JSON object", NULL, 0);
    else if (doc->member_count > 0)
        ok = fail(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS, "unknown setting",
                  doc->members[0].key, doc->members[0].key_len);
    kw_json_free(doc);
    return ok;
}

bool exports_keyward_plugin_render_validate_settings(renderer_string_t *raw, plugin_error *err) {
    bool ok = check_settings(raw, err);
    renderer_string_free(raw);
    return ok;
}

bool exports_keyward_plugin_render_plan(renderer_string_t *maybe_template, renderer_string_t *raw,
                                        exports_keyward_plugin_render_list_secret_ref_t *ret,
                                        plugin_error *err) {
    bool ok = check_settings(raw, err);
    if (ok && maybe_template != NULL)
        ok = fail(err, KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT,
                  "this renderer takes no template", NULL, 0);
    if (ok) {
        ret->ptr = NULL;
        ret->len = 0;
    }
    if (maybe_template != NULL) renderer_string_free(maybe_template);
    renderer_string_free(raw);
    return ok;
}

typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} line;

static int compare_lines(const void *a, const void *b) {
    const line *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static bool render(exports_keyward_plugin_render_render_request_t *req,
                   exports_keyward_plugin_render_list_artifact_t *ret, plugin_error *err) {
    const uint8_t invalid = KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT;
    if (!check_settings(&req->settings, err)) return false;
    if (req->template_.is_some) return fail(err, invalid, "this renderer takes no template", NULL, 0);
    if (req->target.kind != KEYWARD_PLUGIN_TYPES_DELIVERY_KIND_FILE)
        return fail(err, invalid, "this renderer writes files only", NULL, 0);

    size_t n = req->secrets.len, count = 0, cap = 0;
    kw_json **docs = kw_malloc((n ? n : 1) * sizeof *docs);
    line *lines = NULL;
    bool ok = true;
    for (size_t i = 0; i < n; i++) docs[i] = NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const exports_keyward_plugin_render_secret_value_t *secret = &req->secrets.ptr[i];
        kw_buf why = {0};
        docs[i] = kw_json_parse(secret->data.ptr, secret->data.len, &why);
        kw_buf_free(&why);
        const kw_json *data = docs[i];
        /* KV v2 responses hold the secret under `data`, next to `metadata`. */
        if (kw_json_get(data, "metadata") != NULL) data = kw_json_get(data, "data");
        if (data == NULL || data->type != KW_JSON_OBJECT) {
            ok = fail(err, invalid, "no key/value data in secret", secret->reference.ptr,
                      secret->reference.len);
            break;
        }
        for (size_t j = 0; j < data->member_count; j++) {
            const kw_json_member *m = &data->members[j];
            if (m->value->type != KW_JSON_STRING) {
                ok = fail(err, invalid, "value is not a string: key", m->key, m->key_len);
                break;
            }
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                lines = kw_realloc(lines, cap * sizeof *lines);
            }
            lines[count++] = (line){m->key, m->key_len, m->value->str, m->value->str_len};
        }
    }
    if (ok) {
        if (count) qsort(lines, count, sizeof *lines, compare_lines);
        kw_buf contents = {0};
        for (size_t i = 0; i < count; i++) {
            kw_buf_add(&contents, lines[i].key, lines[i].key_len);
            kw_buf_byte(&contents, '=');
            kw_buf_add(&contents, lines[i].value, lines[i].value_len);
            kw_buf_byte(&contents, '\n');
        }
        kw_buf buf = {0};
        kw_buf_str(&buf, "rendered ");
        kw_buf_u64(&buf, count);
        kw_buf_str(&buf, " keys");
        renderer_string_t message = take_string(&buf);
        keyward_plugin_host_log(KEYWARD_PLUGIN_HOST_LEVEL_DEBUG, &message);
        renderer_string_free(&message);

        exports_keyward_plugin_render_artifact_t *a = kw_malloc(sizeof *a);
        memset(a, 0, sizeof *a);
        a->tag = EXPORTS_KEYWARD_PLUGIN_RENDER_ARTIFACT_FILE;
        kw_buf_add(&buf, req->target.name.ptr, req->target.name.len);
        a->val.file.path = take_string(&buf);
        a->val.file.mode = req->target.mode.is_some ? req->target.mode.val : 0600;
        renderer_string_t body = take_string(&contents);
        a->val.file.contents = (renderer_list_u8_t){body.ptr, body.len};
        ret->ptr = a;
        ret->len = 1;
    }
    free(lines);
    for (size_t i = 0; i < n; i++) kw_json_free(docs[i]);
    free(docs);
    return ok;
}

bool exports_keyward_plugin_render_render(exports_keyward_plugin_render_render_request_t *request,
                                          exports_keyward_plugin_render_list_artifact_t *ret,
                                          plugin_error *err) {
    bool ok = render(request, ret, err);
    exports_keyward_plugin_render_render_request_free(request);
    return ok;
}
