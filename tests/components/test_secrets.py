"""The secret scope component under recording mocks: values stay secret, jobs get references, readers get READ."""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi

from infra.components.secrets import ScopedSecrets, SecretScopeArgs
from infra.tools.offline import SECRET_SIG, Plan, masked, unwrap
from infra.tools.preview import to_json
from tests.conftest import provider, with_provider

VALUE = "dapi-0123456789abcdef-not-for-logs"


def program(readers: tuple[str, ...]) -> Callable[[], None]:
    def _program() -> None:
        scoped = ScopedSecrets(
            "eval-agent-secrets",
            SecretScopeArgs(
                scope="mlflow-eval", secrets={"databricks-token": pulumi.Output.secret(VALUE)}, readers=readers
            ),
            opts=with_provider(provider()),
        )
        pulumi.export("reference", scoped.references["databricks-token"])
        pulumi.export("scope", scoped.scope_name)

    return _program


def test_scope_secret_and_reference(run: Callable[..., Plan]) -> None:
    """The scope has the seed's name; the secret's value travels only as a secret; jobs get a reference."""
    plan = run(program(()))
    assert plan.one("SecretScope").inputs == {"name": "mlflow-eval"}
    secret = plan.one("Secret")
    assert secret.name == "eval-agent-secrets-databricks-token"
    assert secret.parent == "agent-platform:secrets:ScopedSecrets::eval-agent-secrets"
    assert SECRET_SIG in secret.inputs["stringValue"] and unwrap(secret.inputs)["stringValue"] == VALUE
    assert plan.outputs["reference"] == ("{{secrets/mlflow-eval/databricks-token}}", False)
    assert plan.outputs["scope"] == ("mlflow-eval", False)


def test_readers_get_read_acls_once_each(run: Callable[..., Plan]) -> None:
    """The identity that runs the jobs (and configured readers) may read the scope; duplicates collapse."""
    sp = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"
    plan = run(program((sp, "agent-operators", sp)))
    acls = {(a.inputs["principal"], a.inputs["permission"], a.inputs["scope"]) for a in plan.all("SecretAcl")}
    assert acls == {(sp, "READ", "mlflow-eval"), ("agent-operators", "READ", "mlflow-eval")}
    assert len(plan.all("SecretAcl")) == 2
    assert not run(program(())).all("SecretAcl")


def test_secret_value_never_reaches_the_rendered_plan(run: Callable[..., Plan]) -> None:
    """Masking covers inputs and outputs: the value appears nowhere in the JSON plan."""
    plan = run(program(()))
    rendered = to_json(plan)
    assert VALUE not in rendered and '"stringValue": "[secret]"' in rendered
    assert VALUE not in json.dumps(masked([r.inputs for r in plan.resources]))


def test_a_rotated_secret_is_deleted_before_it_is_recreated(run: Callable[..., Plan]) -> None:
    """A new value replaces the Secret; created first and deleted second, the old resource's delete would remove
    the new value under the same scope and key (pulumi-databricks#642). So it is deleted first."""
    plan = run(
        lambda: ScopedSecrets("rlm-secrets", SecretScopeArgs("adk-secrets", {"k": "v"}, ()), with_provider(provider()))
    )
    assert plan.one("Secret").delete_before_replace
