"""Manifests, corpus preparation and the training/inference data pipeline."""
