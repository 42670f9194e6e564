"""Speech audio to Microsoft SAPI viseme IDs (0-21): data, training, ONNX runtime."""
