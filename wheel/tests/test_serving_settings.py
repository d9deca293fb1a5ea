"""The serving app's settings (environment and command line), its CLI's exit status on bad input, and the
app.yaml it hands to the infrastructure."""

from __future__ import annotations

from typing import Any

import pytest

from agent_jobs.serving.app_yaml import COMMAND, RESOURCES, app_yaml, environment
from agent_jobs.serving.cli import main
from agent_jobs.serving.settings import SOURCES, SettingsError, load_settings

# The real PostgreSQL: one xdist worker runs this group (--dist loadgroup), so one server starts.
pytestmark = pytest.mark.xdist_group("postgres")

# What Databricks Apps gives the app (platform variables, and the app.yaml values from its resources).
APP_ENV = {
    "DATABRICKS_HOST": "adb-123.4.azuredatabricks.net",
    "DATABRICKS_APP_NAME": "agents-dev",
    "DATABRICKS_APP_PORT": "8000",
    "PGHOST": "instance-1.database.azuredatabricks.net",
    "PGPORT": "5432",
    "PGDATABASE": "agent_memory",
    "PGUSER": "7f3b3c1e-0000-4000-8000-000000000001",
    "PGSSLMODE": "require",
    "LAKEBASE_ENDPOINT": "projects/agents/branches/production/endpoints/primary",
    "SERVING_LLM_ENDPOINT": "agents-llm",
    "SERVING_EMBEDDINGS_ENDPOINT": "databricks-gte-large-en",
    "SERVING_PROMPTS_VOLUME": "/Volumes/main/agents/prompts",
}


def test_the_databricks_apps_environment_gives_working_settings() -> None:
    """What Databricks Apps sets is enough: endpoints under the workspace host (https added), the Lakebase
    credential mode, the volume path, the documented defaults."""
    settings = load_settings(APP_ENV)
    assert settings.endpoints_base == "https://adb-123.4.azuredatabricks.net/serving-endpoints"
    assert settings.pg_credential == "lakebase" and settings.prompts_volume_path == "/Volumes/main/agents/prompts"
    assert (settings.port, settings.host, settings.embedding_dim, settings.prompts_refresh_s) == (8000, "0.0.0.0", 1024, 300.0)  # fmt: skip
    assert not settings.local
    assert load_settings({**APP_ENV, "SERVING_PROMPTS_VOLUME": "main.agents.prompts"}).prompts_volume_path == "/Volumes/main/agents/prompts"  # fmt: skip


def test_the_command_line_wins_over_the_environment() -> None:
    """--port and the other options override the environment; empty variables mean unset."""
    settings = load_settings({**APP_ENV, "SERVING_MEMORY_SCHEMA": ""}, {"port": "9001", "llm_endpoint": "other-llm"})
    assert (settings.port, settings.llm_endpoint, settings.memory_schema) == (9001, "other-llm", "agent_memory")


LOCAL = {"SERVING_LLM_ENDPOINT": "llm", "SERVING_EMBEDDINGS_ENDPOINT": "emb", "SERVING_PG_DSN": "host=/tmp dbname=x password=hunter2",
         "SERVING_ENDPOINTS_URL": "http://127.0.0.1:9000/serving-endpoints"}  # fmt: skip


@pytest.mark.parametrize(
    ("env", "names", "says"),
    [
        ({"SERVING_LLM_TIMEOUT_S": "nan"}, "SERVING_LLM_TIMEOUT_S", "finite"),
        ({"SERVING_LLM_TIMEOUT_S": "inf"}, "SERVING_LLM_TIMEOUT_S", "finite"),
        ({"SERVING_LLM_TIMEOUT_S": "-1"}, "SERVING_LLM_TIMEOUT_S", "greater than 0"),
        ({"SERVING_LLM_TIMEOUT_S": "abc"}, "SERVING_LLM_TIMEOUT_S", "number"),
        ({"SERVING_LLM_TIMEOUT_S": "1e400"}, "SERVING_LLM_TIMEOUT_S", "finite"),
        ({"DATABRICKS_APP_PORT": "70000"}, "DATABRICKS_APP_PORT", "less than or equal to 65535"),
        ({"DATABRICKS_APP_PORT": "0x50"}, "DATABRICKS_APP_PORT", "integer"),
        ({"SERVING_LLM_ENDPOINT": "bad name!"}, "SERVING_LLM_ENDPOINT", "serving endpoint name"),
        ({"SERVING_LLM_ENDPOINT": "a" * 100}, "SERVING_LLM_ENDPOINT", "at most 63"),
        ({"SERVING_MEMORY_SCHEMA": "Robert'); drop"}, "SERVING_MEMORY_SCHEMA", "Postgres identifier"),
        ({"SERVING_EMBEDDING_DIM": "3000"}, "SERVING_EMBEDDING_DIM", "less than or equal to 2000"),
        ({"SERVING_LLM_ENDPOINT": "chat\x07"}, "SERVING_LLM_ENDPOINT", "control characters"),
        ({"SERVING_EMBEDDINGS_ENDPOINT": "x" * 5000}, "SERVING_EMBEDDINGS_ENDPOINT", "longer than 4096"),
        ({"LAKEBASE_ENDPOINT": "projects/x"}, "LAKEBASE_ENDPOINT", "projects/<project>/branches/<branch>/endpoints/<endpoint>"),
        ({"SERVING_PROMPTS_VOLUME": "/tmp/prompts"}, "SERVING_PROMPTS_VOLUME", "/Volumes/<catalog>/<schema>/<volume>"),
        ({"SERVING_ENDPOINTS_URL": "ftp://x"}, "SERVING_ENDPOINTS_URL", "http(s) URL"),
        ({"SERVING_LLM_ENDPOINT": None}, "SERVING_LLM_ENDPOINT", "is required"),
        ({"SERVING_LOCAL": "maybe"}, "SERVING_LOCAL", "true or false"),
        ({"SERVING_LOCAL": "true", "DATABRICKS_APP_NAME": "agents"}, "SERVING_LOCAL", "refused inside Databricks Apps"),
        ({"SERVING_PG_DSN": None}, "SERVING_PG_DSN", "needs a Postgres database"),
        ({"PGHOST": "db.example.com"}, "SERVING_PG_DSN", "not both"),
        ({"LAKEBASE_ENDPOINT": "projects/a/branches/b/endpoints/c"}, "PGUSER", "PGHOST and PGUSER"),
        ({"SERVING_POOL_MIN_SIZE": "20", "SERVING_POOL_MAX_SIZE": "5"}, "SERVING_POOL_MIN_SIZE", "must not exceed"),
        ({"SERVING_PROMPTS_VOLUME": "/Volumes/a/b/c", "SERVING_PROMPTS_DIR": "/tmp"}, "SERVING_PROMPTS_DIR", "not both"),
        ({"SERVING_LOG_LEVEL": "LOUD"}, "SERVING_LOG_LEVEL", "DEBUG"),
        ({"PGSSLMODE": "sometimes", "SERVING_PG_DSN": None, "PGHOST": "h"}, "PGSSLMODE", "require"),
    ],
)  # fmt: skip
def test_each_bad_value_is_one_message_naming_the_variable(env: dict[str, Any], names: str, says: str) -> None:
    """A bad, missing, hostile (control characters, huge, non-finite) or inconsistent value is one
    SettingsError naming the variable and what is allowed, and never echoes the DSN (it may hold a password)."""
    merged = {k: v for k, v in {**LOCAL, **env}.items() if v is not None}
    with pytest.raises(SettingsError) as error:
        load_settings(merged)
    message = str(error.value)
    assert message.startswith(names) and says in message, message
    assert "hunter2" not in message and "\n" not in message


def test_a_bad_option_names_the_option() -> None:
    """A bad command-line value is reported against its option, not the variable."""
    with pytest.raises(SettingsError, match=r"^--port \(command line\): .*65535"):
        load_settings(LOCAL, {"port": "99999"})


def test_the_cli_exits_2_with_one_line_on_bad_settings(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """serving-app with a bad value prints one line naming it and exits 2 (no traceback, nothing started)."""
    for source in SOURCES:
        monkeypatch.delenv(source.env, raising=False)
    for name, value in LOCAL.items():
        monkeypatch.setenv(name, value)
    assert main(["--port", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("serving-app: --port (command line)")
    assert main(["--pgserver", "/tmp/x"]) == 2
    assert "only with --local" in capsys.readouterr().err


def test_app_yaml_takes_the_resources_by_value_from() -> None:
    """The generated app.yaml runs the app's command and passes each resource-provided setting with valueFrom
    (by the resource key the infrastructure chose) and fixed values as values."""
    keys = {
        "llm-endpoint": "llm",
        "embeddings-endpoint": "embeddings",
        "postgres": "memory",
        "prompts-volume": "prompts",
    }
    document = app_yaml(keys, {"SERVING_EMBEDDING_DIM": "1024", "SERVING_MEMORY_SCHEMA": "agent_memory"})
    assert document["command"] == list(COMMAND) == ["python", "-m", "agent_jobs.serving"]
    assert document["env"] == [
        {"name": "SERVING_LLM_ENDPOINT", "valueFrom": "llm"},
        {"name": "SERVING_EMBEDDINGS_ENDPOINT", "valueFrom": "embeddings"},
        {"name": "LAKEBASE_ENDPOINT", "valueFrom": "memory"},
        {"name": "SERVING_PROMPTS_VOLUME", "valueFrom": "prompts"},
        {"name": "SERVING_EMBEDDING_DIM", "value": "1024"},
        {"name": "SERVING_MEMORY_SCHEMA", "value": "agent_memory"},
    ]
    assert {r.role: (r.kind, r.permission) for r in RESOURCES} == {
        "llm-endpoint": ("serving_endpoint", "CAN_QUERY"), "embeddings-endpoint": ("serving_endpoint", "CAN_QUERY"),
        "postgres": ("postgres", "CAN_CONNECT_AND_CREATE"), "prompts-volume": ("uc_securable (VOLUME)", "READ_VOLUME")}  # fmt: skip


def test_app_yaml_settings_plus_the_platform_variables_load() -> None:
    """Resolving the app.yaml as Databricks Apps would (valueFrom -> the resource's value) and adding the
    platform's own variables gives settings that load: the two lists agree."""
    keys = {
        "llm-endpoint": "llm",
        "embeddings-endpoint": "embeddings",
        "postgres": "memory",
        "prompts-volume": "prompts",
    }
    resolved = {"llm": "agents-llm", "embeddings": "databricks-gte-large-en", "prompts": "/Volumes/main/agents/prompts",
                "memory": "projects/agents/branches/production/endpoints/primary"}  # fmt: skip
    env = {e["name"]: e.get("value") or resolved[e["valueFrom"]] for e in app_yaml(keys, {"SERVING_EMBEDDING_DIM": "1024"})["env"]}  # fmt: skip
    platform = {k: v for k, v in APP_ENV.items() if k not in env}
    assert load_settings({**platform, **env}) == load_settings(APP_ENV)


@pytest.mark.parametrize(
    ("keys", "values", "says"),
    [
        ({"llm-endpoint": "llm"}, {}, "SERVING_EMBEDDINGS_ENDPOINT"),
        ({"llm-endpoint": "llm", "embeddings-endpoint": "e"}, {"PGHOST": "h"}, "set by Databricks Apps"),
        ({"llm-endpoint": "llm", "embeddings-endpoint": "e"}, {"SERVING_PG_DSN": "x"}, "secret"),
        ({"llm-endpoint": "llm", "embeddings-endpoint": "e"}, {"NOT_A_SETTING": "x"}, "not a setting"),
        ({"llm-endpoint": "llm", "embeddings-endpoint": "e"}, {"SERVING_LLM_ENDPOINT": "x"}, "already comes from"),
        ({"warehouse": "w"}, {}, "unknown resource roles"),
    ],
)
def test_app_yaml_refuses_what_does_not_belong_in_it(keys: dict[str, str], values: dict[str, str], says: str) -> None:
    """No platform variable, secret, unknown name or duplicate in app.yaml; both endpoints are needed."""
    with pytest.raises(ValueError, match=says):
        app_yaml(keys, values)


def test_environment_lists_every_variable_and_marks_secrets() -> None:
    """environment() documents every variable the app reads, with where it comes from."""
    rows = {r["env"]: r for r in environment()}
    assert set(rows) == {s.env for s in SOURCES} | {"DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"}
    assert rows["DATABRICKS_CLIENT_SECRET"]["secret"] and rows["SERVING_PG_DSN"]["secret"]
    assert rows["LAKEBASE_ENDPOINT"]["origin"] == "valueFrom the postgres resource"
    assert rows["PGHOST"]["origin"] == "Databricks Apps"
