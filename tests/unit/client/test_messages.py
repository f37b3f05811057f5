"""The gateway's messages as the client's dataclasses: enum names, rounding, absent images as None, and the
JSON of ``asdict`` in the shape the command line has always printed."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from fovea.classify.v1 import classify_pb2
from fovea.client import GatysParams
from fovea.client import messages as m
from fovea.faces.v1 import faces_pb2
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2


def test_a_training_job_and_its_result() -> None:
    job = classify_pb2.TrainingJob(
        job_id="j1",
        name="pets",
        state=classify_pb2.TRAINING_SUCCEEDED,
        stage="done",
        epoch=3,
        epochs=3,
        loss=0.123456789,
        validation_accuracy=0.75,
        result=classify_pb2.TrainingResult(
            version=2,
            validation_accuracy=0.75,
            train_accuracy=1.0,
            classes=[
                classify_pb2.ClassMetrics(
                    label="cat", accuracy=0.5, precision=1.0, validation_images=2, train_images=9
                ),
                classify_pb2.ClassMetrics(
                    label="dog", accuracy=1.0, precision=2 / 3, validation_images=2, train_images=9
                ),
            ],
            confusion=[1, 1, 0, 2],  # row-major 2x2
            labels=["cat", "dog"],
            feature_seconds=1.23456,
            train_seconds=0.5,
            features_cached=4,
            features_computed=18,
        ),
    )
    got = m.training_job(job)
    assert got.state == "SUCCEEDED" and got.loss == 0.12346  # TRAINING_ taken off; loss to 5 decimals
    assert got.result is not None and got.result.confusion == [[1, 1], [0, 2]]
    assert asdict(got)["result"] == {  # the keys and their order `fovea classifiers job --json` printed
        "version": 2,
        "validation_accuracy": 0.75,
        "train_accuracy": 1.0,
        "labels": ["cat", "dog"],
        "classes": [
            {"label": "cat", "accuracy": 0.5, "precision": 1.0, "validation_images": 2, "train_images": 9},
            {"label": "dog", "accuracy": 1.0, "precision": 0.6667, "validation_images": 2, "train_images": 9},
        ],
        "confusion": [[1, 1], [0, 2]],
        "feature_seconds": 1.235,
        "train_seconds": 0.5,
        "features_cached": 4,
        "features_computed": 18,
        "pad": None,
    }
    assert list(asdict(got)["result"]) == list(asdict(got.result))
    assert m.training_job(classify_pb2.TrainingJob(job_id="j2")).result is None  # not SUCCEEDED


def test_a_classifier_and_its_versions() -> None:
    info = classify_pb2.ClassifierInfo(
        name="pets",
        input_size=224,
        resize_side=256,
        labels=["cat", "dog"],
        trained=True,
        active_version=1,
        versions=[classify_pb2.ClassifierVersion(version=1, labels=["cat", "dog"], created=1.5, job_id="j1")],
    )
    assert list(asdict(m.classifier_info(info))) == [
        "name",
        "input_size",
        "resize_side",
        "classes",
        "is_default",
        "trained",
        "active_version",
        "versions",
    ]
    got = m.classifier_info(info)
    assert got.classes == 2 and got.versions[0].version == 1 and got.versions[0].job_id == "j1"
    assert list(asdict(got.versions[0])) == [
        "version",
        "labels",
        "created",
        "validation_accuracy",
        "train_images",
        "job_id",
    ]


def test_a_style_job() -> None:
    queued = m.style_job(style_pb2.Job(job_id="s1", state=style_pb2.QUEUED, kind="fast"))
    assert (queued.state, queued.done, queued.result_png, queued.progress.preview_png) == (
        "QUEUED",
        False,
        None,
        None,
    )
    done = m.style_job(
        style_pb2.Job(
            job_id="s1",
            state=style_pb2.SUCCEEDED,
            result_png=b"png",
            progress=style_pb2.Progress(iteration=6, total_iterations=6, total_cost=2.5),
        )
    )
    assert done.done and done.result_png == b"png" and done.progress.iteration == 6
    assert done.progress.total_cost == 2.5


def test_gatys_parameters_by_name() -> None:
    request = m.gatys_params(
        GatysParams(iterations=5, optimizer="adam", init="noise", style_layers={"r": 1.0})
    )
    assert request.optimizer == style_pb2.ADAM and request.init == style_pb2.NOISE and request.iterations == 5
    assert dict(request.style_layers) == {"r": 1.0}
    default = m.gatys_params(GatysParams())
    assert default.optimizer == style_pb2.OPTIMIZER_UNSPECIFIED and default.init == style_pb2.INIT_UNSPECIFIED
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; known: lbfgs, adam"):
        m.gatys_params(GatysParams(optimizer="sgd"))
    with pytest.raises(ValueError, match="unknown init 'zeros'; known: content, noise"):
        m.gatys_params(GatysParams(init="zeros"))


def test_faces_answers() -> None:
    response = faces_pb2.VerifyAccessResponse(
        decision=faces_pb2.DENY,
        reason="pad",
        distance=0.123456,
        pad=faces_pb2.PadCheck(
            check="geometry", verdict=faces_pb2.PAD_ATTACK, score=0.031234, threshold=0.12
        ),
        reason_kind="pad",
    )
    result = m.access_result(response)
    assert (result.decision, result.distance, result.reason_kind) == ("DENY", 0.1235, "pad")
    assert result.pad is not None and (result.pad.verdict, result.pad.score) == ("PAD_ATTACK", 0.0312)
    assert result.challenge is None  # the request carried none
    assert result.passive is None  # the door ran no passive check
    response.passive.CopyFrom(
        faces_pb2.PassiveCheck(check="trained:lobby", score=0.912345, threshold=0.5, attack=False, reason="r")
    )
    passive = m.access_result(response).passive
    assert passive is not None and (passive.check, passive.score, passive.attack) == (
        "trained:lobby",
        0.9123,
        False,
    )
    assert asdict(m.access_result(response))["passive"]["threshold"] == 0.5
    event = m.face_event(faces_pb2.Event(event_id="1-0", kind="enrolled"))
    assert event.decision == ""  # not a door event


def test_a_model() -> None:
    model = m.model_info(models_pb2.ModelInfo(name="nanodet", version="1", state="READY"))
    assert asdict(model) == {"name": "nanodet", "version": "1", "state": "READY", "reason": ""}
