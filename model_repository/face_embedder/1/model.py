"""Triton python backend: dlib's ResNet face descriptor (150x150 chip -> 128-D). Thin wrapper over fovea."""

from pathlib import Path

import torch
import triton_python_backend_utils as pb_utils

from fovea.faces.serving import EMBEDDER_INPUT, EMBEDDER_OUTPUT, EmbedderInfo, embed_batch, embedder_expected
from fovea.models.dlib_resnet import load_dlib_resnet
from fovea.serving.base import (
    RequestError,
    choose_device,
    model_parameters,
    run_batched,
    torch_threads,
    weights_path,
)


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args["model_config"])
        self.info = EmbedderInfo.from_parameters(params)  # fails loudly without version / threshold
        self.device = choose_device(
            args["model_instance_kind"], args["model_instance_device_id"], params["DEVICE"]
        )
        torch.set_num_threads(
            int(params.get("THREADS", "0")) or torch_threads()
        )  # 0: FOVEA_TORCH_THREADS / all cores
        path = weights_path(Path(__file__).parent, params["WEIGHTS"])
        self.model = load_dlib_resnet(path, device=self.device)
        self.expected = embedder_expected(self.model)
        pb_utils.Logger.log_info(f"face_embedder ({self.info.version}) loaded from {path} on {self.device}")

    def execute(self, requests):
        arrays = [
            {EMBEDDER_INPUT: pb_utils.get_input_tensor_by_name(r, EMBEDDER_INPUT).as_numpy()}
            for r in requests
        ]
        responses = []
        for result in run_batched(arrays, self.expected, lambda batch: embed_batch(self.model, batch)):
            if isinstance(result, RequestError):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                tensor = pb_utils.Tensor(EMBEDDER_OUTPUT, result[EMBEDDER_OUTPUT])
                responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses
