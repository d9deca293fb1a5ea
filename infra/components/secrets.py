"""A secret scope, the secrets it holds and who may read them.

Values arrive as secret Outputs (read from `pulumi config set --secret` keys in `settings.secret_values`) and
stay secret in state, previews and outputs. Jobs never receive a value: they get `references`, the
`{{secrets/<scope>/<key>}}` strings Databricks resolves at run time. This module reads no config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_databricks as db

from infra.naming import logical, slug


@dataclass(frozen=True)
class SecretScopeArgs:
    scope: str
    """Physical scope name (the seeds' names by default: mlflow-eval, adk-secrets)."""
    secrets: Mapping[str, pulumi.Input[str]]
    """Secret key -> value (a secret Output)."""
    readers: tuple[str, ...]
    """Principals that get READ: the identity the jobs run as and any configured readers."""


class ScopedSecrets(pulumi.ComponentResource):
    """Children: `SecretScope` <name>, one `Secret` <name>-<key> per value, one `SecretAcl`
    <name>-read-<principal> per reader. The deploying identity creates the scope and so holds MANAGE on it.
    Deleting the stack deletes the scope: the values live in the stack's config, not only in Databricks."""

    scope_name: pulumi.Output[str]
    references: dict[str, pulumi.Output[str]]
    """Secret key -> '{{secrets/<scope>/<key>}}', for spark_env_vars and job settings."""

    def __init__(self, name: str, args: SecretScopeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-platform:secrets:ScopedSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        scope = db.SecretScope(name, name=args.scope, opts=child)
        self.scope_name = scope.name
        self.references = {}
        for key, value in sorted(args.secrets.items()):
            secret = db.Secret(
                logical(name, key),
                scope=scope.name,
                key=key,
                string_value=pulumi.Output.secret(value),
                # A new value replaces the Secret (string_value is force-new). Create-then-delete would write the
                # new value under the same scope/key and then delete it (pulumi-databricks#642): delete first.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            self.references[key] = secret.config_reference
        for principal in sorted(set(args.readers)):
            db.SecretAcl(
                logical(name, "read", slug(principal)),
                scope=scope.name,
                principal=principal,
                permission="READ",
                opts=child,
            )
        self.register_outputs({"scope_name": self.scope_name, "references": self.references})
