"""Where the platform's fixed cost per request goes, layer by layer, for one detector (default: an imported
ONNX detector): each layer adds one hop to the one before, all timed in the same run, interleaved request by
request so that the machine's drift hits every layer alike.

- ``in-process``: the user's own script (onnxruntime on the same ONNX file, the service's pre/post code);
- ``model only, in-process`` / ``model only, Triton``: the network alone on a prepared tensor, in this
  process vs through Triton (gRPC + shared memory + the python backend's stub);
- ``pipeline calling Triton``: the detection service's request path (decode and letterbox in a thread, Triton,
  head + NMS in a thread) run in this process, without its gRPC server;
- ``service``: the detection service called directly over gRPC (with the internal token);
- ``gateway``: the whole platform as a client sees it.

    .venv/bin/python bench/layers.py [--requests 60] [--model imported|yolox|nanodet]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))

from _stack import private_stack  # noqa: E402
from _yolox_nano import export  # noqa: E402
from detection import (  # noqa: E402
    IMAGES,
    OPTIONS,
    SAME,
    InProcess,
    export_float_nanodet,
    import_detector,
    settings_environment,
)
from yolox_user import import_yolox  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.common.interceptors import INTERNAL_TOKEN_HEADER  # noqa: E402
from fovea.common.paths import project_root  # noqa: E402
from fovea.common.triton import TritonClient  # noqa: E402
from fovea.common.v1 import common_pb2  # noqa: E402
from fovea.convert.samples import sample
from fovea.detection.pipeline import decode, finish, prepare  # noqa: E402
from fovea.detection.v1 import detection_pb2, detection_pb2_grpc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--model", choices=("imported", "yolox", "nanodet", "faces"), default="imported")
    parser.add_argument("--only", default="", help="comma-separated layer labels (substrings) to run")
    parser.add_argument(
        "--phone", action="store_true", help="faces: the probes as 12 MP phone photos (samples.phone_photo)"
    )
    args = parser.parse_args()
    if args.model == "faces":
        faces(args.requests, args.phone)
        return
    encoded = [sample(n).read_bytes() for n in IMAGES]
    with private_stack() as (settings, key), tempfile.TemporaryDirectory() as tmp:
        if args.model == "imported":
            env = settings_environment(settings)
            import_detector(env, export_float_nanodet(Path(tmp) / "user-nanodet.onnx"), "user_nanodet")
            name, model_dir = "user_nanodet", settings.user_models / "user_nanodet"
        elif args.model == "yolox":  # YOLOX-nano's layer plan, random weights (bench/_yolox_nano.py)
            import_yolox(settings_environment(settings), export(Path(tmp) / "yolox_nano.onnx"))
            name, model_dir = "user_yolox", settings.user_models / "user_yolox"
        else:
            name, model_dir = "nanodet", project_root() / "model_repository/nanodet"
        local = InProcess(model_dir, "cpu")
        spec = local.spec
        token = settings.internal_token_file.read_bytes().strip()
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=60)
        channel = grpc.insecure_channel(f"{settings.host}:{settings.detection_port}")
        service = detection_pb2_grpc.DetectionServiceStub(channel)
        metadata = ((INTERNAL_TOKEN_HEADER, token.decode()),)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # grpc.aio binds its channel to the loop current at creation

        async def connect() -> TritonClient:
            return TritonClient(settings.triton_grpc_url, token=token)

        triton = loop.run_until_complete(connect())
        tensors = []
        for data in encoded:
            decoded = decode(data, local.limits, spec)
            tensors.append(prepare(decoded.picture, spec, decoded.original_size)[0])

        async def pipeline(data: bytes) -> None:
            def pre() -> tuple[object, object, object]:
                decoded = decode(data, local.limits, spec)
                batch, transform = prepare(decoded.picture, spec, decoded.original_size)
                return decoded.picture, batch, transform

            image, batch, transform = await asyncio.to_thread(pre)
            outputs = await triton.infer(name, {spec.input_name: batch}, spec.output_names)
            await asyncio.to_thread(finish, outputs, spec, transform, OPTIONS, image)

        def direct(i: int) -> None:
            request = detection_pb2.DetectRequest(
                image=common_pb2.Image(data=encoded[i % 5]), model=name, **SAME
            )
            service.Detect(request, metadata=metadata, timeout=60)

        layers: dict[str, Callable[[int], object]] = {
            "model only, in-process": lambda i: local.session.run(None, {local.input: tensors[i % 5]}),
            "model only, Triton +": lambda i: loop.run_until_complete(
                triton.infer(name, {spec.input_name: tensors[i % 5]}, spec.output_names)
            ),
            "in-process": lambda i: local.detect(encoded[i % 5]),
            "pipeline calling Triton +": lambda i: loop.run_until_complete(pipeline(encoded[i % 5])),
            "service (gRPC) +": direct,
            "gateway +": lambda i: client.detect(encoded[i % 5], model=name, **SAME),
            "gateway hop only (Health)": lambda i: client.health_status(),
        }
        if args.only:
            wanted = args.only.split(",")
            layers = {k: v for k, v in layers.items() if any(w in k for w in wanted)}
        report(name, layers, args.requests)
        loop.run_until_complete(triton.close())
        loop.close()
        channel.close()
        client.close()


def report(name: str, layers: dict[str, Callable[[int], object]], requests: int) -> None:
    """Warm every layer, then time them interleaved, ``requests`` each, and print p50 / p25 / p75; a label
    ending in ``+`` adds one hop to the row before it, and its step is printed."""
    times: dict[str, list[float]] = {k: [] for k in layers}
    for i in range(5):  # warm every path
        for fn in layers.values():
            fn(i)
    for i in range(requests):
        for label, fn in layers.items():
            time.sleep(0.05)  # onnxruntime's threads in this process spin after a run: let them stop
            start = time.perf_counter()
            fn(i)
            times[label].append((time.perf_counter() - start) * 1000)
    print(
        f"{name}: {requests} requests per layer, interleaved; p50 / p25 / p75 ms, (+ step over the row before)"
    )
    previous = 0.0
    for label, values in times.items():
        q = statistics.quantiles(values, n=4)
        step = f"  (+{q[1] - previous:.2f})" if label.endswith("+") else ""
        print(f"  {label.rstrip(' +'):36s} {q[1]:7.2f} {q[0]:7.2f} {q[2]:7.2f}{step}")
        previous = q[1]


def faces(requests: int, phone: bool = False) -> None:
    """Verify, layer by layer: each network alone in-process vs through Triton, then the whole request
    in-process, from the faces service over gRPC, and through the gateway."""
    import uuid

    from fovea.common.caller import scopes_header
    from fovea.contracts.face_detector import DETECTOR_INPUT, DETECTOR_OUTPUTS
    from fovea.contracts.face_embedder import EMBEDDER_INPUT, EMBEDDER_OUTPUT
    from fovea.convert.samples import phone_photo
    from fovea.faces.recognition.pipeline import align_all, decode_for_faces
    from fovea.faces.tools.inprocess import InProcessFaces, run_model
    from fovea.faces.v1 import faces_pb2, faces_pb2_grpc

    local = InProcessFaces(project_root() / "model_repository")
    reference = local.embedding(sample("obama").read_bytes())
    names = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
    probes = [phone_photo(n, 1.0, seed=j) if phone else sample(n).read_bytes() for j, n in enumerate(names)]
    smalls = [
        decode_for_faces(p, local.limits, local.detect_side, local.min_face)[2][0][None] for p in probes
    ]
    photos = [local.find_faces(p) for p in probes]
    chips = [align_all([photo.source(photo.faces.take([0]))]) for photo in photos]
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=60)
        gallery = f"layers-{uuid.uuid4().hex[:6]}"
        client.create_gallery(gallery)
        client.enroll(gallery, "obama", [sample("obama").read_bytes()])
        token = settings.internal_token_file.read_bytes().strip()
        channel = grpc.insecure_channel(
            f"{settings.host}:{settings.faces_port}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        service = faces_pb2_grpc.FacesServiceStub(channel)
        metadata = ((INTERNAL_TOKEN_HEADER, token.decode()), scopes_header(["faces:admin"]))

        def direct(i: int) -> object:
            photo = common_pb2.Image(data=probes[i % 5])
            request = faces_pb2.VerifyRequest(gallery_id=gallery, identity_id="obama", photo=photo)
            return service.Verify(request, metadata=metadata, timeout=60)

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def connect() -> TritonClient:
            return TritonClient(settings.triton_grpc_url, token=token)

        triton = loop.run_until_complete(connect())
        det, emb = local.settings.detector_model, local.settings.embedder_model
        layers: dict[str, Callable[[int], object]] = {
            "detector alone, in-process": lambda i: run_model(
                local.detector, {DETECTOR_INPUT: smalls[i % 5]}
            ),
            "detector alone, Triton +": lambda i: loop.run_until_complete(
                triton.infer(det, {DETECTOR_INPUT: smalls[i % 5]}, DETECTOR_OUTPUTS)
            ),
            "embedder alone, in-process": lambda i: run_model(local.embedder, {EMBEDDER_INPUT: chips[i % 5]}),
            "embedder alone, Triton +": lambda i: loop.run_until_complete(
                triton.infer(emb, {EMBEDDER_INPUT: chips[i % 5]}, [EMBEDDER_OUTPUT])
            ),
            "verify, in-process": lambda i: local.verify(probes[i % 5], reference),
            "verify, faces service (gRPC) +": direct,
            "verify, gateway +": lambda i: client.verify(gallery, "obama", probes[i % 5]),
        }
        report("faces (12 MP phone photos)" if phone else "faces", layers, requests)
        channel.close()
        loop.run_until_complete(triton.close())
        loop.close()
        client.close()


if __name__ == "__main__":
    main()
