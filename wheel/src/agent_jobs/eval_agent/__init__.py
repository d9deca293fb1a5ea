"""Seed 000: the MLflow evaluation agent (`mlflow-eval`)."""
