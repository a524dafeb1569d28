"""Model families: one package per family, everything specific to it.

Each ``families/<name>/`` has a serving half (``spec.py``, ``runtime.py``, ``results.py``,
``serving.py`` and its pure numpy algorithms; never torch) imported by the service, and an export
half (``export.py`` and its helpers; may import torch) imported only by ``export``. The service
registers the serving halves in ``service/families.py``; see docs/adding-a-family.md.
"""
