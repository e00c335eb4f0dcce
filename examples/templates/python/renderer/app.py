"""{{name}}: a Keyward renderer plugin (world `renderer`).

Starter format: every key of every granted secret as a `key=value` line,
sorted, in one file. Change it, then the cases in `cases/`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.render import Artifact_File, File
from wit_world.imports import host
from wit_world.imports.types import (
    DeliveryKind,
    PluginError_InvalidInput,
    PluginError_InvalidSettings,
)


def check_settings(raw: str) -> None:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise Err(PluginError_InvalidSettings(f"settings are not valid JSON: {e}"))
    if not isinstance(doc, dict):
        raise Err(PluginError_InvalidSettings("settings must be a JSON object"))
    for key in doc:
        raise Err(PluginError_InvalidSettings(f"unknown setting `{key}`"))


def invalid_input(message: str) -> Err:
    return Err(PluginError_InvalidInput(message))


class Render(exports.Render):
    def validate_settings(self, settings: str) -> None:
        check_settings(settings)

    def plan(self, template, settings):
        check_settings(settings)
        if template is not None:
            raise invalid_input("this renderer takes no template")
        return []

    def render(self, request):
        check_settings(request.settings)
        if request.template is not None:
            raise invalid_input("this renderer takes no template")
        if request.target.kind != DeliveryKind.FILE:
            raise invalid_input("this renderer writes files only")
        lines = {}
        for secret in request.secrets:
            data = json.loads(secret.data)
            # KV v2 responses hold the secret under `data`, next to `metadata`.
            if isinstance(data, dict) and "metadata" in data:
                data = data.get("data")
            if not isinstance(data, dict):
                raise invalid_input(f"secret `{secret.reference}` holds no key/value data")
            for key, value in data.items():
                if not isinstance(value, str):
                    raise invalid_input(f"key `{key}` of `{secret.reference}` is not a string")
                lines[key] = value
        contents = "".join(f"{k}={lines[k]}\n" for k in sorted(lines))
        host.log(host.Level.DEBUG, f"rendered {len(lines)} keys")
        mode = 0o600 if request.target.mode is None else request.target.mode
        return [Artifact_File(File(path=request.target.name, mode=mode, contents=contents.encode()))]
