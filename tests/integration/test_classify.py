"""Classification through the real gateway: ImageNet top-1 on photos, listing, scopes, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import skimage.data
from PIL import Image

from fovea.client import FoveaClientError
from fovea.convert.samples import sample

from .conftest import Stack

pytestmark = pytest.mark.integration

DOGS = range(151, 269)  # ImageNet-1k's dog breeds
CATS = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat


def jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_photos_get_their_imagenet_class(stack: Stack) -> None:
    with stack.client() as client:
        coffee = client.classify(jpeg(skimage.data.coffee()))
        cat = client.classify(jpeg(skimage.data.chelsea()), top_k=3)
        dog = client.classify(sample("dog").read_bytes(), model="classifier_imagenet", top_k=1)
    assert coffee.model == "classifier_imagenet" and coffee.image_size == [600, 400]
    assert len(coffee.classifications) == 5  # the service default
    assert coffee.classifications[0].label in ("espresso", "cup")  # espresso, 0.99 in process
    assert coffee.classifications[0].probability > 0.5
    assert [c.class_id for c in cat.classifications if c.class_id in CATS] == [
        c.class_id for c in cat.classifications
    ]  # Egyptian cat, tiger cat, tabby: every one a cat
    assert dog.classifications[0].class_id in DOGS  # Alaskan malamute
    for result in (coffee, cat):
        probs = [c.probability for c in result.classifications]
        assert probs and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_list_classifiers(stack: Stack) -> None:
    with stack.client() as client:
        # trained classifiers (test_classify_training) aside
        rows = [asdict(r) for r in client.list_classifiers() if not r.trained]
    assert rows == [
        {
            "name": "classifier_imagenet",
            "input_size": 224,
            "resize_side": 256,
            "classes": 1000,
            "is_default": True,
            "trained": False,
            "active_version": 0,
            "versions": [],
        }
    ]


def test_bad_input_is_refused_with_a_reason(stack: Stack) -> None:
    photo = jpeg(skimage.data.coffee())
    with stack.client() as client:
        cases = [
            (lambda: client.classify(b"not an image"), "INVALID_ARGUMENT", "decoded"),
            (lambda: client.classify(photo[: len(photo) // 3]), "INVALID_ARGUMENT", "image"),
            (lambda: client.classify(photo, model="no_such_model"), "NOT_FOUND", "classifier_imagenet"),
            (lambda: client.classify(photo, top_k=1001), "INVALID_ARGUMENT", "top_k"),
            (lambda: client.classify(photo, top_k=-1), "INVALID_ARGUMENT", "top_k"),
        ]
        for call, code, words in cases:
            with pytest.raises(FoveaClientError) as info:
                call()
            assert info.value.code == code and words in info.value.message, info.value


def test_the_detect_scope_does_not_classify(stack: Stack) -> None:
    with stack.client(stack.detect_key) as client, pytest.raises(FoveaClientError) as info:
        client.classify(jpeg(skimage.data.coffee()))
    assert info.value.code == "PERMISSION_DENIED"


def test_cli(stack: Stack) -> None:
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.admin_key}

    def fovea(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fovea", *args], capture_output=True, text=True, env=env, check=False
        )

    proc = fovea("classify", str(sample("dog")), "--top-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"image_size", "model", "classifications", "version"}
    assert len(data["classifications"]) == 2 and data["version"] == 0
    assert set(data["classifications"][0]) == {"label", "class_id", "probability"}
    human = fovea("classify", str(sample("dog")))
    assert human.returncode == 0 and "model classifier_imagenet" in human.stdout, human.stderr
    listed = fovea("classify", "list")
    assert (
        listed.returncode == 0 and "classifier_imagenet" in listed.stdout and "1000 classes" in listed.stdout
    )
    bad = fovea("classify", str(sample("dog")), "--model", "nope")
    assert bad.returncode != 0 and "NOT_FOUND" in bad.stderr + bad.stdout
