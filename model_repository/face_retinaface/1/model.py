from pathlib import Path

from fovea.serving.triton_adapter import python_model

TritonPythonModel = python_model("fovea.serving.face_retinaface", Path(__file__).parent)
