"""Triton python backend: the 26-style feed-forward network (onnxruntime). Thin wrapper over fovea.models."""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from fovea.models.multistyle import NUM_STYLES, MultiStyleRunner
from fovea.serving.base import model_parameters, torch_threads, weights_path


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args["model_config"])
        path = weights_path(Path(__file__).parent, params["WEIGHTS"])
        self.runner = MultiStyleRunner(path, threads=torch_threads())
        pb_utils.Logger.log_info(f"style_fast loaded from {path}")

    def _one(self, request):
        image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
        index = pb_utils.get_input_tensor_by_name(request, "STYLE_INDEX").as_numpy().reshape(-1)
        if image.shape[0] != index.shape[0]:
            raise ValueError(f"{image.shape[0]} images but {index.shape[0]} style indices")
        if np.any(index < 0) or np.any(index >= NUM_STYLES):
            raise ValueError(f"STYLE_INDEX must be within [0, {NUM_STYLES - 1}], got {index.tolist()}")
        out = np.empty_like(image)
        for i in range(image.shape[0]):
            x = image[i].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            y = self.runner.stylize(x, int(index[i]))[0]
            out[i] = np.clip(y.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("IMAGE", out)])

    def execute(self, requests):
        responses = []
        for request in requests:  # a bad request gets its own error; the others still run
            try:
                responses.append(self._one(request))
            except ValueError as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
        return responses
