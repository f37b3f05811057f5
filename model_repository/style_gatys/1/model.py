"""Triton python backend (decoupled): the Gatys optimisation, streaming progress. Thin wrapper."""

import json
from pathlib import Path

import numpy as np
import torch
import triton_python_backend_utils as pb_utils

from fovea.models.vgg16_hed import load_vgg16
from fovea.serving.base import choose_device, model_parameters, torch_threads, weights_path
from fovea.style.core.gatys import GatysParams, run_gatys
from fovea.style.core.images import array_to_tensor

EMPTY = np.zeros((0, 0, 3), dtype=np.uint8)


def _response(iteration, costs, preview=None, image=None):
    return pb_utils.InferenceResponse(
        output_tensors=[
            pb_utils.Tensor("ITERATION", np.array([iteration], dtype=np.int32)),
            pb_utils.Tensor("COSTS", np.asarray(costs, dtype=np.float32)),
            pb_utils.Tensor("PREVIEW", EMPTY if preview is None else np.ascontiguousarray(preview)),
            pb_utils.Tensor("IMAGE", EMPTY if image is None else np.ascontiguousarray(image)),
        ]
    )


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args["model_config"])
        self.device = choose_device(
            args["model_instance_kind"], args["model_instance_device_id"], params["DEVICE"]
        )
        torch.set_num_threads(torch_threads())
        path = weights_path(Path(__file__).parent, params["WEIGHTS"])
        self.vgg = load_vgg16(path, device=self.device).eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        pb_utils.Logger.log_info(f"style_gatys loaded VGG16 from {path} on {self.device}")

    def _run(self, request, sender):
        content = pb_utils.get_input_tensor_by_name(request, "CONTENT").as_numpy()
        style = pb_utils.get_input_tensor_by_name(request, "STYLE").as_numpy()
        raw = pb_utils.get_input_tensor_by_name(request, "PARAMS").as_numpy().reshape(-1)[0]
        params = GatysParams(**json.loads(raw.decode() if isinstance(raw, bytes) else raw))
        last = [0, (0.0, 0.0, 0.0)]

        def on_progress(iteration, j_content, j_style, j_total, preview):
            if request.is_cancelled():
                return False
            last[0], last[1] = iteration, (j_content, j_style, j_total)
            sender.send(_response(iteration, last[1], preview))
            return True

        image = run_gatys(
            self.vgg,
            array_to_tensor(content, self.device),
            array_to_tensor(style, self.device),
            params,
            on_progress,
        )
        if request.is_cancelled():
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            return
        sender.send(
            _response(last[0], last[1], image=image), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        )

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._run(request, sender)
            except (ValueError, KeyError, TypeError) as exc:
                sender.send(
                    pb_utils.InferenceResponse(error=pb_utils.TritonError(f"bad request: {exc}")),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                )
        return None
