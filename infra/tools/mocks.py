"""The mock engine's computed outputs: for every resource type the program uses, a deterministic id and the
outputs the real provider computes (a volume's path, an App's URL and service principal, a Postgres branch's
name...), so that the program reads plausible values under the mocks instead of None. A type with no entry here
is an error, not a silent None: adding a resource type to the program means adding its row."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Registration:
    """What a row sees of one registration: the inputs (secrets unwrapped), its type, logical name and the host
    of its provider."""

    type: str
    name: str
    inputs: dict[str, Any]
    host: str

    def hashed(self, length: int = 32) -> str:
        return digest(self.type, self.name)[:length]

    def number(self, digits: int = 15) -> int:
        return int(digest(self.type, self.name), 16) % int(10**digits)


Row = Callable[[Registration], tuple[str, dict[str, Any]]]
"""-> (id, computed outputs added to the inputs)."""


def _full(r: Registration) -> str:
    return f"{r.inputs['catalogName']}.{r.inputs['schemaName']}.{r.inputs['name']}"


def _job(r: Registration) -> tuple[str, dict[str, Any]]:
    rid = str(r.number())
    return rid, {"url": f"{r.host}/#job/{rid}"}


def _app(r: Registration) -> tuple[str, dict[str, Any]]:
    name = r.inputs["name"]
    return name, {
        "url": f"https://{name}-1234567890123456.aws.databricksapps.com",
        "servicePrincipalClientId": str(uuid.UUID(r.hashed())),
        "servicePrincipalName": f"app-{name[:20]} {name}",
        "servicePrincipalId": int(r.hashed(12), 16) % 10**15,
        "appStatus": {"state": "RUNNING"},
        "computeStatus": {"state": "ACTIVE"},
    }


def _postgres_child(kind: str, key: str) -> Row:
    def row(r: Registration) -> tuple[str, dict[str, Any]]:
        name = f"{r.inputs['parent']}/{kind}/{r.inputs[key]}"
        return name, {"name": name}

    return row


def _generic(prefix: str) -> Row:
    return lambda r: (f"{prefix}-{r.hashed(12)}", {})


_T = "databricks:index/"
ROWS: dict[str, Row] = {
    # Unity Catalog
    f"{_T}catalog:Catalog": lambda r: (r.inputs["name"], {}),
    f"{_T}schema:Schema": lambda r: (f"{r.inputs['catalogName']}.{r.inputs['name']}", {}),
    f"{_T}volume:Volume": lambda r: (_full(r), {"volumePath": "/Volumes/" + _full(r).replace(".", "/")}),
    f"{_T}sqlTable:SqlTable": lambda r: (_full(r), {"tableId": digest(r.type, _full(r))[:32]}),
    f"{_T}grants:Grants": _generic("grants"),
    f"{_T}grant:Grant": _generic("grant"),
    f"{_T}entityTagAssignment:EntityTagAssignment": _generic("tag"),
    f"{_T}registeredModel:RegisteredModel": lambda r: (_full(r), {"fullName": _full(r)}),
    # Secrets
    f"{_T}secretScope:SecretScope": lambda r: (r.inputs["name"], {"backendType": "DATABRICKS"}),
    f"{_T}secret:Secret": lambda r: (
        f"{r.inputs['scope']}|||{r.inputs['key']}",
        {"configReference": f"{{{{secrets/{r.inputs['scope']}/{r.inputs['key']}}}}}", "lastUpdatedTimestamp": 0},
    ),
    f"{_T}secretAcl:SecretAcl": lambda r: (f"{r.inputs['scope']}|||{r.inputs['principal']}", {}),
    # Files, folders, jobs, permissions, MLflow
    f"{_T}file:File": lambda r: (r.inputs["path"], {"fileSize": len(r.inputs.get("contentBase64") or "") * 3 // 4}),
    f"{_T}workspaceFile:WorkspaceFile": lambda r: (
        r.inputs["path"],
        {
            "workspacePath": f"/Workspace{r.inputs['path']}",
            "objectId": int(r.hashed(12), 16),
            "url": f"{r.host}/#workspace{r.inputs['path']}",
        },
    ),
    f"{_T}directory:Directory": lambda r: (r.inputs["path"], {"objectId": int(r.hashed(12), 16)}),
    f"{_T}job:Job": _job,
    f"{_T}permissions:Permissions": _generic("permissions"),
    f"{_T}mlflowExperiment:MlflowExperiment": lambda r: (str(r.number(12)), {"experimentId": str(r.number(12))}),
    # Seed 001: the App, model serving, Lakebase (Autoscaling), the dashboard
    f"{_T}app:App": _app,
    f"{_T}modelServing:ModelServing": lambda r: (
        r.inputs["name"],
        {"servingEndpointId": r.hashed(), "endpointUrl": f"{r.host}/serving-endpoints/{r.inputs['name']}/invocations"},
    ),
    f"{_T}postgresProject:PostgresProject": lambda r: (
        f"projects/{r.inputs['projectId']}",
        {"name": f"projects/{r.inputs['projectId']}", "uid": r.hashed()},
    ),
    f"{_T}postgresBranch:PostgresBranch": _postgres_child("branches", "branchId"),
    f"{_T}postgresEndpoint:PostgresEndpoint": _postgres_child("endpoints", "endpointId"),
    f"{_T}postgresDatabase:PostgresDatabase": _postgres_child("databases", "databaseId"),
    f"{_T}postgresRole:PostgresRole": _postgres_child("roles", "roleId"),
    f"{_T}postgresCatalog:PostgresCatalog": lambda r: (
        f"catalogs/{r.inputs['catalogId']}",
        {"name": f"catalogs/{r.inputs['catalogId']}"},
    ),
    f"{_T}dashboard:Dashboard": lambda r: (
        r.hashed(),
        {"dashboardId": r.hashed(), "path": f"{r.inputs['parentPath']}/{r.inputs['displayName']}.lvdash.json"},
    ),
    # The program's dynamic resources (model link, app deployment): their outputs are their provider's create()
    # result, which echoes the inputs; ids as the providers make them.
    "pulumi-python:dynamic:Resource": _generic("dynamic"),
}


class UnknownResourceType(Exception):
    """The program created a resource type the mock engine has no row for."""


def computed(r: Registration) -> tuple[str, dict[str, Any]]:
    row = ROWS.get(r.type)
    if row is None:
        raise UnknownResourceType(
            f"the offline preview has no mock outputs for {r.type} ({r.name}): add its row to infra/tools/mocks.py "
            "(its id and the outputs the provider computes), so the program never reads None where the real "
            "provider gives a value"
        )
    return row(r)
