"""The passive check a site trains (``fovea faces pad-train``) measured in process on rendered sets: a learning
curve (passive and door rates against bursts per kind), crop variants, and fine-tuning the last MobileNetV2
block.

Two steps. ``extract`` runs every frame of each labelled set through the faces service's own detector
(:class:`fovea.faces.tools.inprocess.InProcessFaces`), cuts the largest face's crops at each crop scale as the
door cuts them (:func:`fovea.faces.access.core.passive.cut`), and keeps MobileNetV2's pooled ``FEATURES``
(our torch port: the served graph's parity-checked source) and, for the default scales, ``features.16``'s
output (the input of the last two blocks, for fine-tuning). Training crops go through JPEG 95 and the
classify worker's decode and centre crop, with ``--copies`` augmented copies each (``augment_texture``),
exactly as a ``pad`` job's crops do; held-out crops are the centre squares the door sends. The geometry
check's answer of each held-out burst is kept too.

``curve``, ``variants`` and ``finetune`` then train as the classify worker's ``pad`` recipe does
(``fovea.classify.trainer.Trainer``: split by burst, 15% held out, at least 2 of each kind; class-balanced
softmax head, 30 epochs, Adam 0.01, weight decay 1e-4; the bias calibrated on the held-out bursts) on
subsets of the training set's bursts (``N`` bona fide and ``N`` attack bursts, the attacks spread over the
species; the frames per burst capped as ``pad-train`` caps them, 1000 crops in all) and report, on each
held-out set, the passive check's and the door's (``pad: require``, ``pad_undetermined: passive``,
``passive: require``) APCER (worst species), BPCER and failures to acquire, mean and range over
``--repeats`` draws.

    python bench/pad_passive.py subset /tmp/padm/train /tmp/padm/train32 --per-kind 32   # the stack run's set
    python bench/pad_passive.py extract --train /tmp/padm/train --eval /tmp/padm/eval1 --eval /tmp/padm/eval2 \\
        --out /tmp/padm/features
    python bench/pad_passive.py curve /tmp/padm/features --sizes 4,8,16,32 --repeats 5
    python bench/pad_passive.py variants /tmp/padm/features --size 16 --repeats 5
    python bench/pad_passive.py finetune /tmp/padm/features --size 16 --repeats 3
"""

# ruff: noqa: E402 (the path is set before the imports: see BENCH)
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# bench/http.py would shadow the standard library's http (prometheus_client imports http.server): the bench
# folder goes last on the path.
BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(BENCH)] + [BENCH]

import numpy as np
from PIL import Image

from fovea.classify.core.classify import centre_crop
from fovea.classify.core.pad_training import augment_texture, balanced_weights, group_split
from fovea.classify.core.training import Head, predict, train_head
from fovea.classify.trainer import Trainer
from fovea.common.paths import model_repository
from fovea.contracts.pad_classifier import (
    ATTACK,
    BONA_FIDE,
    CONTEXT_SCALE,
    CUT_SIZE,
    FACE_SCALE,
    INPUT_SIZE,
    LABELS,
    burst_logit,
    burst_score,
    crop_logits,
)
from fovea.faces.access.core.access import burst_spread
from fovea.faces.access.core.pad import GeometrySettings, PadVerdict, check_burst
from fovea.faces.access.core.passive import centre, cut
from fovea.faces.recognition.core.faces import reduce
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import _even, find_sequences

SCALES = {"face": (1.0, FACE_SCALE, 2.0), "context": (2.2, CONTEXT_SCALE, 4.5)}  # the default in the middle
MATCH_THRESHOLD = 0.6  # the face embedder's default (DISTANCE_THRESHOLD): the door's mixed-faces check
SHORT = 5  # frames of a short burst (0.5 s at 10 fps: the stage video's)
MAX_CROPS = 1000  # pad-train's budget (the classify service's FOVEA_CLASSIFY_MAX_TRAINING_IMAGES)
FRAMES_PER_BURST = 8  # pad-train's default
EPOCHS, LEARNING_RATE, WEIGHT_DECAY, VALIDATION = 30, 0.01, 1e-4, 0.15  # the classify service's defaults


def _jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


MID = "/features/features.16/Add_output_0"  # features.16's output, (N, 160, 7, 7): the last blocks' input


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
                            views += [augment_texture(decoded, rng, INPUT_SIZE) for _ in range(copies)]
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


@dataclass
class Set:
    """One extracted set: crop rows and burst records."""

    rows: dict[str, np.ndarray]
    bursts: list[dict]

    @classmethod
    def load(cls, folder: Path, name: str) -> Set:
        with np.load(folder / f"{name}.npz") as z:
            rows = {k: z[k] for k in z.files}
        extra = folder / f"{name}_camera.npz"
        if extra.exists():  # camera-jittered copies: rows after the others (mid_rows stay valid)
            with np.load(extra) as z:
                for k in z.files:
                    rows[k] = np.concatenate([rows[k], z[k]])
        bursts = json.loads((folder / f"{name}.json").read_text())
        faces = folder / f"{name}_embeddings.npz"
        if faces.exists():
            with np.load(faces) as z:
                for burst, embeddings in zip(bursts, z["embeddings"], strict=True):
                    burst["embeddings"] = embeddings
        return cls(rows, bursts)

    def mask(self, *, scales: dict[str, int], copies: tuple[int, ...]) -> np.ndarray:
        """Rows of the given scale index per crop kind (a kind left out: not used) and copy index in
        ``copies``."""
        r = self.rows
        keep = np.zeros(len(r["burst"]), bool)
        for kind, s in scales.items():
            keep |= (r["kind"] == kind) & (r["scale"] == s)
        return keep & np.isin(r["copy"], copies)


@dataclass(frozen=True)
class Variant:
    scales: dict[str, int]  # per crop kind the scale index (SCALES)
    copies: tuple[int, ...] = (0, 1, 2)  # the centre square (0) and the augmented copies trained on
    frames_per_burst: int = FRAMES_PER_BURST
    max_crops: int = MAX_CROPS
    weight_decay: float = WEIGHT_DECAY
    epochs: int = EPOCHS


DEFAULT = Variant({"face": 1, "context": 1})


def draw(train: Set, n: int, rng: np.random.Generator) -> list[int]:
    """``n`` bona fide bursts and ``n`` attack bursts (round robin over the species, each species shuffled)
    with a face, drawn with ``rng``."""
    usable = [i for i, b in enumerate(train.bursts) if b["faces"] > 0]
    bona = [i for i in usable if train.bursts[i]["species"] == BONA_FIDE]
    species: dict[str, list[int]] = {}
    for i in usable:
        if train.bursts[i]["species"] != BONA_FIDE:
            species.setdefault(train.bursts[i]["species"], []).append(i)
    if n > len(bona) or n > sum(len(v) for v in species.values()):
        raise ValueError(f"{n} bursts asked, {len(bona)} bona fide in the training set")
    queues = [list(rng.permutation(v)) for v in species.values()]
    attacks: list[int] = []
    while len(attacks) < n:
        for q in queues:
            if q and len(attacks) < n:
                attacks.append(int(q.pop()))
    return [int(i) for i in rng.permutation(bona)[:n]] + attacks


@dataclass(frozen=True)
class Selection:
    """The crops of one training job: row indices into the training set, their labels and class ids, which
    rows train (centre squares and copies of the training bursts) and which calibrate (centre squares of the
    held-out bursts), and each row's burst."""

    rows: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    train: np.ndarray
    val: np.ndarray
    groups: list[str]


def select(train_set: Set, chosen: list[int], variant: Variant, seed: int) -> Selection:
    """The rows a ``pad`` job on the ``chosen`` bursts trains on, split by burst as the worker splits."""
    r = train_set.rows
    per_burst = max(
        1, min(variant.frames_per_burst, variant.max_crops // (len(variant.scales) * len(chosen)))
    )
    keep = train_set.mask(scales=variant.scales, copies=variant.copies)
    rows = []
    for b in chosen:
        mine = keep & (r["burst"] == b)
        frames = sorted(set(r["frame"][mine].tolist()))
        use = set(_even(frames, per_burst))  # type: ignore[arg-type]
        rows += [int(i) for i in np.flatnonzero(mine) if r["frame"][i] in use]
    rows_a = np.asarray(rows)
    kind_of = {b: BONA_FIDE if train_set.bursts[b]["species"] == BONA_FIDE else ATTACK for b in chosen}
    train_groups, _ = group_split({str(b): kind_of[b] for b in chosen}, VALIDATION, seed)
    bursts = r["burst"][rows_a]
    labels = np.array([f"{kind_of[int(b)]}-{k}" for b, k in zip(bursts, r["kind"][rows_a], strict=True)])
    in_train = np.array([str(int(b)) in train_groups for b in bursts])
    return Selection(
        rows_a,
        labels,
        np.array([LABELS.index(x) for x in labels]),
        in_train,
        ~in_train & (r["copy"][rows_a] == 0),
        [str(int(b)) for b in bursts],
    )


def fit(features: np.ndarray, sel: Selection, seed: int, variant: Variant | None = None) -> tuple[Head, dict]:
    """The head on the selection's rows of ``features`` (aligned with the training set's rows), calibrated."""
    x_train, y_train = features[sel.rows[sel.train]], sel.targets[sel.train]
    x_val, y_val = features[sel.rows[sel.val]], sel.targets[sel.val]
    weights = balanced_weights([LABELS[t].split("-", 1)[0] for t in y_train])
    head, _ = train_head(
        x_train,
        y_train,
        x_val,
        y_val,
        len(LABELS),
        epochs=EPOCHS if variant is None else variant.epochs,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY if variant is None else variant.weight_decay,
        seed=seed,
        weights=weights,
    )
    return Trainer.calibrated(
        head, x_val, list(sel.labels[sel.val]), [g for g, v in zip(sel.groups, sel.val, strict=True) if v]
    )


def train(train_set: Set, chosen: list[int], variant: Variant, seed: int) -> tuple[Head, dict]:
    """The ``pad`` recipe on the chosen bursts (``Trainer``'s steps, in process)."""
    return fit(train_set.rows["features"], select(train_set, chosen, variant, seed), seed, variant)


def score(
    eval_set: Set, head: Head, variant: Variant, features: np.ndarray | None = None, frames: int = 0
) -> dict[str, dict[str, float]]:
    """Per burst the passive score and the door's outcome (``bona_fide`` / ``attack`` / ``fta``);
    ``features``: instead of the extracted ones (a fine-tuned backbone's), aligned with the set's rows;
    ``frames``: only the first ``frames`` frames of each burst (0 = all; the geometry check run again)."""
    r = eval_set.rows
    feats = r["features"] if features is None else features
    keep = eval_set.mask(scales=variant.scales, copies=(0,))
    if frames:
        keep &= r["frame"] < frames
    logits = np.full(len(r["burst"]), np.nan)
    rows = np.flatnonzero(keep)
    logits[rows] = crop_logits(predict(head, feats[rows]), r["kind"][rows])
    out = {}
    for b, burst in enumerate(eval_set.bursts):
        mine = rows[r["burst"][rows] == b]
        passive = burst_score(burst_logit(logits[mine], r["frame"][mine])) if len(mine) else math.nan
        flat = burst["flat"]
        if frames:
            marks = [None if x is None else np.asarray(x) for x in burst["landmarks"][:frames]]
            flat = check_burst(marks, GeometrySettings()).verdict is PadVerdict.ATTACK
        spread = 0.0
        if "embeddings" in burst:  # the door's mixed_faces: faces as far apart as the match threshold
            e = burst["embeddings"][: frames or None]
            spread = burst_spread(e[np.isfinite(e).all(axis=1)])
        if burst["faces"] == 0 or not np.isfinite(passive):
            door = "fta"
        elif flat or spread >= MATCH_THRESHOLD:
            door = ATTACK
        else:
            door = BONA_FIDE if passive >= 0.5 else ATTACK
        out[burst["name"]] = {"passive": passive, "door": door, "species": burst["species"]}
    return out


def rates(scored: dict[str, dict], row: str) -> dict[str, float]:
    """APCER per species and worst, BPCER, ACER, failures to acquire for the ``passive`` or ``door`` row."""
    species = sorted({s["species"] for s in scored.values()})
    out: dict[str, float] = {}
    fta = 0
    for sp in species:
        values = [s for s in scored.values() if s["species"] == sp]
        if row == "door":
            judged = [s["door"] for s in values if s["door"] != "fta"]
            fta += len(values) - len(judged)
            said_bona = [d == BONA_FIDE for d in judged]
        else:
            judged = [s["passive"] for s in values if np.isfinite(s["passive"])]
            fta += len(values) - len(judged)
            said_bona = [p >= 0.5 for p in judged]
        rate = float(np.mean(said_bona)) if said_bona else math.nan
        out["BPCER" if sp == BONA_FIDE else f"APCER {sp}"] = 1 - rate if sp == BONA_FIDE else rate
    out["APCER"] = max(v for k, v in out.items() if k.startswith("APCER "))
    portraits = sorted(
        {n.split("/")[-1].split("-")[0] for n, v in scored.items() if v["species"] == BONA_FIDE}
    )
    for person in portraits:  # BPCER per portrait (bona_fide/<portrait>-<k>)
        mine = [
            v
            for n, v in scored.items()
            if v["species"] == BONA_FIDE and n.split("/")[-1].startswith(person + "-")
        ]
        said = [
            (
                v["door"]
                if row == "door"
                else (
                    "fta" if not np.isfinite(v["passive"]) else (BONA_FIDE if v["passive"] >= 0.5 else ATTACK)
                )
            )
            for v in mine
        ]
        said = [x for x in said if x != "fta"]
        out[f"BPCER {person}"] = float(np.mean([x != BONA_FIDE for x in said])) if said else math.nan
    out["ACER"] = (out["APCER"] + out["BPCER"]) / 2
    out["FTA"] = fta
    return out


def run(folder: Path, sizes: list[int], repeats: int, variants: dict[str, Variant], evals: list[str]) -> dict:
    train_set = Set.load(folder, "train")
    eval_sets = {name: Set.load(folder, name) for name in evals}
    table: dict = {}
    for vname, variant in variants.items():
        for n in sizes:
            draws: dict[str, list[dict]] = {}
            for k in range(repeats):
                rng = np.random.default_rng(1000 * n + k)
                chosen = draw(train_set, n, rng)
                head, calibration = train(train_set, chosen, variant, seed=k)
                for ename, eset in eval_sets.items():
                    for frames in (0, SHORT):
                        scored = score(eset, head, variant, frames=frames)
                        for row in ("passive", "door"):
                            key = f"{ename}{'/' + str(frames) if frames else ''} {row}"
                            draws.setdefault(key, []).append(rates(scored, row))
            for key, values in draws.items():
                summary = {
                    m: (
                        float(np.mean([v[m] for v in values])),
                        float(np.min([v[m] for v in values])),
                        float(np.max([v[m] for v in values])),
                    )
                    for m in values[0]
                }
                table.setdefault(vname, {}).setdefault(n, {})[key] = summary
                print(
                    f"{vname:<14} N={n:<3} {key:<14} "
                    + "  ".join(
                        f"{m} {a:.3f} [{lo:.3f}-{hi:.3f}]"
                        for m, (a, lo, hi) in summary.items()
                        if m in ("APCER", "BPCER", "ACER", "FTA") or m.startswith("BPCER ")
                    )
                )
    return table


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("--train", type=Path, required=True)
    ex.add_argument("--eval", type=Path, action="append", default=[])
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--copies", type=int, default=2)
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--camera", action="store_true", help="only camera-jittered copies of the training set")
    sb = sub.add_parser("subset", help="symbolic links to N bursts of each kind (what pad-train is given)")
    sb.add_argument("source", type=Path)
    sb.add_argument("out", type=Path)
    sb.add_argument("--per-kind", type=int, default=32)
    sb.add_argument("--seed", type=int, default=32)
    em = sub.add_parser("embed", help="the held-out sets' face embeddings (the door's mixed-faces check)")
    em.add_argument("--eval", type=Path, action="append", default=[])
    em.add_argument("--out", type=Path, required=True)
    for name in ("curve", "variants", "finetune"):
        p = sub.add_parser(name)
        p.add_argument("features", type=Path)
        p.add_argument(
            "--eval", default="", help="comma-separated held-out sets (default: every one extracted)"
        )
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--json", type=Path, default=None)
        if name == "curve":
            p.add_argument("--sizes", default="4,8,16,32")
        else:
            p.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    if args.command == "subset":
        subset(args.source, args.out, args.per_kind, args.seed)
        return
    if args.command == "embed":
        embed({p.name: p for p in args.eval}, args.out)
        return
    if args.command == "extract":
        sets = {"train": args.train, **{p.name: p for p in args.eval}}
        extract(sets, args.out, args.copies, args.seed, camera=args.camera)
        return
    evals = [e for e in args.eval.split(",") if e] or sorted(
        p.stem for p in args.features.glob("*.npz") if p.stem != "train" and "_" not in p.stem
    )
    if args.command == "curve":
        table = run(
            args.features, [int(s) for s in args.sizes.split(",")], args.repeats, {"default": DEFAULT}, evals
        )
    elif args.command == "variants":
        variants: dict[str, Variant] = {
            "default": DEFAULT,
            "face only": Variant({"face": 1}),
            "context only": Variant({"context": 1}),
            "tight 1.0/2.2": Variant({"face": 0, "context": 0}),
            "wide 2.0/4.5": Variant({"face": 2, "context": 2}),
            "no copies": Variant({"face": 1, "context": 1}, copies=(0,)),
            "camera copies": Variant({"face": 1, "context": 1}, copies=(0, CAMERA_COPY, CAMERA_COPY + 1)),
            "half camera": Variant({"face": 1, "context": 1}, copies=(0, 1, CAMERA_COPY)),
            "all frames": Variant({"face": 1, "context": 1}, max_crops=100_000),
            "decay 1e-2": Variant({"face": 1, "context": 1}, weight_decay=1e-2),
            "decay 1e-1": Variant({"face": 1, "context": 1}, weight_decay=1e-1),
            "10 epochs": Variant({"face": 1, "context": 1}, epochs=10),
        }
        table = run(args.features, [args.size], args.repeats, variants, evals)
    else:
        from pad_finetune import finetune  # bench/pad_finetune.py

        table = finetune(args.features, args.size, args.repeats, evals)
    if args.json is not None:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
