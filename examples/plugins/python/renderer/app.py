"""Keyward example renderer plugin in Python (world `renderer`): Java
`.properties`.

Every key of every granted secret becomes one `key=value` line, keys sorted
by code point (the same order as UTF-8 bytes), with `.properties` escaping.
A template, when given, lists the secrets to include (one reference per
line, `k=v` parameters after it). The `prefix` setting is put in front of
every key.

The same behaviour is implemented in Rust, JavaScript and C next to this
file and checked by one suite: tests/conformance/renderer.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.render import (
    Artifact_File,
    Artifact_KubeSecret,
    File,
    KubeSecret,
    RefKind,
    SecretRef,
)
from wit_world.imports import host
from wit_world.imports.types import (
    DeliveryKind,
    PluginError_InvalidInput,
    PluginError_InvalidSettings,
)

KNOWN = ("prefix", "debug-hang", "debug-allocate")
# The data key of the Kubernetes Secret this renderer writes.
SECRET_KEY = "application.properties"
# File mode when the target gives none.
DEFAULT_MODE = 0o600
# The largest integer every language's JSON parser reads exactly.
MAX_SAFE_INTEGER = 2**53 - 1


class Settings:
    def __init__(self, raw: str):
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise invalid_settings(f"settings are not valid JSON: {e}")
        if not isinstance(doc, dict):
            raise invalid_settings("settings must be a JSON object")
        unknown = sorted(k for k in doc if k not in KNOWN)
        if unknown:
            raise invalid_settings(f"unknown setting `{unknown[0]}`")
        self.prefix = doc.get("prefix", "")
        if not isinstance(self.prefix, str):
            raise invalid_settings("`prefix` must be a string")
        self.debug_hang = flag(doc, "debug-hang")
        self.debug_allocate = flag(doc, "debug-allocate")


def flag(doc: dict, key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise invalid_settings(f"`{key}` must be true or false")
    return value


def invalid_settings(message: str) -> Err:
    return Err(PluginError_InvalidSettings(message))


def invalid_input(message: str) -> Err:
    return Err(PluginError_InvalidInput(message))


class Render(exports.Render):
    def validate_settings(self, settings: str) -> None:
        Settings(settings)

    def plan(self, template, settings):
        Settings(settings)
        return [] if template is None else parse_template(template)

    def render(self, request):
        settings = Settings(request.settings)
        if settings.debug_hang:
            hang()
        if settings.debug_allocate:
            allocate_until_failure()
        target = request.target
        if target.kind == DeliveryKind.ENV:
            raise invalid_input(
                "this renderer writes files and Kubernetes Secrets, not environment variables"
            )
        if not target.name:
            raise invalid_input("the target has no name")

        if request.template is None:
            selected = list(request.secrets)
        else:
            selected = []
            for ref in parse_template(request.template):
                match = next(
                    (
                        s
                        for s in request.secrets
                        if s.reference == ref.reference and list(s.parameters) == ref.parameters
                    ),
                    None,
                )
                if match is None:
                    raise invalid_input(
                        f"secret `{ref.reference}` named in the template was not granted"
                    )
                selected.append(match)

        entries = {}
        for secret in selected:
            for key, value in secret_entries(secret):
                full = settings.prefix + key
                if full in entries:
                    raise invalid_input(f"duplicate key `{full}`")
                entries[full] = value

        # Python orders str by code point: the same order as UTF-8 bytes.
        contents = "".join(
            f"{escape(key, True)}={escape(entries[key], False)}\n" for key in sorted(entries)
        ).encode("utf-8")
        host.log(host.Level.DEBUG, f"rendered {len(entries)} keys")
        if target.kind == DeliveryKind.FILE:
            mode = DEFAULT_MODE if target.mode is None else target.mode
            return [Artifact_File(File(path=target.name, mode=mode, contents=contents))]
        return [
            Artifact_KubeSecret(
                KubeSecret(
                    name=target.name,
                    secret_type="Opaque",
                    data=[(SECRET_KEY, contents)],
                    labels=[],
                    annotations=[],
                )
            )
        ]


def parse_template(text: str):
    """A template is a list of secrets, one per line: `reference [k=v ...]`.
    Blank lines and lines starting with `#` are skipped."""
    refs = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        tokens = [t for t in line.replace("\t", " ").split(" ") if t]
        reference, parameters = tokens[0], []
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if not sep or not key:
                raise invalid_input(f"template line {number}: parameter `{token}` is not key=value")
            parameters.append((key, value))
        if any(r.reference == reference and r.parameters == parameters for r in refs):
            raise invalid_input(f"template line {number}: `{reference}` is listed twice")
        refs.append(SecretRef(reference=reference, parameters=parameters, kind=RefKind.SECRET))
    return refs


def secret_entries(secret):
    """The keys and rendered values of one secret. KV v2 responses (`data` and
    `metadata` side by side) are unwrapped to their inner `data`."""
    reference = secret.reference
    try:
        doc = json.loads(secret.data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise invalid_input(f"secret `{reference}`: data is not a JSON object")
    if "data" in doc and "metadata" in doc:
        doc = doc["data"]
        if not isinstance(doc, dict):
            raise invalid_input(
                f"secret `{reference}`: the KV v2 version holds no data (deleted or destroyed)"
            )
    entries = []
    for key, value in doc.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = ""
        elif isinstance(value, (int, float)) and is_safe_integer(value):
            text = str(int(value))
        else:
            raise invalid_input(
                f"secret `{reference}`, key `{key}`: only strings, integers, booleans and null "
                "can be written to .properties"
            )
        entries.append((key, text))
    return entries


def is_safe_integer(value) -> bool:
    if isinstance(value, float) and not value.is_integer():
        return False
    return abs(value) <= MAX_SAFE_INTEGER


ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}


def escape(text: str, is_key: bool) -> str:
    """`.properties` escaping: `\\`, `=`, `:`, `#`, `!` get a backslash;
    newline, carriage return, tab and form feed become `\\n`, `\\r`, `\\t`,
    `\\f`; other control characters `\\uXXXX`; spaces are escaped everywhere
    in keys and at the start of values."""
    out = []
    for index, c in enumerate(text):
        if c in "\\=:#!":
            out.append("\\" + c)
        elif c in ESCAPES:
            out.append(ESCAPES[c])
        elif c == " " and (is_key or index == 0):
            out.append("\\ ")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def hang():
    """Test-only (`debug-hang`): spin until the host's deadline stops us."""
    while True:
        pass


def allocate_until_failure():
    """Test-only (`debug-allocate`): touch 1 MiB after 1 MiB until the host's
    memory limit makes an allocation fail (a MemoryError, which traps)."""
    chunks = []
    while True:
        chunks.append(bytearray(b"\xa5") * (1 << 20))
