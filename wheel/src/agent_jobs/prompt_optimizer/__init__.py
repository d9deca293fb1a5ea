"""Seed 001's offline prompt optimisation (`prompt-optimizer`): DSPy against the agents' serving endpoint,
trained on a Delta table, promoted to the prompts volume only when it beats the current prompt on a holdout.
Needs the wheel's `optimizer` extra (dspy, mlflow-skinny). Documented with the rest of seed 001's offline
path in ../telemetry_otel/README.md."""
