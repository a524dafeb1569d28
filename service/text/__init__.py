"""Text → model inputs: tokenization with character offsets, and overlapping token windows."""
