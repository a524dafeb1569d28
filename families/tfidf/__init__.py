"""TF-IDF linear text classifiers exported from scikit-learn pipelines.

Serving half (``spec``, ``vectorizer``, ``linear``, ``runtime``): numpy only, no scikit-learn.
Export half (``export``, ``convert``, ``parity``): reads the fitted pipeline with scikit-learn.
"""
