"""Seed 003: the RLM agent's two jobs, `rlm-orchestrator` (job A) and `rlm-executor` (job B)."""
