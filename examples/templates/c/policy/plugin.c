/*
 * {{name}}: a Keyward policy plugin (world `policy`).
 *
 * Starter rule: a workload may read the secrets whose path starts with its
 * namespace (`<mount>/<namespace>/...`); `max-ttl-seconds` in the settings
 * caps every grant. Change it, then the cases in `cases/`.
 */
#include <stdlib.h>
#include <string.h>

#include "kw.h"
#include "policy.h"

typedef exports_keyward_plugin_decider_plugin_error_t plugin_error;

/* Hand a buffer over as a WIT string (malloc'ed; freed after the call). */
static policy_string_t take_string(kw_buf *buf) {
    policy_string_t s = {buf->ptr ? buf->ptr : kw_malloc(1), buf->len};
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    return s;
}

static bool settings_error(plugin_error *err, kw_buf *message) {
    err->tag = KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS;
    err->val.invalid_settings = take_string(message);
    return false;
}

/* Parse the settings; on success *max_ttl is 0 (no cap) or the cap. */
static bool parse_settings(const policy_string_t *raw, uint64_t *max_ttl, plugin_error *err) {
    kw_buf msg = {0}, why = {0};
    *max_ttl = 0;
    kw_json *doc = kw_json_parse(raw->ptr, raw->len, &why);
    if (doc == NULL) {
        kw_buf_str(&msg, "settings are not valid JSON: ");
        kw_buf_add(&msg, why.ptr, why.len);
        kw_buf_free(&why);
        return settings_error(err, &msg);
    }
    bool ok = true;
    if (doc->type != KW_JSON_OBJECT) {
        kw_buf_str(&msg, "settings must be a JSON object");
        ok = false;
    }
    for (size_t i = 0; ok && i < doc->member_count; i++) {
        const kw_json_member *m = &doc->members[i];
        const kw_json *v = m->value;
        if (!kw_bytes_eq(m->key, m->key_len, "max-ttl-seconds")) {
            kw_buf_str(&msg, "unknown setting `");
            kw_buf_add(&msg, m->key, m->key_len);
            kw_buf_str(&msg, "`");
            ok = false;
        } else if (v->type != KW_JSON_NUMBER || !v->integer_literal || v->number < 1 ||
                   v->number > KW_MAX_SAFE_INTEGER) {
            kw_buf_str(&msg, "`max-ttl-seconds` must be a positive integer");
            ok = false;
        } else {
            *max_ttl = (uint64_t)v->number;
        }
    }
    kw_json_free(doc);
    return ok ? true : settings_error(err, &msg);
}

bool exports_keyward_plugin_decider_validate_settings(policy_string_t *raw, plugin_error *err) {
    uint64_t max_ttl;
    bool ok = parse_settings(raw, &max_ttl, err);
    policy_string_free(raw);
    return ok;
}

bool exports_keyward_plugin_decider_decide(exports_keyward_plugin_decider_decide_request_t *request,
                                           exports_keyward_plugin_decider_list_secret_decision_t *ret,
                                           plugin_error *err) {
    uint64_t max_ttl;
    if (!parse_settings(&request->settings, &max_ttl, err)) {
        exports_keyward_plugin_decider_decide_request_free(request);
        return false;
    }
    const policy_string_t *ns = &request->workload.namespace_;
    size_t n = request->secrets.len;
    keyward_plugin_types_secret_decision_t *out = kw_malloc((n ? n : 1) * sizeof *out);
    memset(out, 0, (n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const keyward_plugin_types_secret_request_t *secret = &request->secrets.ptr[i];
        keyward_plugin_types_secret_decision_t *d = &out[i];
        kw_buf buf = {0};
        kw_buf_add(&buf, secret->reference.ptr, secret->reference.len);
        d->reference = take_string(&buf);
        kw_buf_str(&buf, "namespace-prefix");
        d->rule.is_some = true;
        d->rule.val = take_string(&buf);

        const policy_string_t *path = &secret->path;
        bool inside = ns->len > 0 && path->len > ns->len && path->ptr[ns->len] == '/' &&
                      memcmp(path->ptr, ns->ptr, ns->len) == 0;
        if (inside) {
            d->verdict.tag = KEYWARD_PLUGIN_TYPES_VERDICT_ALLOW;
            d->verdict.val.allow.max_ttl_seconds.is_some = max_ttl > 0;
            d->verdict.val.allow.max_ttl_seconds.val = max_ttl;
        } else {
            if (ns->len == 0) {
                kw_buf_str(&buf, "the workload has no namespace");
            } else {
                kw_buf_str(&buf, "`");
                kw_buf_add(&buf, secret->mount.ptr, secret->mount.len);
                kw_buf_str(&buf, "/");
                kw_buf_add(&buf, path->ptr, path->len);
                kw_buf_str(&buf, "` is outside namespace `");
                kw_buf_add(&buf, ns->ptr, ns->len);
                kw_buf_str(&buf, "`");
            }
            d->verdict.tag = KEYWARD_PLUGIN_TYPES_VERDICT_DENY;
            d->verdict.val.deny = take_string(&buf);
        }
    }
    kw_buf line = {0};
    kw_buf_str(&line, "decided ");
    kw_buf_u64(&line, n);
    kw_buf_str(&line, " secrets");
    policy_string_t message = take_string(&line);
    keyward_plugin_host_log(KEYWARD_PLUGIN_HOST_LEVEL_DEBUG, &message);
    policy_string_free(&message);

    ret->ptr = out;
    ret->len = n;
    exports_keyward_plugin_decider_decide_request_free(request);
    return true;
}
