"""Entry points of the agent platform's Databricks jobs: one wheel, one console script per job task."""
