from pathlib import Path

from fovea.serving.triton_adapter import python_decoupled_model

TritonPythonModel = python_decoupled_model("fovea.serving.style_gatys", Path(__file__).parent)
