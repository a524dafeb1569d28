"""Speed scripts (not tests): ``python -m bench`` compares the service with PyTorch, optimum and
raw ONNX Runtime in one run; ``bench/longformer_speed.py`` times the Longformer graph alone."""
