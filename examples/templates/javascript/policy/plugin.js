// {{name}}: a Keyward policy plugin (world `policy`).
//
// Starter rule: a workload may read the secrets whose path starts with its
// namespace (`<mount>/<namespace>/...`); `max-ttl-seconds` in the settings
// caps every grant. Change it, then the cases in `cases/`.

import { log } from 'keyward:plugin/host@0.1.0';

function parseSettings(raw) {
  let doc;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    throw { tag: 'invalid-settings', val: `settings are not valid JSON: ${e.message}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw { tag: 'invalid-settings', val: 'settings must be a JSON object' };
  }
  for (const [key, value] of Object.entries(doc)) {
    if (key !== 'max-ttl-seconds') {
      throw { tag: 'invalid-settings', val: `unknown setting \`${key}\`` };
    }
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw { tag: 'invalid-settings', val: '`max-ttl-seconds` must be a positive integer' };
    }
  }
  const ttl = doc['max-ttl-seconds'];
  return { maxTtlSeconds: ttl === undefined ? undefined : BigInt(ttl) };
}

export const decider = {
  validateSettings(settings) {
    parseSettings(settings);
  },

  decide(request) {
    const settings = parseSettings(request.settings);
    const namespace = request.workload.namespace;
    const decisions = request.secrets.map((secret) => {
      let verdict;
      if (namespace === '') {
        verdict = { tag: 'deny', val: 'the workload has no namespace' };
      } else if (secret.path.startsWith(`${namespace}/`)) {
        verdict = {
          tag: 'allow',
          val: {
            allowedKeys: undefined,
            maxTtlSeconds: settings.maxTtlSeconds,
            delivery: undefined,
            targets: undefined,
          },
        };
      } else {
        verdict = {
          tag: 'deny',
          val: `\`${secret.mount}/${secret.path}\` is outside namespace \`${namespace}\``,
        };
      }
      return { reference: secret.reference, verdict, rule: 'namespace-prefix' };
    });
    log('debug', `decided ${decisions.length} secrets`);
    return decisions;
  },
};
