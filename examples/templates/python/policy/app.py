"""{{name}}: a Keyward policy plugin (world `policy`).

Starter rule: a workload may read the secrets whose path starts with its
namespace (`<mount>/<namespace>/...`); `max-ttl-seconds` in the settings caps
every grant. Change it, then the cases in `cases/`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Grant,
    PluginError_InvalidSettings,
    SecretDecision,
    Verdict_Allow,
    Verdict_Deny,
)


def parse_settings(raw: str) -> dict:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise Err(PluginError_InvalidSettings(f"settings are not valid JSON: {e}"))
    if not isinstance(doc, dict):
        raise Err(PluginError_InvalidSettings("settings must be a JSON object"))
    for key, value in doc.items():
        if key != "max-ttl-seconds":
            raise Err(PluginError_InvalidSettings(f"unknown setting `{key}`"))
        if type(value) is not int or value <= 0:
            raise Err(PluginError_InvalidSettings("`max-ttl-seconds` must be a positive integer"))
    return doc


class Decider(exports.Decider):
    def validate_settings(self, settings: str) -> None:
        parse_settings(settings)

    def decide(self, request):
        settings = parse_settings(request.settings)
        namespace = request.workload.namespace
        decisions = []
        for secret in request.secrets:
            if not namespace:
                verdict = Verdict_Deny("the workload has no namespace")
            elif secret.path.startswith(namespace + "/"):
                verdict = Verdict_Allow(
                    Grant(
                        allowed_keys=None,
                        max_ttl_seconds=settings.get("max-ttl-seconds"),
                        delivery=None,
                        targets=None,
                    )
                )
            else:
                verdict = Verdict_Deny(
                    f"`{secret.mount}/{secret.path}` is outside namespace `{namespace}`"
                )
            decisions.append(
                SecretDecision(reference=secret.reference, verdict=verdict, rule="namespace-prefix")
            )
        host.log(host.Level.DEBUG, f"decided {len(decisions)} secrets")
        return decisions
