"""Training, augmentation and ONNX export (the optional `train` extra; needs torch)."""
