"""Sequence classification (multi-label postures, single-label intents): windows, aggregation,
thresholds or abstention."""
