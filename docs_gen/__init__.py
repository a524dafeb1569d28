"""Generated reference pages of the docs site (``python -m docs_gen``): see docs_gen.generate."""
