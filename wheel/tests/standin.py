"""A local HTTP stand-in for the Databricks endpoints the jobs and tools call, driven by the real clients
(anthropic, databricks-sdk). Every request is recorded.

- POST <prefix>/v1/messages: a serving endpoint's Anthropic Messages API (seed 000);
- GET /api/2.0/secrets/get: the Secrets API (databricks-sdk's remote dbutils.secrets.get);
- GET /.well-known/databricks-config: the workspace's metadata (databricks-sdk reads it when it starts);
- GET /api/2.0/preview/scim/v2/Me: who the caller is (tokens in `denied` are refused);
- POST /api/2.2/jobs/run-now, GET /api/2.2/jobs/runs/get: runs that honour idempotency tokens and move
  PENDING -> RUNNING -> TERMINATED over successive polls; `job_handlers[job_id](parameters)` decides a run's
  result (and may do the job's work, e.g. call the executor); `drop_run_now` answers that many run-now
  requests by closing the connection after the run was created (a lost response);
- POST /api/2.2/jobs/runs/cancel: the run ends CANCELED (recorded in `cancelled`);
- GET /api/2.1/clusters/get, POST /api/2.1/clusters/start: clusters that start over a few polls;
- POST /api/2.0/sql/statements (recorded), GET /api/2.0/sql/statements/<id>, POST .../<id>/cancel: a statement
  answers PENDING for its first `statement_polls` reads (a starting warehouse), then SUCCEEDED, or FAILED
  with `statement_error` when that is set;
- POST /serving-endpoints/<name>/invocations: a chat-completions answer (`chat_answer`), for a model that
  queries an LLM endpoint through databricks-sdk;
- GET /api/2.1/unity-catalog/volumes/<full_name>, POST /api/2.1/unity-catalog/volumes: Unity Catalog
  volumes (`volumes`, by full name);
- /api/2.0/serving-endpoints: the Serving Endpoints API (create; get, delete, PUT <name>/config and
  <name>/ai-gateway, PATCH <name>/tags) over `serving`, by name: a new config is READY on the
  `polls_to_ready`-th get (None: never; an endpoint's `update_fails`: UPDATE_FAILED instead), a non-agent
  endpoint (`agent=False`) refuses update_config with Databricks' AGENT_CONFLICT, a deleted one is still there
  for `polls_to_delete` gets; GET and PATCH /api/2.0/permissions/serving-endpoints/<id>: its permissions.
  PUT, PATCH, DELETE and HEAD go to `routes` only, GET and POST when no route above matched. A route may answer
  (status, JSON object) or (status, bytes, headers); a PUT whose Content-Type is application/octet-stream reaches
  it as {"content": the bytes}.

Faults: `fault(method, path, *faults)` queues faults for the next requests to that path (a path ending in `*`
is a prefix); each request takes one, in order. `Fault("error", 500)` answers with that status before doing
anything; `Fault("error_after", 500)` does the work (a run is created) and then answers with the error;
`Fault("drop")` does the work and closes the connection without an answer (a lost response); `Fault("reset")`
resets the connection (TCP RST) before doing anything; `Fault("delay", seconds=s)` answers late. Taken faults
are recorded in `faults_taken`.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "dapi-standin-token"
AGENT_CONFLICT = "Agent endpoint cannot be updated to serve non-agent models or vice-versa"
Reply = "tuple[int, dict[str, Any]] | tuple[int, bytes, dict[str, str]]"
Route = Callable[[str, str, dict[str, Any]], "Reply | None"]  # (method, path, body)


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error_code": code, "message": message}


@dataclass(frozen=True)
class Fault:
    """One scripted fault (see the module docstring): kind is error, error_after, drop, reset or delay."""

    kind: str
    status: int = 500
    seconds: float = 0.0
    # Not a message the SDK treats as transient ("Unexpected error", ...): a 500 like this one is not retried by
    # the SDK, so the code under test must retry it itself.
    message: str = "injected fault: internal error"

    def body(self) -> dict[str, Any]:
        code = {500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE", 429: "REQUEST_LIMIT_EXCEEDED"}
        return {"error_code": code.get(self.status, "INTERNAL_ERROR"), "message": self.message}


class StandIn:
    def __init__(self, secrets: dict[tuple[str, str], str] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.secrets = secrets or {}
        self.status = 200
        self.answer = "## Summary\nThe runs look healthy.\n## Findings\n- relevance is stable"
        self.denied: set[str] = set()
        self.runs: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, int] = {}
        self.job_handlers: dict[int, Callable[[dict[str, str]], str]] = {}
        self.drop_run_now = 0
        self.clusters: dict[str, dict[str, Any]] = {}
        self.polls_to_finish = 2
        self.statements: list[dict[str, Any]] = []
        self.chat_answer = "All monitored jobs succeeded in the last 24 hours; DBU spend is within budget."
        self.volumes: dict[str, dict[str, Any]] = {}
        self.serving: dict[str, dict[str, Any]] = {}
        self.polls_to_ready: int | None = 2
        self.polls_to_delete = 1
        self.routes: list[Route] = [self._serving]
        self.cancelled: list[int] = []
        self.statement_polls = 0
        self.statement_error: str | None = None
        self.statement_state: dict[str, dict[str, Any]] = {}
        self.faults: dict[tuple[str, str], list[Fault]] = {}
        self.faults_taken: list[tuple[str, str, Fault]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: shutdown() waits up to one interval, and every test stops a stand-in.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, path_end: str = "/v1/messages") -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith(path_end)]

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def fault(self, method: str, path: str, *faults: Fault) -> None:
        """Queue `faults` for the next `method` requests to `path` (a trailing `*` matches a prefix)."""
        with self._lock:
            self.faults.setdefault((method, path), []).extend(faults)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for (m, p), queue in self.faults.items():
                matches = path.startswith(p[:-1]) if p.endswith("*") else path == p
                if m == method and matches and queue:
                    fault = queue.pop(0)
                    self.faults_taken.append((method, path, fault))
                    return fault
        return None

    # --- the API, one method per route (called under the lock)

    def _run_now(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
        token = body.get("idempotency_token")
        job_id = int(body["job_id"])
        parameters = dict(body.get("job_parameters") or {})
        with self._lock:
            if token and token in self.tokens:
                return 200, {"run_id": self.tokens[token]}, False
            run_id = 1000 + len(self.runs)
            self.runs[run_id] = {"job_id": job_id, "parameters": parameters, "token": token, "polls": 0}
            if token:
                self.tokens[token] = run_id
            drop = self.drop_run_now > 0
            self.drop_run_now -= 1 if drop else 0
        # The job's work runs outside the lock: it may call back into the stand-in (secrets, SQL).
        handler = self.job_handlers.get(job_id, lambda _: "SUCCESS")
        self.runs[run_id]["result_state"] = handler(parameters)
        return 200, {"run_id": run_id, "number_in_job": run_id}, drop

    def _get_run(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        run_id = int(query["run_id"])
        run = self.runs.get(run_id)
        if run is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"run {run_id} does not exist"}
        polls = run["polls"]
        run["polls"] += 1
        state: dict[str, Any] = {"life_cycle_state": "PENDING" if polls == 0 else "RUNNING"}
        if run.get("cancelled"):
            state = {"life_cycle_state": "TERMINATED", "result_state": "CANCELED", "state_message": "cancelled"}
        elif polls >= self.polls_to_finish:
            state = {"life_cycle_state": "TERMINATED", "result_state": run["result_state"],
                     "state_message": "" if run["result_state"] == "SUCCESS" else "task failed"}  # fmt: skip
        return 200, {"run_id": run_id, "job_id": run["job_id"], "state": state,
                     "run_page_url": f"{self.url}/#job/{run['job_id']}/run/{run_id}"}  # fmt: skip

    def _cancel_run(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        run = self.runs.get(int(body.get("run_id", 0)))
        if run is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Run {body.get('run_id')} does not exist.")
        run["cancelled"] = True
        self.cancelled.append(int(body["run_id"]))
        return 200, {}

    def _statement(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A new statement: PENDING while `statement_polls` reads remain (wait_timeout passed), then its end."""
        with self._lock:
            self.statements.append(body)
            statement_id = f"s{len(self.statements)}"
            self.statement_state[statement_id] = {"polls_left": self.statement_polls, "cancelled": False}
        return 200, self._statement_view(statement_id, read=False)

    def _statement_view(self, statement_id: str, read: bool = True) -> dict[str, Any]:
        record = self.statement_state[statement_id]
        if record["cancelled"]:
            return {"statement_id": statement_id, "status": {"state": "CANCELED"}}
        if record["polls_left"] > 0:
            record["polls_left"] -= 1 if read else 0
            return {"statement_id": statement_id, "status": {"state": "PENDING"}}
        if self.statement_error:
            status = {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": self.statement_error}}
            return {"statement_id": statement_id, "status": status}
        return {"statement_id": statement_id, "status": {"state": "SUCCEEDED"}}

    def _statements(self, method: str, path: str) -> tuple[int, dict[str, Any]] | None:
        """GET /api/2.0/sql/statements/<id> and POST .../<id>/cancel."""
        root = "/api/2.0/sql/statements/"
        if not path.startswith(root):
            return None
        statement_id, _, sub = path[len(root) :].partition("/")
        if statement_id not in self.statement_state:
            return _error(404, "NOT_FOUND", f"statement {statement_id} not found")
        if method == "POST" and sub == "cancel":
            self.statement_state[statement_id]["cancelled"] = True
            return 200, {}
        if method == "GET" and not sub:
            return 200, self._statement_view(statement_id)
        return None

    def _cluster(self, cluster_id: str, start: bool = False) -> tuple[int, dict[str, Any]]:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Cluster {cluster_id} does not exist"}
        if start:
            cluster.update(state="PENDING", polls=0, starts=cluster.get("starts", 0) + 1)
            return 200, {}
        if cluster["state"] == "PENDING":
            cluster["polls"] += 1
            if cluster["polls"] > cluster.get("polls_to_start", 2):
                cluster["state"] = "RUNNING"
        return 200, {"cluster_id": cluster_id, "state": cluster["state"], "cluster_name": cluster_id}

    # --- the Serving Endpoints API (routes in `routes`: each answers None for paths that are not its own)

    def add_serving_endpoint(self, name: str, entity: str = "main.agents.old_model", **knobs: Any) -> dict[str, Any]:
        """An endpoint that is READY before the test runs; knobs: agent, polls_to_ready, update_fails."""
        served = {"entity_name": entity, "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": True}
        with self._lock:
            endpoint = self._new_endpoint(name, {"served_entities": [served]}, None, [])
            endpoint.update(ready="READY", config_update="NOT_UPDATING", config=endpoint["pending"], **knobs)
            endpoint["pending"] = None
        return endpoint

    def _new_endpoint(self, name: str, config: dict[str, Any], gateway: Any, tags: list[Any]) -> dict[str, Any]:
        creator = "job-identity@example.com"
        self.serving[name] = {
            "name": name, "id": uuid.uuid4().hex, "creator": creator, "config": None, "pending": config,
            "ai_gateway": gateway, "tags": tags, "ready": "NOT_READY", "config_update": "IN_PROGRESS", "polls": 0,
            "polls_to_ready": self.polls_to_ready, "update_fails": False, "agent": True, "deleting": None,
            "acl": [{"user_name": creator, "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": False}]}],
        }  # fmt: skip
        return self.serving[name]

    def _endpoint_view(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        view = {key: endpoint[key] for key in ("name", "id", "creator", "tags")}
        view["state"] = {"ready": endpoint["ready"], "config_update": endpoint["config_update"]}
        view["permission_level"] = "CAN_MANAGE"
        for key, out in (("config", "config"), ("pending", "pending_config"), ("ai_gateway", "ai_gateway")):
            if endpoint[key] is not None:
                view[out] = endpoint[key]
        return view

    def _poll_endpoint(self, endpoint: dict[str, Any]) -> None:
        """A get moves an update on: READY (or UPDATE_FAILED) on the `polls_to_ready`-th get; None: never."""
        if endpoint["config_update"] != "IN_PROGRESS":
            return
        endpoint["polls"] += 1
        if endpoint["polls_to_ready"] is None or endpoint["polls"] < endpoint["polls_to_ready"]:
            return
        if endpoint["update_fails"]:
            endpoint.update(config_update="UPDATE_FAILED", pending=None)
        else:
            endpoint.update(ready="READY", config_update="NOT_UPDATING", config=endpoint["pending"], pending=None)

    def _served_entities_error(self, config: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        entities = config.get("served_entities") or []
        for entity in entities:
            if not entity.get("entity_name") or not entity.get("entity_version"):
                return _error(400, "INVALID_PARAMETER_VALUE", "entity_name and entity_version are required")
            if entity.get("workload_size") not in ("Small", "Medium", "Large"):
                size = entity.get("workload_size")
                return _error(400, "INVALID_PARAMETER_VALUE", f"Invalid workload size '{size}': Small, Medium or Large")
        return None if entities else _error(400, "INVALID_PARAMETER_VALUE", "no served entities")

    def _lookup_endpoint(self, name: str, poll: bool) -> dict[str, Any] | None:
        """A deleted endpoint is still there for `polls_to_delete` gets, then gone."""
        endpoint = self.serving.get(name)
        if endpoint is not None and endpoint["deleting"] is not None:
            if endpoint["deleting"] <= 0:
                del self.serving[name]
                return None
            endpoint["deleting"] -= 1 if poll else 0
        return endpoint

    def _serving(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        root, acl_root = "/api/2.0/serving-endpoints", "/api/2.0/permissions/serving-endpoints/"
        with self._lock:
            if path.startswith(acl_root) and method in ("GET", "PATCH"):
                return self._endpoint_permissions(path[len(acl_root) :], body if method == "PATCH" else {})
            if path == root and method == "POST":
                name = body["name"]
                if self._lookup_endpoint(name, poll=False) is not None:
                    return _error(400, "RESOURCE_ALREADY_EXISTS", f"Endpoint with name '{name}' already exists.")
                error = self._served_entities_error(body.get("config") or {})
                if error is not None:
                    return error
                endpoint = self._new_endpoint(name, body["config"], body.get("ai_gateway"), body.get("tags", []))
                return 200, self._endpoint_view(endpoint)
            if not path.startswith(root + "/"):
                return None  # not this API's path
            name, _, sub = path[len(root) + 1 :].partition("/")
            routes = (("GET", ""), ("DELETE", ""), ("PUT", "config"), ("PUT", "ai-gateway"), ("PATCH", "tags"))
            if (method, sub) not in routes:
                return None
            endpoint = self._lookup_endpoint(name, poll=method == "GET")
            if endpoint is None:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
            if method == "GET":
                self._poll_endpoint(endpoint)
            elif method == "DELETE":
                endpoint["deleting"] = self.polls_to_delete
                return 200, {}
            elif sub == "config":
                if not endpoint["agent"]:
                    return _error(400, "INVALID_PARAMETER_VALUE", AGENT_CONFLICT)
                error = self._served_entities_error(body)
                if error is not None:
                    return error
                endpoint.update(pending=body, config_update="IN_PROGRESS", polls=0)
            elif sub == "ai-gateway":
                endpoint["ai_gateway"] = body
                return 200, body
            else:
                kept = [t for t in endpoint["tags"] if t["key"] not in {a["key"] for a in body.get("add_tags", [])}]
                endpoint["tags"] = [*kept, *body.get("add_tags", [])]
                return 200, {"tags": endpoint["tags"]}
            return 200, self._endpoint_view(endpoint)

    def _endpoint_permissions(self, endpoint_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """PATCH adds to the access control list (or changes a principal's level); GET reads it."""
        endpoint = next((e for e in self.serving.values() if e["id"] == endpoint_id), None)
        if endpoint is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Serving endpoint {endpoint_id} does not exist.")
        for entry in body.get("access_control_list", []):
            level = entry.get("permission_level")
            principal = {k: v for k, v in entry.items() if k in ("user_name", "group_name", "service_principal_name")}
            if level not in ("CAN_VIEW", "CAN_QUERY", "CAN_MANAGE") or len(principal) != 1:
                return _error(400, "INVALID_PARAMETER_VALUE", f"Invalid access control entry {entry}")
            endpoint["acl"] = [e for e in endpoint["acl"] if not principal.items() <= e.items()]
            endpoint["acl"].append({**principal, "all_permissions": [{"permission_level": level, "inherited": False}]})
        return 200, {"object_id": f"/serving-endpoints/{endpoint_id}", "object_type": "serving-endpoint",
                     "access_control_list": endpoint["acl"]}  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            fault: Fault | None = None

            def log_message(self, *args: Any) -> None:
                pass

            def _faulted(self, method: str, path: str) -> bool:
                """Take this request's scripted fault; True when it was answered (or cut) by the fault itself."""
                self.fault = standin._take_fault(method, path)
                if self.fault is None:
                    return False
                if self.fault.kind == "delay":
                    time.sleep(self.fault.seconds)
                elif self.fault.kind == "error":
                    self._send(self.fault.status, self.fault.body())
                    return True
                elif self.fault.kind == "reset":
                    # SO_LINGER 0 then close: the peer sees a connection reset (RST), not an orderly end.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return True
                return False

            def _reply(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
                """The answer, unless this request's fault replaces it (error_after) or loses it (drop)."""
                if self.fault is not None and self.fault.kind == "drop":
                    self.close_connection = True
                    return
                if self.fault is not None and self.fault.kind == "error_after":
                    status, body, headers = self.fault.status, self.fault.body(), None
                self._send(status, body, headers)

            def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _denied(self) -> bool:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if token in standin.denied:
                    self._reply(403, {"error_code": "PERMISSION_DENIED", "message": "token not allowed here"})
                    return True
                return False

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                standin.requests.append(
                    {"method": "GET", "path": url.path, "query": query, "headers": dict(self.headers)}
                )
                if self._faulted("GET", url.path):
                    return
                if url.path == "/api/2.0/secrets/get":
                    value = standin.secrets.get((query.get("scope", ""), query.get("key", "")))
                    if value is None:
                        self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such secret"})
                    else:
                        self._reply(200, {"key": query["key"], "value": base64.b64encode(value.encode()).decode()})
                elif url.path == "/.well-known/databricks-config":  # the SDK reads it when it starts
                    self._reply(200, {"workspace_id": "1234567890123456"})
                elif self._denied():
                    return
                elif url.path == "/api/2.0/preview/scim/v2/Me":
                    self._reply(200, {"userName": "job-identity@example.com"})
                elif url.path == "/api/2.2/jobs/runs/get":
                    self._reply(*standin._get_run(query))
                elif url.path == "/api/2.1/clusters/get":
                    self._reply(*standin._cluster(query["cluster_id"]))
                elif (reply := standin._statements("GET", url.path)) is not None:
                    self._reply(*reply)
                elif url.path.startswith("/api/2.1/unity-catalog/volumes/"):
                    name = url.path.rsplit("/", 1)[1]
                    if name not in standin.volumes:
                        self._reply(404, {"error_code": "NOT_FOUND", "message": f"Volume '{name}' does not exist."})
                    else:
                        self._reply(200, standin.volumes[name])
                elif self._routed("GET", url.path, query):
                    return
                else:
                    self._reply(404, {"error_code": "NOT_FOUND", "message": url.path})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self._faulted("POST", self.path):
                    return
                if self.path.endswith("/v1/messages"):
                    self._messages(body)
                elif self.path.startswith("/serving-endpoints/") and self.path.endswith("/invocations"):
                    self._invocations(body)
                elif self._denied():
                    return
                elif self.path == "/api/2.2/jobs/run-now":
                    status, reply, drop = standin._run_now(body)
                    if drop:  # the run exists, but its id never reaches the caller
                        self.close_connection = True
                        return
                    self._reply(status, reply)
                elif self.path == "/api/2.2/jobs/runs/cancel":
                    self._reply(*standin._cancel_run(body))
                elif self.path == "/api/2.1/clusters/start":
                    self._reply(*standin._cluster(body["cluster_id"], start=True))
                elif self.path == "/api/2.0/sql/statements":
                    self._reply(*standin._statement(body))
                elif (reply := standin._statements("POST", self.path)) is not None:
                    self._reply(*reply)
                elif self.path == "/api/2.1/unity-catalog/volumes":
                    full_name = f"{body['catalog_name']}.{body['schema_name']}.{body['name']}"
                    if full_name in standin.volumes:
                        self._reply(409, {"error_code": "ALREADY_EXISTS", "message": f"{full_name} already exists"})
                    else:
                        standin.volumes[full_name] = {**body, "full_name": full_name}
                        self._reply(200, standin.volumes[full_name])
                elif self._routed("POST", self.path, body):
                    return
                else:
                    self._reply(404, {"message": self.path})

            def _routed(self, method: str, path: str, body: dict[str, Any]) -> bool:
                """Answer from `standin.routes` (each returns None for paths that are not its own)."""
                for route in standin.routes:
                    reply = route(method, path, body)
                    if reply is not None:
                        self._reply(*reply)
                        return True
                return False

            def _dispatch(self, method: str) -> None:
                """PUT, PATCH, DELETE and HEAD: recorded, then answered by `standin.routes` only."""
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if method == "HEAD":
                    body = query
                elif self.headers.get("Content-Type") == "application/octet-stream":
                    body = {**query, "content": raw}
                else:
                    body = json.loads(raw or b"{}")
                record = {"method": method, "path": url.path, "headers": dict(self.headers), "body": body}
                standin.requests.append(record)
                if self._faulted(method, url.path):
                    return
                if not self._denied() and not self._routed(method, url.path, body):
                    self._reply(404, {"error_code": "NOT_FOUND", "message": url.path})

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

            def do_HEAD(self) -> None:
                self._dispatch("HEAD")

            def _messages(self, body: dict[str, Any]) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(
                        401, {"type": "error", "error": {"type": "authentication_error", "message": "bad token"}}
                    )
                elif standin.status != 200:
                    self._reply(standin.status, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
                else:
                    self._reply(200, {
                        "id": "msg_standin", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "text", "text": standin.answer}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 321, "output_tokens": 42},
                    })  # fmt: skip

            def _invocations(self, body: dict[str, Any]) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(401, {"error_code": "UNAUTHENTICATED", "message": "bad token"})
                else:
                    self._reply(200, {
                        "id": "chatcmpl-standin", "object": "chat.completion", "model": "standin",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": standin.chat_answer}}],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
                    })  # fmt: skip

        return Handler
