"""The dense PAD check through the real models on rendered frames: the obama2 sample as a 2.5D head
turning 20-30 degrees (``pad_synth.head_view``) and as a print, flat or bent (radius +-150 and 60 mm about its
vertical or horizontal axis, ``pad_synth.bent_photo_view``) turned 30-50 degrees; 5 frames each. Runs the
served ``face_detector`` and ``face_mesh`` modules in this process (built with ``fovea models build``) and
the door's code (crop, mesh back to the image, 5-point and dense checks, eye aspect ratios).

    nice -n 19 .venv/bin/python bench/pad_dense_rendered.py
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from fovea.common.paths import project_root  # noqa: E402
from fovea.contracts.face_detector import DetectedFaces
from fovea.convert.samples import sample
from fovea.faces.access.core.pad import GeometrySettings, check_burst
from fovea.faces.access.core.pad_dense import DenseSettings, check_dense, combine
from fovea.faces.recognition.core.mesh import dense_points, eye_aspect_ratio, mesh_to_image
from fovea.faces.recognition.pipeline import mesh_crops
from fovea.faces.tools.core.pad_render import bent_photo_view, head_view, photo_view
from fovea.faces.tools.core.pad_synth import rotation
from fovea.faces.tools.inprocess import InProcessFaces, run_model
from fovea.faces.tools.pad_eval import portrait
from fovea.serving.triton_adapter import load_from_repository


def main() -> None:
    repo = project_root() / "model_repository"
    faces = InProcessFaces(repo)
    mesh_model = load_from_repository("fovea.serving.face_mesh", repo / "face_mesh")

    def judge(frames: list[np.ndarray], name: str) -> None:
        photos = [faces.detect(f) for f in frames]
        found: list[DetectedFaces | None] = [p.faces.take([0]) if len(p.faces) else None for p in photos]
        crops, matrices, rows = mesh_crops([p.image for p in photos], found)
        out = run_model(mesh_model, {"CROP": crops})
        meshes: list[np.ndarray | None] = [None] * len(frames)
        for j, i in enumerate(rows):
            if out["FACE_SCORE"][j, 0] >= 0.5:
                meshes[i] = mesh_to_image(out["MESH"][j], matrices[j])
        five = check_burst([None if f is None else f.landmarks[0] for f in found], GeometrySettings())
        dense = check_dense([None if m is None else dense_points(m[:, :2]) for m in meshes], DenseSettings())
        ears = " ".join("-" if m is None else f"{float(eye_aspect_ratio(m)):.2f}" for m in meshes)
        print(
            f"{name:24s} 5-point {five.verdict.value:9s} {five.score:.3f}  dense {dense.verdict.value:9s} "
            f"{dense.score:.2f} ({dense.reasons[-1].split('bend')[-1].strip()})  -> "
            f"{combine(five, dense).verdict.value:9s} EAR {ears}"
        )

    obama2 = Image.open(sample("obama2")).convert("RGB")
    crop, landmarks = portrait(faces, obama2)
    rng = np.random.default_rng(1)
    for turn in (20, 30):
        for axis in ("yaw", "pitch"):
            frames = []
            for a in np.linspace(-turn / 2, turn / 2, 5):
                view = head_view(crop, landmarks, a, 0) if axis == "yaw" else head_view(crop, landmarks, 0, a)
                frames.append(np.clip(view + rng.normal(0, 2, crop.shape), 0, 255).astype(np.uint8))
            judge(frames, f"head {axis} {turn}")
    for bend_axis in ("vertical", "horizontal"):
        for radius in (150.0, -150.0, 60.0):
            for turn in (30, 50):
                frames = []
                for k in range(5):
                    a = turn * (k / 4 - 0.5)
                    pose = rotation(a, 5, 0) if bend_axis == "vertical" else rotation(5, a, 0)
                    frames.append(
                        bent_photo_view(obama2, pose, 350, (960, 720), radius_mm=radius, axis=bend_axis)
                    )
                judge(frames, f"print bent {bend_axis[0]} r{radius:.0f} turn {turn}")
    judge(
        [photo_view(obama2, rotation(30 * k / 4, 5, 0), 350, (960, 720)) for k in range(5)],
        "flat print turn 30",
    )


if __name__ == "__main__":
    main()
