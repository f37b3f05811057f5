"""Triton python backend: NanoDet (COCO-80) in torch. Thin wrapper over ``fovea.models``."""

import json
from pathlib import Path

import torch
import triton_python_backend_utils as pb_utils

from fovea.models.nanodet import load_nanodet
from fovea.serving.base import (
    RequestError,
    choose_device,
    model_parameters,
    run_batched,
    torch_threads,
    weights_path,
)

OUTPUTS = ("CLS_S8", "CLS_S16", "CLS_S32", "DIST_S8", "DIST_S16", "DIST_S32")
EXPECTED = {"INPUT": (3, 416, 416)}


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args["model_config"])
        self.device = choose_device(
            args["model_instance_kind"], args["model_instance_device_id"], params["DEVICE"]
        )
        torch.set_num_threads(torch_threads())
        path = weights_path(Path(__file__).parent, params["WEIGHTS"])
        self.model = load_nanodet(path, device=self.device).eval()
        self.logger = pb_utils.Logger
        self.logger.log_info(f"nanodet loaded from {path} on {self.device}")
        config = json.loads(args["model_config"])
        names = [o["name"] for o in config["output"]]
        if tuple(names) != OUTPUTS:
            raise ValueError(f"config.pbtxt outputs {names} differ from {OUTPUTS}")

    def _forward(self, batch):
        with torch.inference_mode():
            x = torch.from_numpy(batch["INPUT"]).to(self.device)
            outs = self.model(x)
        return {name: out.float().cpu().numpy() for name, out in zip(OUTPUTS, outs, strict=True)}

    def execute(self, requests):
        arrays = [{"INPUT": pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy()} for r in requests]
        responses = []
        for result in run_batched(arrays, EXPECTED, self._forward):
            if isinstance(result, RequestError):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                tensors = [pb_utils.Tensor(name, result[name]) for name in OUTPUTS]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
