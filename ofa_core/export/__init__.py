"""Writing a model in other formats: ONNX graphs for onnxruntime and other runtimes (`ofa export onnx`)."""
