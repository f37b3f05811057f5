"""Transfer learning through the real stack: train on scikit-image's lfw_subset (faces vs other), deploy as a
Triton model version, classify through the gateway, train again (version 2), roll back, refuse bad input with
nothing stored, delete; the CLI's train --wait and eval. Nothing is restarted on the way."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from fovea.client import FoveaClient, FoveaClientError

from .conftest import Stack

pytestmark = pytest.mark.integration

NAME = "lfw-faces"
TRAIN = 20  # per class, quick: 2 x 20 images, 5 epochs
HELD_OUT = range(40, 60)  # per class, never trained on


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def lfw() -> dict[str, list[bytes]]:
    """lfw_subset ships in the scikit-image wheel: 100 25x25 grey faces, then 100 non-faces."""
    images = skimage.data.lfw_subset()
    return {"face": [png(a) for a in images[:100]], "other": [png(a) for a in images[100:]]}


def training_set(
    lfw: dict[str, list[bytes]], names: dict[str, str], n: int = TRAIN
) -> list[tuple[str, bytes]]:
    return [(names[label], data) for label, items in lfw.items() for data in items[:n]]


def held_out_accuracy(
    client: FoveaClient, lfw: dict[str, list[bytes]], names: dict[str, str], per_class: int = len(HELD_OUT)
) -> float:
    hits, total = 0, 0
    for label, items in lfw.items():
        for i in HELD_OUT[:per_class]:
            result = client.classify(items[i], model=NAME, top_k=1)
            hits += result.classifications[0].label == names[label]
            total += 1
    return hits / total


def pids(stack: Stack) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in stack.supervisor.processes()}


def test_train_deploy_classify_version_rollback_delete(stack: Stack, lfw: dict[str, list[bytes]]) -> None:
    before = pids(stack)
    v1_names = {"face": "face", "other": "other"}
    v2_names = {"face": "person", "other": "scene"}
    with stack.client(timeout_s=300) as client:
        start = time.perf_counter()
        job = client.train_classifier(NAME, training_set(lfw, v1_names), epochs=5)
        assert job.state == "QUEUED" and job.name == NAME
        updates = list(client.watch_training_job(job.job_id))
        final = updates[-1]
        job_seconds = time.perf_counter() - start
        assert final.state == "SUCCEEDED", final.error
        assert final.result is not None
        epochs = [u for u in updates if u.epoch]
        assert epochs and all(u.loss > 0 for u in epochs) and epochs[-1].epoch <= 5
        result = final.result
        assert result.version == 1 and result.labels == ["face", "other"]
        # 15% of 20 per class held out: 3 faces, 3 others; chance is 50%
        assert sum(map(sum, result.confusion)) == 6
        assert result.validation_accuracy >= 0.8, result
        assert [c.label for c in result.classes] == ["face", "other"]
        assert all(c.train_images == 17 and c.validation_images == 3 for c in result.classes)
        assert result.features_computed > 0
        print(
            f"\nv1: job {job_seconds:.1f} s submit to SUCCEEDED, validation {result.validation_accuracy:.1%}, "
            f"features {result.feature_seconds:.1f} s ({result.features_computed} computed), "
            f"head {result.train_seconds:.2f} s"
        )

        listed = {r.name: r for r in client.list_classifiers()}
        assert listed[NAME].trained and listed[NAME].active_version == 1
        assert [v.version for v in listed[NAME].versions] == [1]
        assert listed["classifier_imagenet"].trained is False

        accuracy = held_out_accuracy(client, lfw, v1_names)
        print(f"v1: {accuracy:.1%} of 40 photos never seen")
        assert accuracy >= 0.8, accuracy  # chance 50%
        first = client.classify(lfw["face"][50], model=NAME)
        assert first.version == 1 and first.model == NAME
        assert {c.label for c in first.classifications} == {"face", "other"}

        # the same photos under other names: version 2; every feature comes from the cache
        job2 = client.train_classifier(NAME, training_set(lfw, v2_names), epochs=5)
        final2 = list(client.watch_training_job(job2.job_id))[-1]
        assert final2.state == "SUCCEEDED", final2.error
        assert final2.result is not None and final2.result.version == 2
        assert final2.result.features_computed == 0 and final2.result.features_cached > 0
        assert client.classify(lfw["face"][50], model=NAME).version == 2
        assert held_out_accuracy(client, lfw, v2_names, per_class=5) >= 0.8  # fewer calls: a loaded CI host
        old = client.classify(lfw["face"][50], model=NAME, version=1)  # an older version, by number
        assert old.version == 1 and {c.label for c in old.classifications} == {"face", "other"}

        rolled = client.rollback_classifier(NAME)
        assert rolled.active_version == 1 and [v.version for v in rolled.versions] == [1, 2]
        again = client.classify(lfw["other"][50], model=NAME)
        assert again.version == 1 and {c.label for c in again.classifications} == {"face", "other"}
        assert client.rollback_classifier(NAME, 2).active_version == 2
        assert client.classify(lfw["other"][50], model=NAME).version == 2

        with pytest.raises(FoveaClientError) as info:
            client.classify(lfw["face"][0], model=NAME, version=9)
        assert info.value.code == "NOT_FOUND" and "versions: 1, 2" in info.value.message

    assert pids(stack) == before  # nothing restarted
    with stack.client() as client:
        assert client.delete_classifier(NAME) == 2
        assert NAME not in {r.name for r in client.list_classifiers()}


def test_bad_training_sets_are_refused_and_nothing_is_stored(
    stack: Stack, lfw: dict[str, list[bytes]]
) -> None:
    faces, others = lfw["face"], lfw["other"]
    cases = [
        ("one class", "solo", [("face", d) for d in faces[:20]], "at least 2 classes"),
        (
            "3 per class",
            "tiny",
            [("face", d) for d in faces[:3]] + [("other", d) for d in others[:3]],
            "at least 10",
        ),
        (
            "corrupt image",
            "corrupt",
            [("face", d) for d in faces[:10]]
            + [("other", d) for d in others[:9]]
            + [("other", b"\x89PNG broken")],
            "image 19 (class 'other')",
        ),
        (
            "duplicate class name",
            "dupes",
            [("face", d) for d in faces[:10]] + [("Face", d) for d in others[:10]],
            "duplicate class name",
        ),
        (
            "invalid name",
            "Bad Name!",
            [("face", d) for d in faces[:10]] + [("other", d) for d in others[:10]],
            "invalid",
        ),
        (
            "a built-in's name",
            "classifier_imagenet",
            [("face", d) for d in faces[:10]] + [("other", d) for d in others[:10]],
            "built-in",
        ),
    ]
    user_models = stack.settings.user_models
    with stack.client() as client:
        listed = client.list_classifiers()
        for what, name, images, words in cases:
            with pytest.raises(FoveaClientError) as info:
                client.train_classifier(name, images)
            assert info.value.code == "INVALID_ARGUMENT" and words in info.value.message, (what, info.value)
            assert not (user_models / f"classifier_{name}").exists(), what
        assert client.list_classifiers() == listed
    with stack.client(stack.detect_key) as client, pytest.raises(FoveaClientError) as denied:
        client.train_classifier("nope", training_set(lfw, {"face": "face", "other": "other"}, 10))
    assert denied.value.code == "PERMISSION_DENIED" and "classify:train" in denied.value.message


def test_cli_train_wait_eval_versions_rollback_delete(
    stack: Stack, lfw: dict[str, list[bytes]], tmp_path: Path
) -> None:
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.admin_key}

    def fovea(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fovea", *args], capture_output=True, text=True, env=env, check=False
        )

    train, held = tmp_path / "train", tmp_path / "held"
    for label, items in lfw.items():
        for folder, chosen in ((train, items[:12]), (held, [items[i] for i in HELD_OUT])):
            (folder / label).mkdir(parents=True)
            for i, data in enumerate(chosen):
                (folder / label / f"{i:03d}.png").write_bytes(data)
    proc = fovea("classifiers", "train", "cli-faces", str(train), "--epochs", "5", "--wait")
    assert proc.returncode == 0, proc.stderr
    assert "epoch 5/5" in proc.stderr and "validation accuracy" in proc.stdout
    assert "face" in proc.stdout and "confusion" in proc.stdout
    listed = fovea("classifiers", "list")
    assert listed.returncode == 0 and "cli-faces" in listed.stdout and "version 1 of 1" in listed.stdout
    out = tmp_path / "confusion.png"
    report = fovea("classifiers", "eval", "cli-faces", str(held), "--png", str(out), "--json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["version"] == 1 and data["accuracy"] >= 0.8 and sum(map(sum, data["confusion"])) == 40
    assert Image.open(out).size[0] > 100
    label = fovea("classify", str(held / "face" / "000.png"), "--model", "cli-faces", "--json")
    assert label.returncode == 0 and json.loads(label.stdout)["version"] == 1
    versions = fovea("classifiers", "versions", "cli-faces")
    assert versions.returncode == 0 and "*   1" in versions.stdout
    refused = fovea("classifiers", "rollback", "cli-faces")
    assert refused.returncode != 0 and "no version before 1" in refused.stderr
    deleted = fovea("classifiers", "delete", "cli-faces")
    assert deleted.returncode == 0 and "1 versions" in deleted.stdout
    gone = fovea("classify", str(held / "face" / "000.png"), "--model", "cli-faces")
    assert gone.returncode != 0 and "NOT_FOUND" in gone.stderr
    assert not (stack.settings.user_models / "classifier_cli-faces").exists()


def test_a_model_fovea_did_not_train_is_refused_and_left_alone(
    stack: Stack, lfw: dict[str, list[bytes]]
) -> None:
    """A classifier_<name> folder without fovea-classifier.json (as `fovea models import-onnx` makes one) is
    refused before a job is queued, and nothing in it is touched; a job id that is not one is NOT_FOUND."""
    imported = stack.settings.user_models / "classifier_imported-here"
    (imported / "1").mkdir(parents=True)
    try:
        (imported / "1" / "model.onnx").write_bytes(b"theirs")
        images = [("face", d) for d in lfw["face"][:10]] + [("other", d) for d in lfw["other"][:10]]
        with stack.client() as client:
            with pytest.raises(FoveaClientError) as info:
                client.train_classifier("imported-here", images)
            assert info.value.code == "FAILED_PRECONDITION" and "did not train" in info.value.message
            with pytest.raises(FoveaClientError) as info:
                client.training_job("0123456789abcdef0123456789abcdef:images")
            assert info.value.code == "NOT_FOUND"
        assert sorted(p.name for p in imported.rglob("*")) == ["1", "model.onnx"]
        assert (imported / "1" / "model.onnx").read_bytes() == b"theirs"
    finally:
        (imported / "1" / "model.onnx").unlink(missing_ok=True)
        (imported / "1").rmdir()
        imported.rmdir()
