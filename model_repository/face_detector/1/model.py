"""Triton python backend: MTCNN face detector (boxes, scores, 5 landmarks). Thin wrapper over fovea."""

import json
from pathlib import Path

import torch
import triton_python_backend_utils as pb_utils

from fovea.faces.serving import DETECTOR_INPUT, DETECTOR_OUTPUTS, detect_requests, mtcnn_config
from fovea.models.mtcnn import load_mtcnn
from fovea.serving.base import RequestError, choose_device, model_parameters, torch_threads, weights_path


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args["model_config"])
        config = json.loads(args["model_config"])
        names = tuple(o["name"] for o in config["output"])
        if names != DETECTOR_OUTPUTS:
            raise ValueError(f"config.pbtxt outputs {names} differ from {DETECTOR_OUTPUTS}")
        self.device = choose_device(
            args["model_instance_kind"], args["model_instance_device_id"], params["DEVICE"]
        )
        torch.set_num_threads(
            int(params.get("THREADS", "0")) or torch_threads()
        )  # 0: FOVEA_TORCH_THREADS / all cores
        self.config = mtcnn_config(params)  # fails loudly on a bad MIN_FACE_SIZE / THRESHOLDS
        path = weights_path(Path(__file__).parent, params["WEIGHTS"])
        self.model = load_mtcnn(path, device=self.device)
        pb_utils.Logger.log_info(f"face_detector (MTCNN) loaded from {path} on {self.device}, {self.config}")

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, DETECTOR_INPUT).as_numpy() for r in requests]
        responses = []
        for result in detect_requests(self.model, images, self.config):
            if isinstance(result, RequestError):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(result))))
            else:
                tensors = [pb_utils.Tensor(name, result[name]) for name in DETECTOR_OUTPUTS]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
