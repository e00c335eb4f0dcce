// Keyward example policy plugin in JavaScript (world `policy`).
//
// * A team may read only the paths under `<mount>/<team>/`, where `<team>` is
//   the value of the namespace label named by `team-label` (default `team`).
// * A production secret (a path with a segment `prod`) is denied unless every
//   image of the workload starts with the `registry` setting.
//
// The same behaviour is implemented in Rust, Python and C next to this file
// and checked by one suite: tests/conformance/policy.
//
// WIT to JavaScript: records are objects with camelCase fields, variants are
// `{ tag, val }`, enums are their kebab-case names, `option` is a value or
// `undefined`, `u64` is a BigInt, and an error `result` is a thrown value.

import { log } from 'keyward:plugin/host@0.1.0';

const KNOWN = ['registry', 'team-label', 'max-ttl-seconds', 'debug-hang', 'debug-allocate'];

function invalidSettings(message) {
  return { tag: 'invalid-settings', val: message };
}

// The policy's settings, checked in a fixed order so that every language
// reports the same first problem.
function parseSettings(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw invalidSettings(`settings are not valid JSON: ${e.message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw invalidSettings('settings must be a JSON object');
  }
  const unknown = Object.keys(doc).filter((k) => !KNOWN.includes(k)).sort(byCodePoint);
  if (unknown.length > 0) {
    throw invalidSettings(`unknown setting \`${unknown[0]}\``);
  }
  if (!has(doc, 'registry')) {
    throw invalidSettings('`registry` is required');
  }
  if (typeof doc.registry !== 'string' || doc.registry === '') {
    throw invalidSettings('`registry` must be a non-empty string');
  }
  const teamLabel = has(doc, 'team-label') ? doc['team-label'] : 'team';
  if (typeof teamLabel !== 'string' || teamLabel === '') {
    throw invalidSettings('`team-label` must be a non-empty string');
  }
  const ttl = has(doc, 'max-ttl-seconds') ? doc['max-ttl-seconds'] : undefined;
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl > 0)) {
    throw invalidSettings('`max-ttl-seconds` must be a positive integer');
  }
  return {
    registry: doc.registry,
    teamLabel,
    maxTtlSeconds: ttl === undefined ? undefined : BigInt(ttl),
    debugHang: flag(doc, 'debug-hang'),
    debugAllocate: flag(doc, 'debug-allocate'),
  };
}

// An own property: `null` counts as given, and nothing comes from a prototype.
function has(doc, key) {
  return Object.prototype.hasOwnProperty.call(doc, key);
}

function flag(doc, key) {
  const value = has(doc, key) ? doc[key] : false;
  if (typeof value !== 'boolean') {
    throw invalidSettings(`\`${key}\` must be true or false`);
  }
  return value;
}

// Code point order (the order of UTF-8 bytes), not JavaScript's UTF-16 order.
function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

function decideOne(settings, team, images, secret) {
  const decision = (verdict, rule) => ({ reference: secret.reference, verdict, rule });
  const deny = (reason, rule) => decision({ tag: 'deny', val: reason }, rule);

  if (!team) {
    return deny(`the namespace has no \`${settings.teamLabel}\` label`, 'team-label');
  }
  const full = `${secret.mount}/${secret.path}`;
  const segments = secret.path.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return deny(`\`${full}\` is not a normalised path`, 'team-prefix');
  }
  if (segments.length < 2 || segments[0] !== team) {
    return deny(
      `\`${full}\` is outside team \`${team}\`'s prefix \`${secret.mount}/${team}/\``,
      'team-prefix',
    );
  }
  const grant = {
    allowedKeys: undefined,
    maxTtlSeconds: settings.maxTtlSeconds,
    delivery: undefined,
    targets: undefined,
  };
  if (!segments.includes('prod')) {
    return decision({ tag: 'allow', val: grant }, 'team-prefix');
  }
  if (images.length === 0) {
    return deny(`production secret \`${full}\`: the workload lists no images`, 'prod-registry');
  }
  const foreign = images.find((image) => !image.startsWith(settings.registry));
  if (foreign !== undefined) {
    return deny(
      `production secret \`${full}\`: image \`${foreign}\` is not from \`${settings.registry}\``,
      'prod-registry',
    );
  }
  return decision({ tag: 'allow', val: grant }, 'prod-registry');
}

// Test-only (`debug-hang`): spin until the host's deadline stops us.
function hang() {
  for (;;) {
    // nothing
  }
}

// Test-only (`debug-allocate`): allocate 1 MiB after 1 MiB (the engine
// zeroes each buffer) until the host's memory limit makes an allocation fail
// (the engine then traps).
function allocateUntilFailure() {
  const chunks = [];
  for (;;) {
    const chunk = new Uint8Array(1 << 20);
    chunk[0] = 0xa5;
    chunks.push(chunk);
  }
}

export const decider = {
  validateSettings(settings) {
    parseSettings(settings);
  },

  decide(request) {
    const settings = parseSettings(request.settings);
    if (settings.debugHang) hang();
    if (settings.debugAllocate) allocateUntilFailure();
    const label = request.workload.namespaceLabels.find(([k]) => k === settings.teamLabel);
    const team = label ? label[1] : '';
    const decisions = request.secrets.map((secret) =>
      decideOne(settings, team, request.workload.images, secret),
    );
    const allowed = decisions.filter((d) => d.verdict.tag === 'allow').length;
    log('debug', `team ${team || '(none)'}: ${allowed} allowed, ${decisions.length - allowed} denied`);
    return decisions;
  },
};
