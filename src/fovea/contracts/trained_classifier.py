"""Trained classifiers (``classifier_<name>``): their tensors, the ``model.py`` and ``config.pbtxt`` the classify worker writes for each version."""

from __future__ import annotations

import re

from fovea.contracts.classifier import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT, INPUT_SIZE
from fovea.contracts.tensors import Contract, TensorSpec

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")  # fullmatch: "$" would allow a final "\n"
"""A trained classifier's name (``fovea classifiers train NAME``, ``trained:NAME`` at a door)."""
MODEL_PREFIX = "classifier_"
INDEX_FILE = "fovea-classifier.json"
"""Beside ``config.pbtxt``: the versions kept and ``active``, the one served by default."""


def model_name(name: str) -> str:
    """The Triton model of trained classifier ``name``."""
    return MODEL_PREFIX + name


CONTRACT = Contract(
    name="trained_classifier",
    inputs=(TensorSpec(CLASSIFIER_INPUT, "uint8", (INPUT_SIZE, INPUT_SIZE, 3)),),
    outputs=(TensorSpec(CLASSIFIER_OUTPUT, "float32", (-1,)),),
    parameters={
        "WEIGHTS": "the ONNX file in the version folder (model.onnx, written by a training job)",
        "DEVICE": "auto | cpu | cuda | tensorrt: onnxruntime execution providers (fovea.serving.base)",
        "THREADS": "onnxruntime intra-op threads; 0 = FOVEA_TORCH_THREADS, else one per core",
    },
)

MODEL_PY = """from pathlib import Path

from fovea.serving.triton_adapter import python_model

TritonPythonModel = python_model("fovea.serving.trained_classifier", Path(__file__).parent)
"""
"""The version folder's ``model.py`` (the python backend loads ``<model>/<v>/model.py``)."""


def config_text(model_name: str, max_batch_size: int = 32) -> str:
    """The ``config.pbtxt`` of a trained classifier: every version folder kept is loaded (``all``), so any
    of them can be served by number and a rollback needs no reload."""
    return f"""# A classifier trained by Fovea (fovea.classify training job): frozen MobileNetV2 features + a new softmax
# layer, one ONNX graph per version folder; fovea.serving.trained_classifier. Written by the job: do not edit.
name: "{model_name}"
backend: "python"
max_batch_size: {max_batch_size}

input [
  {{ name: "{CLASSIFIER_INPUT}" data_type: TYPE_UINT8 dims: [ {INPUT_SIZE}, {INPUT_SIZE}, 3 ] }}
]
output [
  {{ name: "{CLASSIFIER_OUTPUT}" data_type: TYPE_FP32 dims: [ -1 ] }}  # softmax over the version's labels.txt
]

version_policy: {{ all {{ }} }}

dynamic_batching {{
  max_queue_delay_microseconds: 0
}}

instance_group [
  {{ kind: KIND_CPU, count: 1 }}
]

parameters [
  {{ key: "WEIGHTS", value: {{ string_value: "model.onnx" }} }},
  {{ key: "DEVICE", value: {{ string_value: "auto" }} }},
  {{ key: "THREADS", value: {{ string_value: "0" }} }}
]
"""
