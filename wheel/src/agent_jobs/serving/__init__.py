"""The agent serving app of seed 001 (the online path): FastAPI with `/health`, `/api/execute`, `/a2a` and
`/mcp`, agents over Lakebase memory, serving-endpoint LLM and embeddings, prompts refreshed from a volume.

Its dependencies are the wheel's `serving` extra (`pip install agent_jobs[serving]`); the rest of the wheel
never imports this package. README.md beside this file explains how to run, call and extend it.
"""
