"""The platform's answers on the sample photos, byte for byte: a fingerprint to compare before and after a change
that should not change behaviour (a refactor, a move, a dependency bump).

Every capability is asked through a running gateway (``fovea up``) with raw protos, and each reply is written
as its serialized bytes' SHA-256 beside a readable summary. Two runs of the same code give the same file
(timings, ids and clocks are left out of the replies first).

    .venv/bin/python bench/answers.py --out /tmp/before.json
    ... change ...
    .venv/bin/python bench/answers.py --out /tmp/after.json --compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from fovea.classify.v1 import classify_pb2
from fovea.client import FoveaClient
from fovea.common.v1 import common_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2

try:  # the sample photos moved with the layout change; either place will do
    from fovea.convert.samples import sample
except ImportError:  # pragma: no cover - the layout before
    from fovea.convert.samples import sample

DETECTORS = ("nanodet", "nanodet_int8", "centernet")
PHOTOS = ("dog", "person", "horses", "giraffe", "kite")
FACES = ("obama", "obama2", "obama3", "biden", "obama_partial_face")
VOLATILE = {"request_id", "created_at", "updated_at", "started_at", "finished_at", "job_id", "template_id"}


def _fingerprint(reply: Message) -> dict[str, Any]:
    data = json_format.MessageToDict(reply, preserving_proto_field_name=True)

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in VOLATILE and "time" not in k and not k.endswith("seconds")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    clean = strip(data)
    text = json.dumps(clean, sort_keys=True)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "reply": clean}


def collect(client: FoveaClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in DETECTORS:
        for name in PHOTOS:
            request = detection_pb2.DetectRequest(
                image=common_pb2.Image(data=sample(name).read_bytes()), model=model, annotate=True
            )
            reply = client.call(client.detection.Detect, request)
            out[f"detect/{model}/{name}"] = _fingerprint(reply)
    for name in PHOTOS:
        request = classify_pb2.ClassifyRequest(
            image=common_pb2.Image(data=sample(name).read_bytes()), top_k=5
        )
        out[f"classify/{name}"] = _fingerprint(client.call(client.classifier.Classify, request))
    request = classify_pb2.ExplainRequest(image=common_pb2.Image(data=sample("dog").read_bytes()))
    out["explain/dog"] = _fingerprint(client.call(client.classifier.Explain, request))

    gallery = "answers-fingerprint"
    client.ensure_gallery(gallery)
    client.call(
        client.faces.Enroll,
        faces_pb2.EnrollRequest(
            gallery_id=gallery,
            identity_id="obama",
            photos=[common_pb2.Image(data=sample("obama").read_bytes())],
        ),
    )
    for name in FACES:
        photo = common_pb2.Image(data=sample(name).read_bytes())
        verify = faces_pb2.VerifyRequest(gallery_id=gallery, identity_id="obama", photo=photo)
        out[f"verify/{name}"] = _fingerprint(client.call(client.faces.Verify, verify))
        identify = faces_pb2.IdentifyRequest(gallery_id=gallery, photo=photo, top_k=1)
        out[f"identify/{name}"] = _fingerprint(client.call(client.faces.Identify, identify))
    client.delete_gallery(gallery)

    job = client.submit_style(sample("dog").read_bytes(), style=client.list_styles()[0], max_side=256)
    final = list(client.watch_job(job.job_id, timeout_s=300))[-1]
    out["style/fast/dog"] = {
        "state": final.state,
        "sha256": hashlib.sha256(final.result_png or b"").hexdigest(),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--compare", type=Path, help="an earlier run's file: print what differs, exit 1 if any"
    )
    args = parser.parse_args()
    with FoveaClient() as client:
        answers = collect(client)
    args.out.write_text(json.dumps(answers, indent=1, sort_keys=True))
    print(f"{len(answers)} answers -> {args.out}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    differ = sorted(
        k
        for k in before.keys() | answers.keys()
        if before.get(k, {}).get("sha256") != answers.get(k, {}).get("sha256")
    )
    for key in differ:
        print(f"differs: {key}")
    print(f"{len(answers) - len(differ)} of {len(answers)} answers identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
