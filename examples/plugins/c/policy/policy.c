/*
 * Keyward example policy plugin in C (world `policy`).
 *
 * - A team may read only the paths under `<mount>/<team>/`, where `<team>` is
 *   the value of the namespace label named by `team-label` (default `team`).
 * - A production secret (a path with a segment `prod`) is denied unless every
 *   image of the workload starts with the `registry` setting.
 *
 * The same behaviour is implemented in Rust, Python and JavaScript next to
 * this file and checked by one suite: tests/conformance/policy.
 *
 * Ownership (wit-bindgen c): arguments belong to the callee, which frees
 * them; everything returned must be malloc'ed and is freed by the generated
 * post-return functions after the host has copied it.
 */
#include <stdlib.h>
#include <string.h>

#include "kw.h"
#include "policy.h"

typedef exports_keyward_plugin_decider_plugin_error_t plugin_error;
typedef keyward_plugin_types_secret_request_t secret_request;
typedef keyward_plugin_types_secret_decision_t secret_decision;

typedef struct {
    kw_json *doc; /* owns the strings below */
    const kw_json *registry;
    const char *team_label;
    size_t team_label_len;
    bool has_max_ttl;
    uint64_t max_ttl_seconds;
    bool debug_hang;
    bool debug_allocate;
} settings;

static const char *const KNOWN[] = {"registry", "team-label", "max-ttl-seconds", "debug-hang",
                                    "debug-allocate"};

/* Hand a buffer over as a WIT string (the buffer's memory moves). */
static policy_string_t take_string(kw_buf *buf) {
    policy_string_t s = {buf->ptr, buf->len};
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    if (s.ptr == NULL) s.ptr = kw_malloc(1);
    return s;
}

static policy_string_t copy_string(const void *data, size_t len) {
    kw_buf buf = {0};
    kw_buf_add(&buf, data, len);
    return take_string(&buf);
}

static bool invalid_settings(plugin_error *err, kw_buf *message) {
    err->tag = KEYWARD_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_SETTINGS;
    err->val.invalid_settings = take_string(message);
    return false;
}

static bool invalid_settings_str(plugin_error *err, const char *message) {
    kw_buf buf = {0};
    kw_buf_str(&buf, message);
    return invalid_settings(err, &buf);
}

static bool is_known(const char *key, size_t len) {
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        if (kw_bytes_eq(key, len, KNOWN[i])) return true;
    return false;
}

/* Byte-wise order with the shorter string first on a common prefix: the order
 * of code points, as every language sorts here. */
static int compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len) {
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c) return c;
    return (a_len > b_len) - (a_len < b_len);
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
        return invalid_settings(err, &msg);
    }
    *out = v->boolean;
    return true;
}

/* The policy's settings, checked in a fixed order so that every language
 * reports the same first problem. */
static bool parse_settings(const policy_string_t *raw, settings *out, plugin_error *err) {
    memset(out, 0, sizeof *out);
    kw_buf why = {0};
    kw_json *doc = kw_json_parse(raw->ptr, raw->len, &why);
    if (doc == NULL) {
        kw_buf msg = {0};
        kw_buf_str(&msg, "settings are not valid JSON: ");
        kw_buf_add(&msg, why.ptr, why.len);
        kw_buf_free(&why);
        return invalid_settings(err, &msg);
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
        return invalid_settings(err, &msg);
    }

    const kw_json *registry = kw_json_get(doc, "registry");
    if (registry == NULL) return invalid_settings_str(err, "`registry` is required");
    if (registry->type != KW_JSON_STRING || registry->str_len == 0)
        return invalid_settings_str(err, "`registry` must be a non-empty string");
    out->registry = registry;

    const kw_json *label = kw_json_get(doc, "team-label");
    out->team_label = "team";
    out->team_label_len = 4;
    if (label != NULL) {
        if (label->type != KW_JSON_STRING || label->str_len == 0)
            return invalid_settings_str(err, "`team-label` must be a non-empty string");
        out->team_label = label->str;
        out->team_label_len = label->str_len;
    }

    const kw_json *ttl = kw_json_get(doc, "max-ttl-seconds");
    if (ttl != NULL) {
        if (ttl->type != KW_JSON_NUMBER || !ttl->integer_literal || ttl->number < 1 ||
            ttl->number > KW_MAX_SAFE_INTEGER)
            return invalid_settings_str(err, "`max-ttl-seconds` must be a positive integer");
        out->has_max_ttl = true;
        out->max_ttl_seconds = (uint64_t)ttl->number;
    }

    return flag(doc, "debug-hang", &out->debug_hang, err) &&
           flag(doc, "debug-allocate", &out->debug_allocate, err);
}

bool exports_keyward_plugin_decider_validate_settings(policy_string_t *raw, plugin_error *err) {
    settings s;
    bool ok = parse_settings(raw, &s, err);
    kw_json_free(s.doc);
    policy_string_free(raw);
    return ok;
}

static void set_rule(secret_decision *d, const char *rule) {
    d->rule.is_some = true;
    d->rule.val = copy_string(rule, strlen(rule));
}

static void deny(secret_decision *d, kw_buf *reason, const char *rule) {
    d->verdict.tag = KEYWARD_PLUGIN_TYPES_VERDICT_DENY;
    d->verdict.val.deny = take_string(reason);
    set_rule(d, rule);
}

static void allow(secret_decision *d, const settings *s, const char *rule) {
    d->verdict.tag = KEYWARD_PLUGIN_TYPES_VERDICT_ALLOW;
    keyward_plugin_types_grant_t *g = &d->verdict.val.allow;
    memset(g, 0, sizeof *g);
    g->max_ttl_seconds.is_some = s->has_max_ttl;
    g->max_ttl_seconds.val = s->max_ttl_seconds;
    set_rule(d, rule);
}

static void add_string(kw_buf *buf, const policy_string_t *s) { kw_buf_add(buf, s->ptr, s->len); }

static void decide_one(const settings *s, const policy_string_t *team,
                       const policy_list_string_t *images, const secret_request *secret,
                       secret_decision *d) {
    kw_buf msg = {0};
    d->reference = copy_string(secret->reference.ptr, secret->reference.len);
    if (team == NULL) {
        kw_buf_str(&msg, "the namespace has no `");
        kw_buf_add(&msg, s->team_label, s->team_label_len);
        kw_buf_str(&msg, "` label");
        deny(d, &msg, "team-label");
        return;
    }
    kw_buf full = {0};
    add_string(&full, &secret->mount);
    kw_buf_str(&full, "/");
    add_string(&full, &secret->path);

    /* Walk the path's segments: normalised? first one the team? any `prod`? */
    const uint8_t *p = secret->path.ptr, *end = p + secret->path.len;
    size_t count = 0;
    bool normalised = true, first_is_team = false, prod = false;
    for (;;) {
        const uint8_t *slash = memchr(p, '/', (size_t)(end - p));
        const uint8_t *seg_end = slash ? slash : end;
        size_t n = (size_t)(seg_end - p);
        if (n == 0 || kw_bytes_eq(p, n, ".") || kw_bytes_eq(p, n, "..")) normalised = false;
        if (count == 0) first_is_team = n == team->len && memcmp(p, team->ptr, n) == 0;
        if (kw_bytes_eq(p, n, "prod")) prod = true;
        count++;
        if (slash == NULL) break;
        p = slash + 1;
    }

    if (!normalised) {
        kw_buf_str(&msg, "`");
        kw_buf_add(&msg, full.ptr, full.len);
        kw_buf_str(&msg, "` is not a normalised path");
        deny(d, &msg, "team-prefix");
    } else if (count < 2 || !first_is_team) {
        kw_buf_str(&msg, "`");
        kw_buf_add(&msg, full.ptr, full.len);
        kw_buf_str(&msg, "` is outside team `");
        add_string(&msg, team);
        kw_buf_str(&msg, "`'s prefix `");
        add_string(&msg, &secret->mount);
        kw_buf_str(&msg, "/");
        add_string(&msg, team);
        kw_buf_str(&msg, "/`");
        deny(d, &msg, "team-prefix");
    } else if (!prod) {
        allow(d, s, "team-prefix");
    } else if (images->len == 0) {
        kw_buf_str(&msg, "production secret `");
        kw_buf_add(&msg, full.ptr, full.len);
        kw_buf_str(&msg, "`: the workload lists no images");
        deny(d, &msg, "prod-registry");
    } else {
        const policy_string_t *foreign = NULL;
        for (size_t i = 0; i < images->len && foreign == NULL; i++) {
            const policy_string_t *image = &images->ptr[i];
            if (image->len < s->registry->str_len ||
                memcmp(image->ptr, s->registry->str, s->registry->str_len) != 0)
                foreign = image;
        }
        if (foreign != NULL) {
            kw_buf_str(&msg, "production secret `");
            kw_buf_add(&msg, full.ptr, full.len);
            kw_buf_str(&msg, "`: image `");
            add_string(&msg, foreign);
            kw_buf_str(&msg, "` is not from `");
            kw_buf_add(&msg, s->registry->str, s->registry->str_len);
            kw_buf_str(&msg, "`");
            deny(d, &msg, "prod-registry");
        } else {
            allow(d, s, "prod-registry");
        }
    }
    kw_buf_free(&full);
}

bool exports_keyward_plugin_decider_decide(exports_keyward_plugin_decider_decide_request_t *request,
                                           exports_keyward_plugin_decider_list_secret_decision_t *ret,
                                           plugin_error *err) {
    settings s;
    if (!parse_settings(&request->settings, &s, err)) {
        kw_json_free(s.doc);
        exports_keyward_plugin_decider_decide_request_free(request);
        return false;
    }
    if (s.debug_hang) kw_hang();
    if (s.debug_allocate) kw_allocate_until_failure();

    const policy_list_pair_t *labels = &request->workload.namespace_labels;
    const policy_string_t *team = NULL;
    for (size_t i = 0; i < labels->len && team == NULL; i++) {
        const keyward_plugin_types_pair_t *pair = &labels->ptr[i];
        if (pair->f0.len == s.team_label_len &&
            memcmp(pair->f0.ptr, s.team_label, s.team_label_len) == 0)
            team = &pair->f1;
    }
    if (team != NULL && team->len == 0) team = NULL;

    size_t n = request->secrets.len;
    secret_decision *decisions = kw_malloc(n * sizeof *decisions);
    memset(decisions, 0, n * sizeof *decisions);
    size_t allowed = 0;
    for (size_t i = 0; i < n; i++) {
        decide_one(&s, team, &request->workload.images, &request->secrets.ptr[i], &decisions[i]);
        if (decisions[i].verdict.tag == KEYWARD_PLUGIN_TYPES_VERDICT_ALLOW) allowed++;
    }

    kw_buf line = {0};
    kw_buf_str(&line, "team ");
    if (team != NULL)
        add_string(&line, team);
    else
        kw_buf_str(&line, "(none)");
    kw_buf_str(&line, ": ");
    kw_buf_u64(&line, allowed);
    kw_buf_str(&line, " allowed, ");
    kw_buf_u64(&line, n - allowed);
    kw_buf_str(&line, " denied");
    policy_string_t message = take_string(&line);
    keyward_plugin_host_log(KEYWARD_PLUGIN_HOST_LEVEL_DEBUG, &message);
    policy_string_free(&message);

    ret->ptr = decisions;
    ret->len = n;
    kw_json_free(s.doc);
    exports_keyward_plugin_decider_decide_request_free(request);
    return true;
}
