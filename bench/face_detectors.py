"""Face detectors compared in this process (onnxruntime defaults, the served modules and their config.pbtxt):
MTCNN (``face_detector``) against RetinaFace-mobilenet0.25 (``face_retinaface``, at its served DETECT_SIDE and
at other working-copy sizes), each feeding the same aligner (on its own template) and embedder (issue 23).

On the six face_recognition photos dlib's reference was made from (tests/fixtures/dlib-reference):
- faces found (score >= FOVEA_FACES_MIN_FACE_SCORE, as the service keeps them);
- the largest face's five landmarks against MTCNN's, distance / MTCNN's inter-ocular distance (mean, max);
- the 6 x 6 distance matrix of the descriptors against dlib 20.0.1's (max |ours - dlib's|; the unit tests
  hold MTCNN's under 0.05), and the same-person / different-person distances (obama* vs biden);
- speed: p50 ms per photo, sequential, detectors interleaved photo by photo in the same run: the detector
  alone (the served model on the downsized photo) and find_faces (decode + downsize + detect).

    .venv/bin/python bench/face_detectors.py [--rounds 15] [--sides 480,640]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# bench/http.py would shadow the standard library's http (prometheus_client imports it): not this folder
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from fovea.common.paths import project_root  # noqa: E402
from fovea.contracts.face_detector import DETECTOR_INPUT  # noqa: E402
from fovea.convert.samples import sample  # noqa: E402
from fovea.faces.config import FacesSettings  # noqa: E402
from fovea.faces.recognition.core.align import MTCNN_TEMPLATE  # noqa: E402
from fovea.faces.recognition.pipeline import downsize  # noqa: E402
from fovea.faces.tools.inprocess import InProcessFaces, run_model  # noqa: E402

REFERENCE = project_root() / "tests" / "fixtures" / "dlib-reference" / "reference.json"


def variant_repository(side: int, root: Path) -> Path:
    """A model repository whose face_retinaface runs at DETECT_SIDE ``side`` (the weights linked, the other
    face models as they are)."""
    source = project_root() / "model_repository"
    root.mkdir(parents=True)
    for name in ("face_detector", "face_embedder"):
        (root / name).symlink_to(source / name)
    model = root / "face_retinaface"
    (model / "1").mkdir(parents=True)
    for path in (source / "face_retinaface" / "1").iterdir():
        if path.is_file():
            (model / "1" / path.name).symlink_to(path)
    config = (source / "face_retinaface" / "config.pbtxt").read_text()
    served = '{ key: "DETECT_SIDE", value: { string_value: "320" } }'
    if served not in config:
        raise ValueError("face_retinaface's config no longer serves DETECT_SIDE 320: update this bench")
    (model / "config.pbtxt").write_text(
        config.replace(served, f'{{ key: "DETECT_SIDE", value: {{ string_value: "{side}" }} }}')
    )
    return root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed passes over the photos per detector")
    parser.add_argument("--sides", default="480,640", help="other RetinaFace DETECT_SIDE values to measure")
    args = parser.parse_args()

    reference = json.loads(REFERENCE.read_text())
    names = [f["image"] for f in reference["faces"]]
    data = {n: sample(n.removesuffix(".jpg")).read_bytes() for n in names}
    repository = project_root() / "model_repository"
    tmp = Path(tempfile.mkdtemp(prefix="face-detectors-"))
    detectors = {
        "MTCNN (DETECT_SIDE 288)": InProcessFaces(repository, FacesSettings(detector="mtcnn")),
        "RetinaFace (DETECT_SIDE 320)": InProcessFaces(repository, FacesSettings(detector="retinaface")),
    }
    # the same detector aligned on MTCNN's template instead of its own (what the template is worth)
    mtcnn_template = InProcessFaces(repository, FacesSettings(detector="retinaface"))
    mtcnn_template.template = MTCNN_TEMPLATE
    detectors["RetinaFace (DETECT_SIDE 320), MTCNN's alignment template"] = mtcnn_template
    for side in [int(s) for s in args.sides.split(",") if s]:
        repo = variant_repository(side, tmp / str(side))
        detectors[f"RetinaFace (DETECT_SIDE {side})"] = InProcessFaces(
            repo, FacesSettings(detector="retinaface")
        )
    mtcnn_name = next(iter(detectors))

    photos = {label: {n: d.find_faces(data[n]) for n in names} for label, d in detectors.items()}
    theirs = np.array(reference["pairwise_l2_from_chip"]["matrix"])
    is_biden = np.array([n.startswith("biden") for n in names])
    rows = []
    for label, faces in detectors.items():
        found = [len(photos[label][n].faces) for n in names]
        gaps = []
        for n in names:
            ours, mtcnn = photos[label][n].faces, photos[mtcnn_name][n].faces
            if len(ours) and len(mtcnn):
                eyes = np.linalg.norm(mtcnn.landmarks[0, 0] - mtcnn.landmarks[0, 1])
                gaps.append(np.linalg.norm(ours.landmarks[0] - mtcnn.landmarks[0], axis=1) / eyes)
        gap = np.array(gaps)
        descriptors = np.array([faces.embed(photos[label][n]) for n in names], np.float64)
        ours = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=2)
        same = [ours[i, j] for i in range(6) for j in range(i + 1, 6) if not (is_biden[i] or is_biden[j])]
        other = [ours[i, j] for i in range(6) for j in range(i + 1, 6) if is_biden[i] != is_biden[j]]
        rows.append(
            {
                "label": label,
                "found": found,
                "gap_mean": float(gap.mean()),
                "gap_max": float(gap.max()),
                "matrix": float(np.abs(ours - theirs).max()),
                "same": (min(same), max(same)),
                "other": (min(other), max(other)),
            }
        )

    # speed: the detectors interleaved photo by photo, after one warm-up pass each
    small = {
        label: {n: downsize(photos[label][n].image, d.detect_side)[0] for n in names}
        for label, d in detectors.items()
    }
    model_ms: dict[str, list[float]] = {label: [] for label in detectors}
    path_ms: dict[str, list[float]] = {label: [] for label in detectors}
    for rnd in range(args.rounds + 1):
        for n in names:
            for label, d in detectors.items():
                start = time.perf_counter()
                run_model(d.detector, {DETECTOR_INPUT: small[label][n][None]})
                middle = time.perf_counter()
                d.find_faces(data[n])
                end = time.perf_counter()
                if rnd:
                    model_ms[label].append((middle - start) * 1e3)
                    path_ms[label].append((end - middle) * 1e3)

    print(
        "| detector | faces found (6 photos) | landmarks vs MTCNN / inter-ocular, mean (max) | "
        "matrix vs dlib, max abs | same person | different person | detector p50 ms | find_faces p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        label = row["label"]
        print(
            f"| {label} | {' '.join(map(str, row['found']))} | {row['gap_mean']:.3f} ({row['gap_max']:.3f}) | "
            f"{row['matrix']:.3f} | {row['same'][0]:.3f}-{row['same'][1]:.3f} | "
            f"{row['other'][0]:.3f}-{row['other'][1]:.3f} | {statistics.median(model_ms[label]):.1f} | "
            f"{statistics.median(path_ms[label]):.1f} |"
        )
    print("photos:", ", ".join(names), f"; {args.rounds} rounds")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
