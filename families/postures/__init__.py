"""Posture bundles (Longformer, multi-label, long legal documents), served by the classify
runtime."""
