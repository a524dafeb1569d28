"""Decision thresholds that generalise: pure numpy algorithms (no torch, no plotting).

``cuts`` (F1 of every cut, midpoint thresholds), ``folds`` (stratified k-fold), ``bootstrap``
(resampled intervals), ``options`` (the candidate threshold rules), ``selection`` (cross-validate
them and choose), ``reliability`` (calibration curve), ``abstain`` (single-label abstention).
``report`` and ``plots`` turn a result into JSON, Markdown and PNG files.
"""
