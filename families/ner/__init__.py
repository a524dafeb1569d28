"""Named-entity recognition: BIO tag scheme, CRF decoding and span assembly (pure numpy)."""
