"""Packaging a model folder, registering it in MLflow with its tags."""
