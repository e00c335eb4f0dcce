"""Keyward example policy plugin in Python (world `policy`).

* A team may read only the paths under `<mount>/<team>/`, where `<team>` is
  the value of the namespace label named by `team-label` (default `team`).
* A production secret (a path with a segment `prod`) is denied unless every
  image of the workload starts with the `registry` setting.

The same behaviour is implemented in Rust, JavaScript and C next to this
file and checked by one suite: tests/conformance/policy.
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

KNOWN = ("registry", "team-label", "max-ttl-seconds", "debug-hang", "debug-allocate")
# The largest integer every language's JSON parser reads exactly.
MAX_SAFE_INTEGER = 2**53 - 1


class Settings:
    """The policy's settings, checked in a fixed order so that every
    language reports the same first problem."""

    def __init__(self, raw: str):
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise invalid(f"settings are not valid JSON: {e}")
        if not isinstance(doc, dict):
            raise invalid("settings must be a JSON object")
        unknown = sorted(k for k in doc if k not in KNOWN)
        if unknown:
            raise invalid(f"unknown setting `{unknown[0]}`")

        if "registry" not in doc:
            raise invalid("`registry` is required")
        self.registry = doc["registry"]
        if not isinstance(self.registry, str) or not self.registry:
            raise invalid("`registry` must be a non-empty string")

        self.team_label = doc.get("team-label", "team")
        if not isinstance(self.team_label, str) or not self.team_label:
            raise invalid("`team-label` must be a non-empty string")

        self.max_ttl_seconds = doc.get("max-ttl-seconds")
        if "max-ttl-seconds" in doc and not (
            type(self.max_ttl_seconds) is int and 0 < self.max_ttl_seconds <= MAX_SAFE_INTEGER
        ):
            raise invalid("`max-ttl-seconds` must be a positive integer")

        self.debug_hang = flag(doc, "debug-hang")
        self.debug_allocate = flag(doc, "debug-allocate")


def invalid(message: str) -> Err:
    return Err(PluginError_InvalidSettings(message))


def flag(doc: dict, key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise invalid(f"`{key}` must be true or false")
    return value


class Decider(exports.Decider):
    def validate_settings(self, settings: str) -> None:
        Settings(settings)

    def decide(self, request):
        settings = Settings(request.settings)
        if settings.debug_hang:
            hang()
        if settings.debug_allocate:
            allocate_until_failure()
        team = next(
            (v for k, v in request.workload.namespace_labels if k == settings.team_label), ""
        )
        decisions = [
            decide_one(settings, team, request.workload.images, secret)
            for secret in request.secrets
        ]
        allowed = sum(1 for d in decisions if isinstance(d.verdict, Verdict_Allow))
        host.log(
            host.Level.DEBUG,
            f"team {team or '(none)'}: {allowed} allowed, {len(decisions) - allowed} denied",
        )
        return decisions


def decide_one(settings: Settings, team: str, images, secret) -> SecretDecision:
    def decision(verdict, rule):
        return SecretDecision(reference=secret.reference, verdict=verdict, rule=rule)

    def deny(reason, rule):
        return decision(Verdict_Deny(reason), rule)

    if not team:
        return deny(f"the namespace has no `{settings.team_label}` label", "team-label")
    full = f"{secret.mount}/{secret.path}"
    segments = secret.path.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return deny(f"`{full}` is not a normalised path", "team-prefix")
    if len(segments) < 2 or segments[0] != team:
        return deny(
            f"`{full}` is outside team `{team}`'s prefix `{secret.mount}/{team}/`",
            "team-prefix",
        )
    grant = Grant(
        allowed_keys=None,
        max_ttl_seconds=settings.max_ttl_seconds,
        delivery=None,
        targets=None,
    )
    if "prod" not in segments:
        return decision(Verdict_Allow(grant), "team-prefix")
    if not images:
        return deny(f"production secret `{full}`: the workload lists no images", "prod-registry")
    for image in images:
        if not image.startswith(settings.registry):
            return deny(
                f"production secret `{full}`: image `{image}` is not from `{settings.registry}`",
                "prod-registry",
            )
    return decision(Verdict_Allow(grant), "prod-registry")


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
