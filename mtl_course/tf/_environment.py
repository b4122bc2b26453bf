"""Quiet TensorFlow's start-up logging before TensorFlow is imported.

TensorFlow's C++ runtime writes log lines straight to stderr at import time.
In a notebook those lines become a stderr output that differs between
machines, which breaks the strict comparison of stored outputs. Both variables
are needed: the first silences INFO and WARNING logs, the second the oneDNN
banner. ``setdefault`` leaves a value the user chose alone.

``TF_FORCE_GPU_ALLOW_GROWTH``: by default TensorFlow reserves nearly all of a
GPU's memory when it first touches it, and a PyTorch model in the same
process (a chapter's other half) then runs out of memory. With growth on, TF
takes memory as it needs it. TF reads the variable when it sets up the GPU,
so it must be set before the first TensorFlow operation.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
