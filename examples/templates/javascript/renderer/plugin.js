// {{name}}: a Keyward renderer plugin (world `renderer`).
//
// Starter format: every key of every granted secret as a `key=value` line,
// sorted, in one file. Change it, then the cases in `cases/`.

import { log } from 'keyward:plugin/host@0.1.0';

function checkSettings(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw { tag: 'invalid-settings', val: `settings are not valid JSON: ${e.message}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw { tag: 'invalid-settings', val: 'settings must be a JSON object' };
  }
  for (const key of Object.keys(doc)) {
    throw { tag: 'invalid-settings', val: `unknown setting \`${key}\`` };
  }
}

function invalidInput(message) {
  return { tag: 'invalid-input', val: message };
}

export const render = {
  validateSettings(settings) {
    checkSettings(settings);
  },

  plan(template, settings) {
    checkSettings(settings);
    if (template !== undefined && template !== null) {
      throw invalidInput('this renderer takes no template');
    }
    return [];
  },

  render(request) {
    checkSettings(request.settings);
    if (request.template !== undefined && request.template !== null) {
      throw invalidInput('this renderer takes no template');
    }
    if (request.target.kind !== 'file') {
      throw invalidInput('this renderer writes files only');
    }
    const lines = new Map();
    for (const secret of request.secrets) {
      let data = JSON.parse(secret.data);
      // KV v2 responses hold the secret under `data`, next to `metadata`.
      if (data !== null && typeof data === 'object' && 'metadata' in data) {
        data = data.data;
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        throw invalidInput(`secret \`${secret.reference}\` holds no key/value data`);
      }
      for (const [key, value] of Object.entries(data)) {
        if (typeof value !== 'string') {
          throw invalidInput(`key \`${key}\` of \`${secret.reference}\` is not a string`);
        }
        lines.set(key, value);
      }
    }
    // Note: sort() compares UTF-16 code units; fine for ASCII keys.
    const text = [...lines.keys()].sort().map((k) => `${k}=${lines.get(k)}\n`).join('');
    log('debug', `rendered ${lines.size} keys`);
    const mode = request.target.mode ?? 0o600;
    return [
      { tag: 'file', val: { path: request.target.name, mode, contents: new TextEncoder().encode(text) } },
    ];
  },
};
