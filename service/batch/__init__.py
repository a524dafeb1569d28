"""``python -m service.batch``: score a JSON-lines corpus with a bundle, resumably (README)."""
