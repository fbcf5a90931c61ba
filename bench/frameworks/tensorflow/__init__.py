"""The tensorflow framework: `adapter.py` is the device contract (selection, barrier, memory,
math mode) and the short workloads; `ops.py` holds qmatmul and the training workloads;
`generate.py` the LLM decode. The catalog names `tensorflow.adapter:TensorFlowAdapter`; nothing imports
this package by name."""
