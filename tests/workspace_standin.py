"""Stand-ins for the workspace APIs `python -m infra verify` reads back, as a route of the wheel's `StandIn`
(`standin.routes.append(Workspace())`), driven by the real databricks-sdk:

- GET /api/2.2/jobs/get?job_id=: a job's settings (`jobs`, by id; Jobs API shape);
- the Files API on /api/2.0/fs/files/<path>: PUT (upload), HEAD (metadata: content-length, content-type,
  last-modified) and GET (download) over `files`, by path. Paths are decoded the way the platform decodes them:
  a literal `+` in the request path is a space, `%2B` is a `+` (form decoding; pulumi-databricks#589,
  terraform-provider-databricks#4039). databricks-sdk percent-encodes a `+`; the provider's Go client sends it
  literally, so a wheel it uploads as `x-0.1.0+gabc.whl` is stored as `x-0.1.0 gabc.whl`
  (`upload_like_the_provider`);
- GET /api/2.0/secrets/list?scope=: the keys of a scope (`scopes`: scope -> key -> value), never a value;
- GET /api/2.0/mlflow/unity-catalog/registered-models/get?name=: a model and its deployment job (`models`:
  full name -> job id, "" when unlinked), as infra.systems.health_monitor.model_link reads it.

Also a host that resets every connection (`Resetting`), and the fake clock the tools' retries and polling run
on in tests (`FakeClock`).
"""

from __future__ import annotations

import http.client
import socket
import threading
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_plus, urlparse

from infra.systems.health_monitor.model_link import GET as MODEL_GET

FILES = "/api/2.0/fs/files"
Reply = tuple[int, dict[str, Any]] | tuple[int, bytes, dict[str, str]]


def _missing(message: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message}


class Workspace:
    """The workspace state `verify` reads, and every path the Files API was asked for (decoded)."""

    def __init__(self) -> None:
        self.jobs: dict[int, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.scopes: dict[str, dict[str, str]] = {}
        self.models: dict[str, str] = {}
        self.file_requests: list[tuple[str, str]] = []  # (method, path as the platform decoded it)

    def __call__(self, method: str, path: str, body: dict[str, Any]) -> Reply | None:
        if path.startswith(FILES + "/"):
            return self._files(method, unquote_plus(path[len(FILES) :]), body)
        if method != "GET":
            return None
        if path == "/api/2.2/jobs/get":
            job_id = int(body.get("job_id", 0))
            if job_id not in self.jobs:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Job {job_id} does not exist."}
            return 200, {"job_id": job_id, "creator_user_name": "deployer@example.com", **self.jobs[job_id]}
        if path == "/api/2.0/secrets/list":
            scope = body.get("scope", "")
            if scope not in self.scopes:
                return _missing(f"Scope {scope} does not exist!")
            keys = sorted(self.scopes[scope])
            return 200, {"secrets": [{"key": k, "last_updated_timestamp": 1764547200000} for k in keys]}
        if path == MODEL_GET:
            name = body.get("name", "")
            if name not in self.models:
                return _missing(f"Registered model '{name}' does not exist.")
            return 200, {"registered_model": {"name": name, "deployment_job_id": self.models[name]}}
        return None

    def _files(self, method: str, path: str, body: dict[str, Any]) -> Reply | None:
        self.file_requests.append((method, path))
        if method == "PUT":
            if path in self.files and body.get("overwrite") != "true":
                return 409, {"error_code": "ALREADY_EXISTS", "message": f"The file {path} already exists."}
            self.files[path] = body.get("content", b"")
            return 204, b"", {}
        if method not in ("HEAD", "GET"):
            return None
        if path not in self.files:
            return _missing(f"The file {path} does not exist.")
        content = self.files[path]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(content)),
            "Last-Modified": formatdate(1764547200, usegmt=True),
        }
        return 200, (b"" if method == "HEAD" else content), headers

    def upload_like_the_provider(self, url: str, path: str, content: bytes, token: str) -> int:
        """PUT the file as the Terraform provider's Go client does: the path in the URL as it is, `+` included."""
        where = urlparse(url)
        connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
        try:
            connection.request(
                "PUT",
                f"{FILES}{path}?overwrite=true",
                body=content,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
            )
            return connection.getresponse().status
        finally:
            connection.close()


class FakeClock:
    """time() and sleep() for the SDK's retries and the polling: sleeping only moves the time on."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Resetting:
    """A host that accepts each connection and resets it at once (RST), counting them."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            connection.close()
