"""What screening services load: the MLflow pyfunc, packaging, registry, ONNX."""
