"""Quiet TensorFlow's start-up logging before TensorFlow is imported.

TensorFlow's C++ runtime writes log lines straight to stderr at import time.
In a notebook those lines become a stderr output that differs between
machines, which breaks the strict comparison of stored outputs. Both variables
are needed: the first silences INFO and WARNING logs, the second the oneDNN
banner. ``setdefault`` leaves a value the user chose alone.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
