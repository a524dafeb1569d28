"""Multi-label posture classification of long documents: windows, aggregation, thresholds."""
