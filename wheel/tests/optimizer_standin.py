"""A local stand-in of what `prompt-optimizer` calls, driven by the real clients (DSPy/litellm's OpenAI client,
databricks-sdk):

- POST /serving-endpoints/chat/completions: an OpenAI-compatible LM with deterministic answers. For DSPy's
  instruction proposals (COPRO) it answers `proposals` (one per requested choice); for the agent task it
  answers by the instructions it was given: instructions that state the rule ("over 1000") answer
  FRAUD for amounts over 1000 and OK otherwise (always right); "always FRAUD" answers FRAUD; anything else
  answers OK. Tokens not in `tokens` get 401;
- POST /api/2.0/sql/statements, GET .../<id> and .../<id>/result/chunks/<n>: the Statement Execution API over
  `tables` (full name -> {"version", "columns", "rows"}): DESCRIBE HISTORY (fails without a version, like a
  non-Delta table) and SELECT * [VERSION AS OF n] LIMIT m; `pending_polls` answers PENDING that many times
  first; results come in chunks of `chunk_rows`;
- GET /.well-known/databricks-config: what databricks-sdk reads when it starts.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RULE = "Flag a transaction as FRAUD when its amount is over 1000, otherwise answer OK."
ALWAYS = "Answer always FRAUD, whatever the transaction."
NAIVE = "Decide whether the transaction is fraudulent. Answer FRAUD or OK."

_HISTORY = re.compile(r"^DESCRIBE HISTORY `(\w+)`\.`(\w+)`\.`(\w+)` LIMIT 1$")
_SELECT = re.compile(r"^SELECT \* FROM `(\w+)`\.`(\w+)`\.`(\w+)`(?: VERSION AS OF (\d+))? LIMIT (\d+)$")


def answer(instructions: str, data: str) -> str:
    """The deterministic 'model': how well it answers depends only on the instructions."""
    try:
        amount = float(json.loads(data).get("amount", 0))
    except (ValueError, AttributeError):
        amount = 0.0
    if "over 1000" in instructions:
        return "FRAUD" if amount > 1000 else "OK"
    if "always FRAUD" in instructions:
        return "FRAUD"
    return "OK"


class OptimizerStandIn:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens = {"dapi-optimizer-token"}
            self.proposals = [RULE]
            self.chat: list[dict[str, Any]] = []  # {"model", "authorization", "kind"}
            self.tables: dict[str, dict[str, Any]] = {}
            self.statements: list[str] = []
            self.pending_polls = 0
            self.chunk_rows = 1000
            self._results: dict[str, dict[str, Any]] = {}
            self.llm_down = False

    def __enter__(self) -> OptimizerStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_table(self, name: str, version: int | None, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables[name] = {"version": version, "columns": columns, "rows": rows}

    # --- Statement Execution

    def _statement(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        statement = body["statement"]
        with self.lock:
            self.statements.append(statement)
            statement_id = f"st-{len(self.statements)}"
        columns, rows, error = self._execute(statement)
        if error:
            return 200, {"statement_id": statement_id, "status": {"state": "FAILED", "error": {"message": error}}}
        chunks = [rows[i : i + self.chunk_rows] for i in range(0, len(rows), self.chunk_rows)] or [[]]
        done = {
            "statement_id": statement_id, "status": {"state": "SUCCEEDED"},
            "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": len(columns),
                         "columns": [{"name": c, "position": i, "type_name": "STRING"} for i, c in enumerate(columns)]},
                         "total_chunk_count": len(chunks), "total_row_count": len(rows)},
            "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(chunks[0]), "data_array": chunks[0]},
        }  # fmt: skip
        with self.lock:
            self._results[statement_id] = {"done": done, "chunks": chunks, "polls": max(self.pending_polls - 1, 0)}
        if self.pending_polls:
            return 200, {"statement_id": statement_id, "status": {"state": "PENDING"}}
        return 200, done

    def _execute(self, statement: str) -> tuple[list[str], list[list[Any]], str | None]:
        if m := _HISTORY.match(statement):
            table = self.tables.get(".".join(m.groups()))
            if table is None or table["version"] is None:
                return [], [], "[DELTA_MISSING_DELTA_TABLE] not a Delta table"
            return (
                ["version", "timestamp", "operation"],
                [[str(table["version"]), "2026-12-01T00:00:00Z", "WRITE"]],
                None,
            )
        if m := _SELECT.match(statement):
            table = self.tables.get(".".join(m.groups()[:3]))
            if table is None:
                return (
                    [],
                    [],
                    f"[TABLE_OR_VIEW_NOT_FOUND] The table or view {'.'.join(m.groups()[:3])} cannot be found.",
                )
            if m[4] is not None and int(m[4]) != table["version"]:
                return [], [], f"[DELTA_VERSION_NOT_FOUND] version {m[4]}"
            rows = [[None if v is None else str(v) for v in row] for row in table["rows"]]
            return table["columns"], rows[: int(m[5])], None
        return [], [], f"[PARSE_SYNTAX_ERROR] the stand-in does not know: {statement}"

    def _poll(self, statement_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            entry = self._results[statement_id]
            if entry["polls"] > 0:
                entry["polls"] -= 1
                return 200, {"statement_id": statement_id, "status": {"state": "RUNNING"}}
        return 200, entry["done"]

    def _chunk(self, statement_id: str, index: int) -> tuple[int, dict[str, Any]]:
        chunk = self._results[statement_id]["chunks"][index]
        return 200, {"chunk_index": index, "row_count": len(chunk), "data_array": chunk}

    # --- the LM

    def _chat(self, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        kind = "propose" if "proposed_instruction" in system else "task" if "[[ ## data ## ]]" in user else "other"
        with self.lock:
            self.chat.append({"model": body.get("model"), "authorization": token, "kind": kind})
            allowed, down, proposals = token in self.tokens, self.llm_down, list(self.proposals)
        if down:
            return 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "endpoint is scaling"}
        if not allowed:
            return 401, {"error": {"message": "Invalid access token", "type": "invalid_request_error"}}
        n = int(body.get("n") or 1)
        if kind == "propose":
            texts = [
                f"[[ ## proposed_instruction ## ]]\n{proposals[i % len(proposals)]}\n\n"
                "[[ ## proposed_prefix_for_output_field ## ]]\nAnswer:\n\n[[ ## completed ## ]]"
                for i in range(n)
            ]
        elif kind == "task":
            instructions = system.split("your objective is:", 1)[-1]
            data = user.split("[[ ## data ## ]]", 1)[1].split("\n\nRespond with", 1)[0].strip()
            texts = [f"[[ ## answer ## ]]\n{answer(instructions, data)}\n\n[[ ## completed ## ]]"] * n
        else:
            texts = ["OK"] * n
        return 200, {
            "id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": t}}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }  # fmt: skip

    def task_calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.chat if c["kind"] == "task"]

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

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/.well-known/databricks-config":
                    self._reply(200, {"workspace_id": "1234567890123456"})
                elif m := re.fullmatch(r"/api/2\.0/sql/statements/([\w-]+)/result/chunks/(\d+)", path):
                    self._reply(*standin._chunk(m[1], int(m[2])))
                elif m := re.fullmatch(r"/api/2\.0/sql/statements/([\w-]+)", path):
                    self._reply(*standin._poll(m[1]))
                else:
                    self._reply(404, {"error_code": "NOT_FOUND", "message": path})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/serving-endpoints/chat/completions":
                    self._reply(*standin._chat(self.headers, body))
                elif self.path == "/api/2.0/sql/statements":
                    self._reply(*standin._statement(body))
                elif re.fullmatch(r"/api/2\.0/sql/statements/[\w-]+/cancel", self.path):
                    self._reply(200, {})
                else:
                    self._reply(404, {"error_code": "NOT_FOUND", "message": self.path})

        return Handler
