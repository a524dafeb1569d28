"""BERT-CRF export: checkpoint loading, ONNX conversion of the emission model, parity gate."""
