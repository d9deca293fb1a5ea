"""Seed 002: the health monitor agent's setup and evaluation-gated deployment jobs (`health-monitor`)."""
