// Keyward example renderer plugin in JavaScript (world `renderer`): Java
// `.properties`.
//
// Every key of every granted secret becomes one `key=value` line, keys sorted
// by code point (the order of UTF-8 bytes), with `.properties` escaping. A
// template, when given, lists the secrets to include (one reference per line,
// `k=v` parameters after it). The `prefix` setting is put in front of every
// key.
//
// The same behaviour is implemented in Rust, Python and C next to this file
// and checked by one suite: tests/conformance/renderer.
//
// WIT to JavaScript: records are objects with camelCase fields, variants are
// `{ tag, val }`, enums are their kebab-case names, `option` is a value or
// `undefined`, `list<u8>` is a Uint8Array, tuples are arrays, and an error
// `result` is a thrown value.

import { log } from 'keyward:plugin/host@0.1.0';

const KNOWN = ['prefix', 'debug-hang', 'debug-allocate'];
// The data key of the Kubernetes Secret this renderer writes.
const SECRET_KEY = 'application.properties';
// File mode when the target gives none.
const DEFAULT_MODE = 0o600;

function invalidSettings(message) {
  return { tag: 'invalid-settings', val: message };
}

function invalidInput(message) {
  return { tag: 'invalid-input', val: message };
}

// An own property: `null` counts as given, and nothing comes from a prototype.
function has(doc, key) {
  return Object.prototype.hasOwnProperty.call(doc, key);
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseSettings(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw invalidSettings(`settings are not valid JSON: ${e.message}`);
  }
  if (!isObject(doc)) {
    throw invalidSettings('settings must be a JSON object');
  }
  const unknown = Object.keys(doc).filter((k) => !KNOWN.includes(k)).sort(byCodePoint);
  if (unknown.length > 0) {
    throw invalidSettings(`unknown setting \`${unknown[0]}\``);
  }
  const prefix = has(doc, 'prefix') ? doc.prefix : '';
  if (typeof prefix !== 'string') {
    throw invalidSettings('`prefix` must be a string');
  }
  return {
    prefix,
    debugHang: flag(doc, 'debug-hang'),
    debugAllocate: flag(doc, 'debug-allocate'),
  };
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

function sameParameters(a, b) {
  return a.length === b.length && a.every(([k, v], i) => k === b[i][0] && v === b[i][1]);
}

// A template is a list of secrets, one per line: `reference [k=v ...]`.
// Blank lines and lines starting with `#` are skipped.
function parseTemplate(text) {
  const refs = [];
  text.split('\n').forEach((raw, index) => {
    const number = index + 1;
    const line = raw.replace(/^[ \t\r]+|[ \t\r]+$/g, '');
    if (line === '' || line.startsWith('#')) return;
    const [reference, ...rest] = line.split(/[ \t]+/);
    const parameters = rest.map((token) => {
      const eq = token.indexOf('=');
      if (eq <= 0) {
        throw invalidInput(`template line ${number}: parameter \`${token}\` is not key=value`);
      }
      return [token.slice(0, eq), token.slice(eq + 1)];
    });
    if (refs.some((r) => r.reference === reference && sameParameters(r.parameters, parameters))) {
      throw invalidInput(`template line ${number}: \`${reference}\` is listed twice`);
    }
    refs.push({ reference, parameters, kind: 'secret' });
  });
  return refs;
}

// The keys and rendered values of one secret. KV v2 responses (`data` and
// `metadata` side by side) are unwrapped to their inner `data`.
function secretEntries(secret) {
  const reference = secret.reference;
  let doc;
  try {
    doc = JSON.parse(secret.data);
  } catch {
    doc = undefined;
  }
  if (!isObject(doc)) {
    throw invalidInput(`secret \`${reference}\`: data is not a JSON object`);
  }
  if (has(doc, 'data') && has(doc, 'metadata')) {
    doc = doc.data;
    if (!isObject(doc)) {
      throw invalidInput(
        `secret \`${reference}\`: the KV v2 version holds no data (deleted or destroyed)`,
      );
    }
  }
  return Object.keys(doc).map((key) => {
    const value = doc[key];
    let text;
    if (typeof value === 'string') {
      text = value;
    } else if (typeof value === 'boolean') {
      text = value ? 'true' : 'false';
    } else if (value === null) {
      text = '';
    } else if (typeof value === 'number' && Number.isSafeInteger(value)) {
      text = String(value);
    } else {
      throw invalidInput(
        `secret \`${reference}\`, key \`${key}\`: only strings, integers, booleans and null can be written to .properties`,
      );
    }
    return [key, text];
  });
}

const ESCAPES = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f' };

// `.properties` escaping: `\`, `=`, `:`, `#`, `!` get a backslash; newline,
// carriage return, tab and form feed become `\n`, `\r`, `\t`, `\f`; other
// control characters `\uXXXX`; spaces are escaped everywhere in keys and at
// the start of values.
function escape(text, isKey) {
  let out = '';
  let index = 0;
  for (const c of text) {
    const code = c.codePointAt(0);
    if ('\\=:#!'.includes(c)) {
      out += '\\' + c;
    } else if (has(ESCAPES, c)) {
      out += ESCAPES[c];
    } else if (c === ' ' && (isKey || index === 0)) {
      out += '\\ ';
    } else if (code < 0x20 || code === 0x7f) {
      out += '\\u' + code.toString(16).toUpperCase().padStart(4, '0');
    } else {
      out += c;
    }
    index++;
  }
  return out;
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

export const render = {
  validateSettings(settings) {
    parseSettings(settings);
  },

  plan(template, settings) {
    parseSettings(settings);
    return template === undefined || template === null ? [] : parseTemplate(template);
  },

  render(request) {
    const settings = parseSettings(request.settings);
    if (settings.debugHang) hang();
    if (settings.debugAllocate) allocateUntilFailure();
    const target = request.target;
    if (target.kind === 'env') {
      throw invalidInput(
        'this renderer writes files and Kubernetes Secrets, not environment variables',
      );
    }
    if (target.name === '') {
      throw invalidInput('the target has no name');
    }

    let selected = request.secrets;
    if (request.template !== undefined && request.template !== null) {
      selected = parseTemplate(request.template).map((ref) => {
        const match = request.secrets.find(
          (s) => s.reference === ref.reference && sameParameters(s.parameters, ref.parameters),
        );
        if (match === undefined) {
          throw invalidInput(`secret \`${ref.reference}\` named in the template was not granted`);
        }
        return match;
      });
    }

    const entries = new Map();
    for (const secret of selected) {
      for (const [key, value] of secretEntries(secret)) {
        const full = settings.prefix + key;
        if (entries.has(full)) {
          throw invalidInput(`duplicate key \`${full}\``);
        }
        entries.set(full, value);
      }
    }

    const keys = [...entries.keys()].sort(byCodePoint);
    const text = keys.map((k) => `${escape(k, true)}=${escape(entries.get(k), false)}\n`).join('');
    const contents = new TextEncoder().encode(text);
    log('debug', `rendered ${keys.length} keys`);
    if (target.kind === 'file') {
      const mode = target.mode === undefined || target.mode === null ? DEFAULT_MODE : target.mode;
      return [{ tag: 'file', val: { path: target.name, mode, contents } }];
    }
    return [
      {
        tag: 'kube-secret',
        val: {
          name: target.name,
          secretType: 'Opaque',
          data: [[SECRET_KEY, contents]],
          labels: [],
          annotations: [],
        },
      },
    ];
  },
};
