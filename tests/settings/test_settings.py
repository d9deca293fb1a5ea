"""Settings: every stack file parses; every bad value is one clear error naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as runtime_settings

from infra.settings import LoadedSettings, SettingsError, load_settings, parse_settings
from infra.systems.health_monitor.settings import SEED_THRESHOLDS
from infra.tools.offline import RecordingMocks, read_stack_config
from tests.conftest import PROJECT, ROOT, STACK_FILES, parse, raw_config


@pytest.mark.parametrize("stack_file", STACK_FILES)
def test_each_stack_file_is_valid(stack_file: str) -> None:
    """The committed stack files must always parse: CI catches a broken one before `pulumi up` does."""
    stack = stack_file.removeprefix("Pulumi.").removesuffix(".yaml")
    config = read_stack_config(ROOT, stack)
    loaded = parse_settings(config.values, config.secret_keys, project=config.project, stack_file=stack_file)
    assert loaded.settings.environment == stack


def test_dev_and_prod_modes() -> None:
    """prod behaves as production (protected data, a service principal runs jobs); dev as development."""
    dev = _stack("dev").settings
    prod = _stack("prod").settings
    assert (dev.production, dev.protect_data) == (False, False)
    assert (prod.production, prod.protect_data) == (True, True)
    assert prod.deployment.run_as is not None


def _stack(name: str) -> LoadedSettings:
    config = read_stack_config(ROOT, name)
    return parse_settings(config.values, config.secret_keys, project=PROJECT, stack_file=config.stack_file)


def test_defaults_live_in_the_model() -> None:
    """A stack file holds only what differs: everything else comes from the model's defaults."""
    s = parse().settings
    assert s.eval_agent.secret_scope == "mlflow-eval" and s.rlm.secret_scope == "adk-secrets"
    assert s.eval_agent.compute.kind == "serverless" and s.eval_agent.compute.environment_version == "4"
    assert {role: name for role, (where, name, _) in s.volumes().items() if where == "platform"} == {
        "wheels": "wheels", "eval_sessions": "eval_sessions",
        "rlm_artifacts": "rlm_artifacts", "rlm_agent_code": "rlm_agent_code",
    }  # fmt: skip
    assert s.health_monitor.thresholds == SEED_THRESHOLDS


def test_mode_can_be_set_explicitly() -> None:
    """A staging environment can behave like production when the stack says so."""
    s = parse({"environment": "staging", "deployment": {"mode": "production", "run_as": _SP}}).settings
    assert s.production and s.protect_data


def test_thresholds_merge_over_the_seed_defaults() -> None:
    """Overriding one threshold keeps the others; null drops a metric from the gate."""
    hm = {"schema": {"name": "hm"}, "thresholds": {"safety/mean": 0.9, "no_errors/mean": None}}
    thresholds = parse({"health_monitor": hm}).settings.health_monitor.thresholds
    assert thresholds["safety/mean"] == 0.9 and thresholds["relevance/mean"] == 0.4
    assert "no_errors/mean" not in thresholds


def test_settings_are_frozen() -> None:
    """Components get slices of one immutable object; nothing can change it behind the program's back."""
    s = parse().settings
    with pytest.raises(Exception, match="frozen"):
        s.catalog.name = "other"  # type: ignore[misc]


_SP = "6f1c2a4e-0b7d-4c1e-9a53-2f8e7d6c5b4a"
_HM = {"schema": {"name": "hm"}}

# (overrides, key named in the message, text that shows what is allowed)
BAD_VALUES: list[tuple[dict[str, Any], str, str]] = [
    ({"environment": "Prod!"}, "environment", "lowercase letters"),
    ({"workspace": {"host": "http://dbc.cloud.databricks.com"}}, "workspace.host", "https://"),
    ({"workspace": {"host": "https://dbc.cloud.databricks.com/path"}}, "workspace.host", "host only"),
    ({"workspace": {}}, "workspace.host", "Workspace URL"),
    ({"workspace": "https://dbc.cloud.databricks.com"}, "workspace", "mapping"),
    ({"catalog": {"name": "Main-Catalog"}}, "catalog.name", "lowercase letters, digits and underscores"),
    ({"catalog": {"name": "main", "nmae": "x"}}, "catalog.nmae", "did you mean 'name'"),
    ({"catalog": {"name": "main", "storage_root": "s3://b/p"}}, "catalog.storage_root", "create: true"),
    ({"catalog": {"name": "main", "grants": {"devs": ["SELEKT"]}}}, "catalog.grants.devs[0]", "USE_CATALOG"),
    ({"schema": {"name": "agents.dev"}}, "schema.name", "lowercase letters"),
    ({"schema": {"name": "agents", "grants": {" devs": ["SELECT"]}}}, 'schema.grants[" devs"]', "group name"),
    ({"deployment": {"mode": "staging"}}, "deployment.mode", "'development' or 'production'"),
    ({"deployment": {"run_as": "data-engineers"}}, "deployment.run_as", "service principal's application id"),
    ({"deployment": {"tags": {"managed_by": "me"}}}, "deployment.tags.managed_by = 'me'", "any tag except"),
    ({"deployment": {"tags": {"cost-center": "42"}}}, 'deployment.tags["cost-center"]', "letters, digits and underscores"),
    ({"deployment": {"notifications": {"on_failure": ["oncall"]}}}, "deployment.notifications.on_failure[0]", "like oncall@example.com"),
    ({"deployment": {"job_permissions": {"ops": "CAN_RUN"}}}, "deployment.job_permissions.ops", "CAN_MANAGE_RUN"),
    ({"deployment": {"protect_data": "maybe"}}, "deployment.protect_data", "allowed: true or false"),
    ({"environment": "prod"}, "deployment.run_as", "required in production mode"),
    ({"environment": "prod", "deployment": {"run_as": "alice@example.com"}}, "deployment.run_as", "service principal"),
    ({"environment": "prod", "deployment": {"run_as": _SP, "user": "alice"}}, "deployment.user", "development mode"),
    ({"rlm": {"compute": {"kind": "existing_cluster"}}}, "rlm.compute.cluster_id", "The cluster's id"),
    ({"rlm": {"compute": {"kind": "existing_cluster", "cluster_id": "abc"}}}, "rlm.compute.cluster_id", "1115-120035-jyzgoasz"),
    ({"rlm": {"compute": {"cluster_id": "1115-120035-jyzgoasz"}}}, "rlm.compute", "serverless, existing_cluster or job_cluster"),
    ({"rlm": {"compute": {"kind": "gpu"}}}, "rlm.compute.kind = 'gpu'", "serverless, existing_cluster or job_cluster"),
    ({"rlm": {"compute": {"kind": "serverless", "cluster_id": "1115-120035-jyzgoasz"}}}, "rlm.compute.cluster_id", "environment_version, kind"),
    ({"rlm": {"compute": {"kind": "serverless", "environment_version": "latest"}}}, "rlm.compute.environment_version", "whole number"),
    ({"rlm": {"compute": {"kind": "job_cluster", "spark_version": "15.4", "node_type_id": "i3.xlarge"}}}, "rlm.compute.spark_version", "15.4.x-scala2.12"),
    ({"rlm": {"compute": {"kind": "job_cluster", "spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": -1}}}, "rlm.compute.num_workers = -1", "allowed: at least 0"),
    ({"rlm": {"sql_warehouse_id": "warehouse-1"}}, "rlm.sql_warehouse_id", "16 hexadecimal"),
    ({"rlm": {"secret_scope": "adk secrets"}}, "rlm.secret_scope", "dashes, underscores, @ and periods"),
    ({"eval_agent": {"secret_scope": "shared"}, "rlm": {"secret_scope": "shared"}}, "rlm.secret_scope", "distinct scope per system"),
    ({"rlm": {"artifacts_volume": "wheels"}}, "rlm.artifacts_volume", "distinct volume name"),
    ({"eval_agent": {"experiment_id": "exp-1"}}, "eval_agent.experiment_id", "digits only"),
    ({"eval_agent": {"schedule": {"cron": "0 6 * * *"}}}, "eval_agent.schedule.cron", "6 or 7 fields"),
    ({"eval_agent": {"schedule": {"cron": "0 0 25 * * ?"}}}, "eval_agent.schedule.cron", "has '25' in the hours field (allowed: 0-23)"),
    ({"eval_agent": {"schedule": {"cron": "0 0 6 * * MON"}}}, "eval_agent.schedule.cron", "exactly one of day-of-month"),
    ({"eval_agent": {"schedule": {"cron": "0 0 6 * * ?", "timezone": "Mars/Base"}}}, "eval_agent.schedule.timezone", "IANA time zone"),
    ({"eval_agent": {"enabled": "yes please"}}, "eval_agent.enabled", "allowed: true or false"),
    ({"health_monitor": {}}, "health_monitor.schema", "required when health_monitor is enabled"),
    ({"health_monitor": {"schema": {"name": "agents_dev"}}}, "health_monitor.schema.name", "different schema name"),
    ({"health_monitor": {**_HM, "thresholds": {"safety/mean": 1.5}}}, 'health_monitor.thresholds["safety/mean"]', "from 0 to 1"),
    ({"health_monitor": {**_HM, "thresholds": {"Safety": 0.5}}}, "health_monitor.thresholds.Safety", "relevance/mean"),
    ({"health_monitor": {**_HM, "gate_mode": "on"}}, "health_monitor.gate_mode", "'dry_run'"),
    ({"health_monitor": {**_HM, "compute": {"kind": "existing_cluster"}}}, "health_monitor.compute.kind", "'serverless'"),
    ({"serving_platform": {"enabeld": True}}, "serving_platform.enabeld", "did you mean 'enabled'"),
    ({"rlm": {"enabeld": False}}, "rlm.enabeld", "did you mean 'enabled'"),
    ({"catlog": {"name": "main"}}, "catlog", "did you mean 'catalog'"),
    ({"eval_agent": {"schedule": {"cron": "0 0/99 2 * * ?"}}}, "eval_agent.schedule.cron", "invalid step '/99'"),
    ({"eval_agent": {"schedule": {"cron": "0 0 2 ? * MONDAYX"}}}, "eval_agent.schedule.cron", "SUN, MON"),
    ({"health_monitor": {**_HM, "thresholds": {"safety/mean": True}}}, 'health_monitor.thresholds["safety/mean"]', "a number from 0 to 1"),
    ({"workspace": {"host": "https://dbc.cloud.databricks.com", "profile": ""}}, "workspace.profile", "~/.databrickscfg"),
    ({"deployment": {"notifications": {"on_failure": "oncall@example.com"}}}, "deployment.notifications.on_failure", "must be a list"),
    ({"health_monitor": {**_HM, "scorers": ["no_errors"]}}, 'health_monitor.thresholds["relevance/mean"]', "metrics of no_errors"),
    ({"health_monitor": {**_HM, "scorers": []}}, "health_monitor.scorers", "one or more of relevance"),
    ({"health_monitor": {**_HM, "scorers": ["relevence"]}}, "health_monitor.scorers[0]", "'relevance'"),
    ({"health_monitor": {**_HM, "experiment_path": "Shared/hm"}}, "health_monitor.experiment_path", "an absolute path"),
    ({"health_monitor": {**_HM, "experiment_path": "/Shared/../hm"}}, "health_monitor.experiment_path", "no empty or '..' segments"),
    ({"health_monitor": {**_HM, "endpoint_permissions": {"agent-users": "CAN_RUN"}}}, 'health_monitor.endpoint_permissions["agent-users"]', "'CAN_QUERY'"),
    ({"health_monitor": {**_HM, "endpoint_ready_timeout_minutes": 0}}, "health_monitor.endpoint_ready_timeout_minutes", "1"),
    ({"health_monitor": {**_HM, "llm_endpoint": "bad endpoint"}}, "health_monitor.llm_endpoint", "letters, digits"),
    # Booleans are only what the CLI passes for a YAML boolean; counts and YAML 1.1 words are refused.
    ({"eval_agent": {"enabled": 1}}, "eval_agent.enabled = 1", "allowed: true or false"),
    ({"rlm": {"enabled": 0}}, "rlm.enabled = 0", "allowed: true or false"),
    ({"rlm": {"enabled": "on"}}, "rlm.enabled = 'on'", "yes/no, on/off and 1/0 are not booleans"),
    ({"catalog": {"name": "main", "create": "True"}}, "catalog.create = 'True'", "allowed: true or false"),
    ({"deployment": {"protect_data": 1.0}}, "deployment.protect_data = 1.0", "allowed: true or false"),
    ({"rlm": {"max_iterations": True}}, "rlm.max_iterations = True", "is a boolean; allowed: a whole number"),
    ({"rlm": {"max_iterations": "9" * 5000}}, "rlm.max_iterations = '999", "too large a number; allowed: a whole number in the setting's range (at least 1, at most 100)"),
    ({"rlm": {"artifact_timeout_minutes": 1e300}}, "rlm.artifact_timeout_minutes = 1e+300", "(at least 1, at most 1440)"),
    # Control characters (NUL included) and bidirectional controls, in principals, names, tags and free text.
    ({"deployment": {"secret_readers": ["admins\x00"]}}, "deployment.secret_readers[0] = 'admins\\x00'", "contains U+0000 (a control character) at position 6"),
    ({"deployment": {"secret_readers": ["ad\u202emins"]}}, "deployment.secret_readers[0] = 'ad\\u202emins'", "contains U+202E (a bidirectional control)"),
    ({"catalog": {"name": "main", "grants": {"dev\u2066s": ["SELECT"]}}}, 'catalog.grants["dev\\u2066s"]', "U+2066 (a bidirectional control)"),
    ({"deployment": {"run_as": "alice\u200f@example.com"}}, "deployment.run_as", "U+200F (a bidirectional control)"),
    ({"deployment": {"notifications": {"on_failure": ["ops\x1b@example.com"]}}}, "deployment.notifications.on_failure[0]", "U+001B (a control character)"),
    ({"schema": {"name": "agents\u202e"}}, "schema.name", "U+202E"),
    ({"deployment": {"tags": {"team": "data\nops"}}}, "deployment.tags.team", "U+000A (a control character)"),
    ({"catalog": {"name": "main", "comment": "see\u202etxt.exe"}}, "catalog.comment", "U+202E"),
    ({"deployment": {"user": "al\x7fice"}}, "deployment.user", "U+007F (a control character)"),
    # Tag keys that differ only in case are one Unity Catalog tag (and one logical name).
    ({"deployment": {"tags": {"Team": "a", "team": "b"}}}, "deployment.tags.team = 'b'", "differs from the tag key Team only in case"),
    ({"deployment": {"tags": {"Project": "x"}}}, "deployment.tags.Project", "reserved tag"),
    # A misspelt discriminator names the key and suggests `kind`.
    ({"rlm": {"compute": {"kindx": "serverless"}}}, "rlm.compute.kindx: is not a known setting (did you mean 'kind'?)", "serverless, existing_cluster or job_cluster"),
    ({"eval_agent": {"compute": {"knd": "existing_cluster", "cluster_id": "1115-120035-jyzgoasz"}}}, "eval_agent.compute.knd", "did you mean 'kind'?"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "allowed"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_value_names_file_key_and_what_is_allowed(overrides: dict[str, Any], key: str, allowed: str) -> None:
    """Every invalid value fails with the stack file, the full key and what is allowed, as one message."""
    with pytest.raises(SettingsError) as raised:
        parse(overrides)
    message = str(raised.value)
    assert message.startswith("Pulumi.test.yaml: ")
    assert f"{PROJECT}:{key}" in message, message
    assert allowed in message, message
    assert "Traceback" not in message and "pydantic" not in message.lower()


def test_a_hostile_value_is_shown_short_and_on_one_line() -> None:
    """A megabyte-long value, or one with line breaks and bidirectional controls, is quoted escaped and cut:
    the message stays one line a terminal shows as it is."""
    for bad in ("x" * 1_000_000, "a\nb\u202ec" * 1000):
        with pytest.raises(SettingsError) as raised:
            parse({"schema": {"name": bad}})
        message = str(raised.value)
        assert "\n" not in message and "\u202e" not in message and len(message) < 400, message[:400]
        assert f"{PROJECT}:schema.name = " in message


def test_an_empty_top_level_value_is_unset() -> None:
    """`agent-platform:deployment:` with nothing after it reaches the program as "" (the CLI's rule); the
    program reads it as unset, like an empty secret: the model's default, never "must be a mapping"."""
    raw = {**raw_config(), f"{PROJECT}:deployment": "", f"{PROJECT}:rlm": ""}
    settings = parse_settings(raw, [], project=PROJECT, stack_file="Pulumi.test.yaml").settings
    assert settings.deployment.mode is None and settings.rlm.enabled
    with pytest.raises(SettingsError, match=f"{PROJECT}:environment: is required but not set"):
        parse_settings({**raw, f"{PROJECT}:environment": ""}, [], project=PROJECT, stack_file="Pulumi.test.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"max_iterations": NaN}', "holds NaN, which is not a finite number"),
        ('{"max_iterations": -Infinity}', "holds -Infinity, which is not a finite number"),
        ('{"max_iterations": ' + "9" * 5000 + "}", "holds a number thousands of digits long"),
        ('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "is nested too deeply to read"),
    ],
    ids=["nan", "infinity", "5000-digit-number", "nested-100000-deep"],
)
def test_config_text_no_setting_can_hold_is_one_message(text: str, expected: str) -> None:
    """The CLI never writes these, but PULUMI_CONFIG can hold anything: still one message naming the key,
    never a ValueError or RecursionError from the JSON reader."""
    raw = {**raw_config(), f"{PROJECT}:rlm": text}
    with pytest.raises(SettingsError) as raised:
        parse_settings(raw, [], project=PROJECT, stack_file="Pulumi.test.yaml")
    assert (
        str(raised.value)
        == f"Pulumi.test.yaml: {PROJECT}:rlm: {expected}; allowed: " + str(raised.value).split("; allowed: ", 1)[1]
    )


def test_bad_value_is_shown_but_a_missing_one_is_not() -> None:
    """The message quotes the offending value so the user can find it in the stack file."""
    with pytest.raises(SettingsError, match=r"catalog\.name = 'Main-Catalog'"):
        parse({"catalog": {"name": "Main-Catalog"}})


def test_several_problems_are_listed_in_one_message() -> None:
    """All problems of a stack file are reported at once, each on its own line."""
    with pytest.raises(SettingsError) as raised:
        parse({"environment": "Dev", "catalog": {"name": "Main"}})
    lines = str(raised.value).splitlines()
    assert lines[0] == "Pulumi.test.yaml: 2 problems in the stack configuration:"
    assert any(f"{PROJECT}:environment" in line for line in lines[1:])
    assert any(f"{PROJECT}:catalog.name" in line for line in lines[1:])


def test_provider_config_keys_are_refused() -> None:
    """databricks:host would be silently ignored by the explicit provider, so it is an error instead."""
    raw = {**raw_config(), "databricks:host": "https://other.cloud.databricks.com"}
    with pytest.raises(SettingsError, match=rf"databricks:host: .*set {PROJECT}:workspace.host"):
        parse_settings(raw, [], project=PROJECT, stack_file="Pulumi.test.yaml")


def test_other_namespaces_pass_through() -> None:
    """Keys of other namespaces (pulumi:disable-default-providers) are not this program's business."""
    raw = {**raw_config(), "pulumi:disable-default-providers": '["databricks"]'}
    parse_settings(raw, [], project=PROJECT, stack_file="Pulumi.test.yaml")


# --- Secrets


def test_required_secret_missing_is_refused_for_deploy() -> None:
    """`pulumi up` must stop before creating anything when a required secret is unset, saying how to set it."""
    loaded = parse()
    with pytest.raises(SettingsError) as raised:
        loaded.check_secrets_for_deploy(PROJECT)
    message = str(raised.value)
    assert f"pulumi config set --secret {PROJECT}:eval_agent_databricks_token" in message
    assert f"{PROJECT}:rlm_google_api_key is not set" in message
    assert "rlm_databricks_host" not in message  # optional


def test_plaintext_secret_is_refused_without_echoing_it() -> None:
    """A secret stored in plain text is refused (it must be rotated and encrypted), and never printed."""
    loaded = parse(
        {"rlm": {"enabled": False}},
        secret_keys=(),
        eval_agent_databricks_token="dapi-super-secret-123",
    )
    assert loaded.secrets["eval_agent_databricks_token"] == "plaintext"
    switched_off = parse({"rlm": {"enabled": False}}, ("eval_agent_databricks_token",), eval_agent_databricks_token="t",
                         rlm_google_api_key="AIza-plain")  # fmt: skip
    with pytest.raises(SettingsError, match="rlm_google_api_key is stored in plain text"):
        switched_off.check_secrets_for_deploy(PROJECT)
    with pytest.raises(SettingsError) as raised:
        loaded.check_secrets_for_deploy(PROJECT)
    assert "plain text" in str(raised.value)
    assert "dapi-super-secret-123" not in str(raised.value)


def test_secrets_of_disabled_systems_are_not_needed() -> None:
    """A stack that switches a system off needs none of its secrets."""
    loaded = parse(
        {"rlm": {"enabled": False}},
        secret_keys=("eval_agent_databricks_token",),
        eval_agent_databricks_token="value",
    )
    loaded.check_secrets_for_deploy(PROJECT)
    assert [s.config_key for s in loaded.wanted_secrets()] == ["eval_agent_databricks_token"]


def test_optional_secret_is_wanted_only_when_set() -> None:
    """The RLM fallback host and token become secrets in the scope only if the stack sets them."""
    keys = ("eval_agent_databricks_token", "rlm_google_api_key", "rlm_databricks_token")
    loaded = parse(secret_keys=keys, eval_agent_databricks_token="a", rlm_google_api_key="b", rlm_databricks_token="c")
    loaded.check_secrets_for_deploy(PROJECT)
    assert {s.key for s in loaded.wanted_secrets() if s.system == "rlm"} == {"google-api-key", "databricks-token"}


def test_load_settings_reads_config_the_way_the_cli_passes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `pulumi up` the language host passes config in PULUMI_CONFIG and the secret keys in
    PULUMI_CONFIG_SECRET_KEYS; the loader must see both (else every secret would look like plain text)."""
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(RecordingMocks(), project=PROJECT, stack="dev", preview=True)
    pulumi.runtime.set_all_config({}, secret_keys=[])
    raw = raw_config(eval_agent_databricks_token="t", rlm_google_api_key="k")
    secret = [f"{PROJECT}:eval_agent_databricks_token", f"{PROJECT}:rlm_google_api_key"]
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(raw))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret))
    loaded = load_settings()
    assert loaded.stack_file == "Pulumi.dev.yaml"
    assert loaded.settings.schema_.name == "agents_dev"
    loaded.check_secrets_for_deploy(PROJECT)
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(SettingsError, match="plain text"):
        load_settings().check_secrets_for_deploy(PROJECT)


def test_pulumi_yaml_declares_every_setting_and_secret() -> None:
    """Every config key is described in Pulumi.yaml; secrets are declared secret; optional keys have a
    default (the CLI treats a declared key without one as required)."""
    import yaml

    from infra.settings import SECRETS, StackSettings

    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields = {f.alias or n: f for n, f in StackSettings.model_fields.items()}
    for key, field in fields.items():
        assert declared[key]["description"], key
        assert ("default" in declared[key]) != field.is_required(), key
    for spec in SECRETS:
        decl = declared[spec.config_key]
        assert decl["secret"] is True and decl["description"] == spec.description and decl["default"] == ""
        assert "type" not in decl  # a typed secret with a default fails the CLI's validation when unset
    own = {k for k in declared if ":" not in k}
    assert own == set(fields) | {s.config_key for s in SECRETS}


def test_committed_stack_files_hold_no_secret_values() -> None:
    """Secrets are set with `pulumi config set --secret`, never committed in plain text."""
    from infra.settings import SECRET_KEYS

    for name in STACK_FILES:
        config = read_stack_config(ROOT, name.removeprefix("Pulumi.").removesuffix(".yaml"))
        assert not config.plaintext_secrets, name
        held = {k: v for k, v in config.values.items() if k.split(":")[-1] in SECRET_KEYS}
        assert set(held.values()) <= {""}, name  # only Pulumi.yaml's "not set" default


def test_stack_file_path_is_reported_for_unreadable_yaml(tmp_path: Path) -> None:
    """A broken stack file is a settings error naming the file and the line, not a YAML traceback."""
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  agent-platform:environment: [dev\n")
    with pytest.raises(SettingsError, match=r"Pulumi.bad.yaml: is not valid YAML at line \d"):
        read_stack_config(tmp_path, "bad")
