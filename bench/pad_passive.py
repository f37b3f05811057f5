"""The passive check a site trains (``fovea faces pad-train``) measured in process on rendered sets: a learning
curve (passive and door rates against bursts per kind), crop variants, and fine-tuning the last MobileNetV2
block. It trains on the pooled ``FEATURES``: the ``pad`` recipe before 2026-12-07, which trains on ``TEXTURE``
now (``bench/pad_layers.py`` compares the two; bench/README.md).

Two steps. ``extract`` runs every frame of each labelled set through the faces service's own detector
(:class:`fovea.faces.tools.inprocess.InProcessFaces`), cuts the largest face's crops at each crop scale as the
door cuts them (:func:`fovea.faces.access.core.passive.cut`), and keeps MobileNetV2's pooled ``FEATURES``
(our torch port: the served graph's parity-checked source) and, for the default scales, ``features.16``'s
output (the input of the last two blocks, for fine-tuning). Training crops go through JPEG 95 and the
classify worker's decode and centre crop, with ``--copies`` augmented copies each (``augment_texture``),
exactly as a ``pad`` job's crops do; held-out crops are the centre squares the door sends. The geometry
check's answer of each held-out burst is kept too.

``curve``, ``variants`` and ``finetune`` then train as the classify worker's ``pad`` recipe does
(``fovea.classify.trainer.Trainer`` as it was before cross-fitting: split by burst, 15% held out, at least 2
of each kind; class-balanced
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
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from pad_extract import CAMERA_COPY, FRAMES_PER_BURST, embed, extract, subset

from fovea.classify.core.pad_training import balanced_weights, pad_calibration, shift_bias
from fovea.classify.core.training import Head, predict, train_head
from fovea.contracts.pad_classifier import (
    ATTACK,
    BONA_FIDE,
    LABELS,
    burst_logit,
    burst_score,
    crop_logits,
)
from fovea.faces.access.core.access import burst_spread
from fovea.faces.access.core.pad import GeometrySettings, PadVerdict, check_burst
from fovea.faces.tools.pad_eval import _even

MATCH_THRESHOLD = 0.6  # the face embedder's default (DISTANCE_THRESHOLD): the door's mixed-faces check
SHORT = 5  # frames of a short burst (0.5 s at 10 fps: the stage video's)
MAX_CROPS = 1000  # pad-train's budget (the classify service's FOVEA_CLASSIFY_MAX_TRAINING_IMAGES)
EPOCHS, LEARNING_RATE, WEIGHT_DECAY, VALIDATION = 30, 0.01, 1e-4, 0.15  # the classify service's defaults


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
    train_groups, _ = held_out_split({str(b): kind_of[b] for b in chosen}, VALIDATION, seed)
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


def held_out_split(kinds: dict[str, str], fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """The worker's split of bursts before cross-fitting (2026-12-07): ``round(fraction * n)`` bursts of
    each kind held out, at least 2 and at least one left, drawn with ``seed``; kept here so that this
    bench reproduces the figures measured with it."""
    rng = np.random.default_rng(seed)
    train: set[str] = set()
    val: set[str] = set()
    for kind in (BONA_FIDE, ATTACK):
        members = sorted(g for g, k in kinds.items() if k == kind)
        order = [members[i] for i in rng.permutation(len(members))]
        n_val = min(max(2, round(fraction * len(members))), len(members) - 1)
        val.update(order[:n_val])
        train.update(order[n_val:])
    return train, val


def calibrated(head: Head, x_val: np.ndarray, labels: list[str], groups: list[str]) -> tuple[Head, dict]:
    """``head`` with its bona fide bias shifted so that the burst threshold chosen on ``x_val``'s bursts
    is 0 (``pad_training.pad_calibration``), and the figures there."""
    found, figures = pad_calibration(predict(head, x_val), labels, groups)
    return Head(head.weight, shift_bias(head.bias, -found.threshold)), figures


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
    return calibrated(
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
