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
- GET /api/2.1/clusters/get, POST /api/2.1/clusters/start: clusters that start over a few polls;
- POST /api/2.0/sql/statements: SQL statements (recorded, always SUCCEEDED).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "dapi-standin-token"


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
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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
        if polls >= self.polls_to_finish:
            state = {"life_cycle_state": "TERMINATED", "result_state": run["result_state"],
                     "state_message": "" if run["result_state"] == "SUCCESS" else "task failed"}  # fmt: skip
        return 200, {"run_id": run_id, "job_id": run["job_id"], "state": state,
                     "run_page_url": f"{self.url}/#job/{run['job_id']}/run/{run_id}"}  # fmt: skip

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
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
                else:
                    self._reply(404, {"error_code": "NOT_FOUND", "message": url.path})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if self.path.endswith("/v1/messages"):
                    self._messages(body)
                elif self._denied():
                    return
                elif self.path == "/api/2.2/jobs/run-now":
                    status, reply, drop = standin._run_now(body)
                    if drop:  # the run exists, but its id never reaches the caller
                        self.close_connection = True
                        return
                    self._reply(status, reply)
                elif self.path == "/api/2.1/clusters/start":
                    self._reply(*standin._cluster(body["cluster_id"], start=True))
                elif self.path == "/api/2.0/sql/statements":
                    standin.statements.append(body)
                    self._reply(200, {"statement_id": f"s{len(standin.statements)}", "status": {"state": "SUCCEEDED"}})
                else:
                    self._reply(404, {"message": self.path})

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

        return Handler
