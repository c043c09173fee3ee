"""Exported OFA graphs at run time: the folder `ofa export onnx` writes, checked against its manifest and run in
onnxruntime behind the official search (`ofa_core.model.modeling.beam_search.SearchBackend`).

Nothing here imports the network's PyTorch code or loads a transformers model; torch serves as the search's
tensor library only. `manifest` is the folder's format, shared with the writer (`ofa_core.export`).
"""
