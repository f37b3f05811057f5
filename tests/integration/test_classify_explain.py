"""Grad-CAM through the real gateway and Triton: the map of the dog photo lands on the dog, the PNG overlay comes
back (and from the CLI), another class moves the map, the scope is enforced."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fovea.classify.core.explain import cell_centre, peak_cell
from fovea.client import FoveaClientError
from fovea.convert.samples import LABELLED_BOXES, sample

from .conftest import Stack

pytestmark = pytest.mark.integration


def peak_in(result_heatmap: list[list[float]], crop: list[float]) -> tuple[float, float]:
    heatmap = np.asarray(result_heatmap, np.float32)
    x1, y1, x2, y2 = crop
    return cell_centre(peak_cell(heatmap), heatmap.shape, (x1, y1, x2, y2))  # type: ignore[arg-type]


def box(photo: str, label: str) -> tuple[int, int, int, int]:
    [found] = [b for name, b in LABELLED_BOXES[photo] if name == label]
    return found


def inside(point: tuple[float, float], b: tuple[int, int, int, int]) -> bool:
    return b[0] <= point[0] <= b[2] and b[1] <= point[1] <= b[3]


def test_dog_map_lands_on_the_dog_and_the_bicycle_map_on_the_bicycle(stack: Stack) -> None:
    data = sample("dog").read_bytes()
    with stack.client() as client:
        dog = client.explain(data, render=True)
        bike = client.explain(data, label="bicycle-built-for-two")
    assert dog.model == "classifier_imagenet" and dog.explained.label == dog.top.label == "malamute"
    assert len(dog.heatmap) == 7 and all(len(row) == 7 for row in dog.heatmap)
    assert inside(peak_in(dog.heatmap, dog.crop), box("dog", "dog"))
    assert dog.png is not None and Image.open(io.BytesIO(dog.png)).size == (768, 576)
    assert bike.explained.class_id == 444 and bike.top.label == "malamute" and bike.png is None
    at = peak_in(bike.heatmap, bike.crop)
    assert inside(at, box("dog", "bicycle")) and not inside(at, box("dog", "dog")), at


def test_the_detect_scope_does_not_explain(stack: Stack) -> None:
    with stack.client(stack.detect_key) as client, pytest.raises(FoveaClientError) as info:
        client.explain(sample("dog").read_bytes())
    assert info.value.code == "PERMISSION_DENIED"


def test_cli_writes_the_overlay(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "FOVEA_GATEWAY": stack.gateway, "FOVEA_API_KEY": stack.admin_key}
    out = tmp_path / "cam.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fovea", "classify", "explain", str(sample("giraffe")), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "zebra" in proc.stdout and str(out) in proc.stdout
    assert Image.open(out).format == "PNG"
    bad = subprocess.run(
        [sys.executable, "-m", "fovea", "classify", "explain", str(sample("dog")), "--class", "dgo"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode != 0 and "INVALID_ARGUMENT" in bad.stderr + bad.stdout and "dingo" in bad.stderr
