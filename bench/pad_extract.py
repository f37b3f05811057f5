"""``bench/pad_passive.py``'s first step: the crops of labelled sets, cut as the door cuts them, through the
served MobileNetV2 (features, and the last blocks' input for fine-tuning), the held-out sets' face
embeddings, and the subset of bursts ``pad-train`` is given. See ``bench/pad_passive.py``'s docstring."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fovea.classify.core.classify import centre_crop
from fovea.classify.core.pad_training import augment_texture
from fovea.common.paths import model_repository
from fovea.contracts.pad_classifier import BONA_FIDE, CONTEXT_SCALE, CUT_SIZE, FACE_SCALE, INPUT_SIZE
from fovea.faces.access.core.pad import GeometrySettings, PadVerdict, check_burst
from fovea.faces.access.core.passive import centre, cut
from fovea.faces.recognition.core.faces import reduce
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import _even, find_sequences

SCALES = {"face": (1.0, FACE_SCALE, 2.0), "context": (2.2, CONTEXT_SCALE, 4.5)}  # the default in the middle
FRAMES_PER_BURST = 8  # pad-train's default


def _jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


MID = "/features.16/Add_output_0"  # features.16's output, (N, 160, 7, 7): the last blocks' input


class Backbone:
    """The served MobileNetV2 (``classifier_imagenet``'s ONNX in onnxruntime) with one more output: pooled
    ``FEATURES`` and :data:`MID` (float16, for fine-tuning the last two blocks)."""

    def __init__(self) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(model_repository() / "classifier_imagenet" / "1" / "model.onnx"))
        model.graph.output.append(onnx.helper.make_tensor_value_info(MID, onnx.TensorProto.FLOAT, None))
        self.session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, mid = self.session.run(["FEATURES", MID], {"IMAGE": np.ascontiguousarray(crops)})
        return np.asarray(features, np.float32), np.asarray(mid).astype(np.float16)

    def last_blocks(self) -> object:
        """The torch port's ``features.17`` and ``features.18`` (what takes :data:`MID`), eval mode."""
        from fovea.convert.mobilenet_v2 import mobilenet_v2_from_checkpoint

        return mobilenet_v2_from_checkpoint().features[17:].eval()


class _Batch:
    """Crops waiting for the backbone; what came out of it so far."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.crops: list[np.ndarray] = []
        self.default: list[bool] = []
        self.features: list[np.ndarray] = []
        self.mids: list[np.ndarray] = []
        self.mid_rows: list[int] = []

    def add(self, crop: np.ndarray, row: int, default: bool) -> None:
        self.crops.append(crop)
        self.default.append(default)
        if default:
            self.mid_rows.append(row)

    def flush(self) -> None:
        if not self.crops:
            return
        features, mid = self.backbone(np.stack(self.crops))
        self.features.append(features)
        self.mids.append(mid[np.asarray(self.default)])
        self.crops.clear()
        self.default.clear()


CAMERA_COPY = 3  # copy indices of the camera-jittered copies (``extract --camera``)


def extract(sets: dict[str, Path], out: Path, copies: int, seed: int, camera: bool = False) -> None:
    """Per set ``<name>.npz``: per crop its burst, label, species, frame, crop kind, scale index, copy index
    (0 = the centre square), features (and mid activations for the default scales); per burst its geometry
    answer and faces. With ``camera``: only the training set's ``copies`` copies at the default scales with
    another camera's look (``augment_texture(camera=1)``), copy indices from :data:`CAMERA_COPY`, into
    ``train_camera.npz`` (``Set.load`` adds them)."""
    faces = InProcessFaces(model_repository())
    backbone = Backbone()
    geometry = GeometrySettings()
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, root in sets.items():
        training = name == "train"
        bona, attacks = find_sequences(root)
        rows: dict[str, list] = {k: [] for k in ("burst", "frame", "kind", "scale", "copy")}
        batch = _Batch(backbone)
        bursts: list[dict] = []
        start = time.perf_counter()
        for b, seq in enumerate([*bona, *(s for v in attacks.values() for s in v)]):
            frames = _even(seq.frames, FRAMES_PER_BURST)
            landmarks = []
            for f, path in enumerate(frames):
                photo = faces.find_faces(path.read_bytes())
                if len(photo.faces) == 0:
                    landmarks.append(None)
                    continue
                face = photo.faces.take([0])
                landmarks.append(face.landmarks[0])
                box = reduce(face, photo.reduction).boxes[0]
                for kind, scales in SCALES.items():
                    for s, scale in enumerate(scales):
                        if camera and s != 1:
                            continue
                        picture = cut(photo.image, box, scale, CUT_SIZE)
                        views = [centre(picture)]
                        if training:
                            decoded = _jpeg_roundtrip(picture)
                            views = [centre_crop(decoded, CUT_SIZE, INPUT_SIZE)]
                            views += [
                                augment_texture(decoded, rng, INPUT_SIZE, camera=0.0) for _ in range(copies)
                            ]
                        if camera:
                            views = [
                                augment_texture(decoded, rng, INPUT_SIZE, camera=1.0) for _ in range(copies)
                            ]
                        for c, view in enumerate(views):
                            rows["burst"].append(b)
                            rows["frame"].append(f)
                            rows["kind"].append(kind)
                            rows["scale"].append(s)
                            rows["copy"].append(c + CAMERA_COPY if camera else c)
                            batch.add(view, len(rows["burst"]) - 1, s == 1)
                if len(batch.crops) >= 64:
                    batch.flush()
            result = check_burst(landmarks, geometry)
            bursts.append(
                {
                    "name": seq.name,
                    "species": seq.species,
                    "faces": sum(x is not None for x in landmarks),
                    "answer": result.answer,
                    "flat": result.verdict is PadVerdict.ATTACK,
                    "geometry": result.score,
                    "landmarks": [None if x is None else np.asarray(x).tolist() for x in landmarks],
                }
            )
            print(
                f"{name}: {b + 1} bursts, {len(rows['burst'])} crops, {time.perf_counter() - start:.0f} s",
                end="\r",
            )
        batch.flush()
        print()
        if camera:
            np.savez(
                out / f"{name}_camera.npz",
                **{k: np.asarray(v) for k, v in rows.items()},
                features=np.concatenate(batch.features),
            )
            continue
        np.savez(
            out / f"{name}.npz",
            burst=np.asarray(rows["burst"]),
            frame=np.asarray(rows["frame"]),
            kind=np.asarray(rows["kind"]),
            scale=np.asarray(rows["scale"]),
            copy=np.asarray(rows["copy"]),
            features=np.concatenate(batch.features),
            mid=np.concatenate(batch.mids),
            mid_rows=np.asarray(batch.mid_rows),
        )
        (out / f"{name}.json").write_text(json.dumps(bursts))


def embed(sets: dict[str, Path], out: Path) -> None:
    """Per held-out set ``<name>_embeddings.npz``: per burst and frame the largest face's embedding (nan rows:
    no face), for the door's mixed-faces check (``score``)."""
    faces = InProcessFaces(model_repository())
    for name, root in sets.items():
        bona, attacks = find_sequences(root)
        table = []
        for seq in [*bona, *(s for v in attacks.values() for s in v)]:
            rows = np.full((FRAMES_PER_BURST, 128), np.nan, np.float32)
            for f, path in enumerate(_even(seq.frames, FRAMES_PER_BURST)):
                photo = faces.find_faces(path.read_bytes())
                if len(photo.faces):
                    rows[f] = faces.embed(photo)
            table.append(rows)
        np.savez(out / f"{name}_embeddings.npz", embeddings=np.stack(table))


def subset(source: Path, out: Path, per_kind: int, seed: int) -> None:
    """``out``: a labelled set of symbolic links to ``per_kind`` bona fide and ``per_kind`` attack sequences of
    ``source`` (the attacks round robin over the species, each shuffled with ``seed``): what ``pad-train``
    is given in the stack run."""
    rng = np.random.default_rng(seed)
    bona, attacks = find_sequences(source)
    chosen = [bona[i] for i in rng.permutation(len(bona))[:per_kind]]
    queues = [[v[i] for i in rng.permutation(len(v))] for _, v in sorted(attacks.items())]
    while sum(1 for c in chosen if c.species != BONA_FIDE) < per_kind and any(queues):
        for q in queues:
            if q and sum(1 for c in chosen if c.species != BONA_FIDE) < per_kind:
                chosen.append(q.pop())
    for seq in chosen:
        link = out / seq.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((source / seq.name).resolve(), target_is_directory=True)
    print(f"{out}: {per_kind} bona fide, {len(chosen) - per_kind} attack sequences")
