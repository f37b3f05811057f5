"""Which of the backbone's layers a passive check should be trained on: a logistic head per layer's features,
trained on one rendered set and scored per burst on another that holds a person the training never saw.

``extract`` runs every other frame of each burst of a labelled set (``pad-eval``'s layout) through the faces
service's own detector, cuts the door's face and context crops (:func:`fovea.faces.access.core.passive.cut`)
and keeps, per crop, the served MobileNetV2's pooled ``FEATURES`` (``final``) and the per-channel spatial mean
and standard deviation of the outputs of ``features.3``, ``.6``, ``.10``, ``.13`` and ``.16``. ``compare``
fits, per layer (face and context crops side by side), a class-balanced logistic regression on standardised
features (scikit-learn) and prints, on the held-out set, per portrait the bona fide bursts whose mean log-odds
is above 0, the attack bursts above 0, and the unseen portrait's bona fide bursts above the highest attack.

    fovea faces pad-synth /tmp/padx/train --seed 101 --per-photo 11 --talking 4 --frames 8 \\
        --photos obama,obama3,biden --species $S --scenes china,coffee,dog,horses --screens phone
    fovea faces pad-synth /tmp/padx/eval --seed 202 --per-photo 6 --talking 3 --frames 8 \\
        --photos obama2,obama2@0.338,astronaut --species $S --scenes flower,chelsea,rocket,giraffe
    python bench/pad_passive.py subset /tmp/padx/train /tmp/padx/train32 --per-kind 32 --seed 32
    python bench/pad_layers.py extract /tmp/padx/train32 /tmp/padx/train32.npz
    python bench/pad_layers.py extract /tmp/padx/eval /tmp/padx/eval.npz
    python bench/pad_layers.py compare /tmp/padx/train32.npz /tmp/padx/eval.npz --unseen astronaut

``reshoot`` writes a copy of a labelled set as another camera would have taken it, one camera per burst:
``soft`` (blur 0.6-1.2 px, 0.55-0.8 of the resolution and back, sensor noise 2-5 levels, JPEG 55-80: a cheap
webcam) or ``sharp`` (a phone's unsharp mask, radius 2, 120 %, noise 0-1, JPEG 90-96); then ``fovea faces
pad-eval COPY --passive NAME`` (README "Measured on renders, texture features", "Another camera"):

    python bench/pad_layers.py reshoot /tmp/padx/eval /tmp/padx/eval_soft --camera soft
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from fovea.common.paths import model_repository
from fovea.contracts.pad_classifier import BONA_FIDE, CONTEXT_SCALE, FACE_SCALE

BLOCKS = (3, 6, 10, 13, 16)
LAYERS = ("final", *(f"f{k}" for k in BLOCKS))


def extract(root: Path, out: Path) -> None:
    import onnx
    import onnxruntime as ort

    from fovea.faces.access.core.passive import centre, cut
    from fovea.faces.tools.inprocess import InProcessFaces
    from fovea.faces.tools.pad_eval import find_sequences

    model = onnx.load(str(model_repository() / "classifier_imagenet" / "1" / "model.onnx"))
    names = [f"/features.{k}/Add_output_0" for k in BLOCKS]  # the served graph's node names
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    faces = InProcessFaces(model_repository())
    bona, attacks = find_sequences(root)
    rows: dict[str, list[np.ndarray]] = {f"{c}_{k}": [] for c in ("face", "context") for k in LAYERS}
    meta: list[tuple[int, str, str]] = []
    for index, seq in enumerate(bona + [s for v in attacks.values() for s in v]):
        portrait = seq.name.split("/")[-1].rsplit("-", 1)[0].removesuffix("-talk")
        for frame in seq.frames[::2]:
            pixels = np.asarray(Image.open(frame).convert("RGB"))
            found = faces.detect(pixels)
            if len(found.faces) == 0:
                continue
            box = found.faces.boxes[0]
            crops = np.stack([centre(cut(pixels, box, FACE_SCALE)), centre(cut(pixels, box, CONTEXT_SCALE))])
            pooled, *maps = session.run(["FEATURES", *names], {"IMAGE": crops})
            for c, crop in enumerate(("face", "context")):
                rows[f"{crop}_final"].append(pooled[c])
                for k, fmap in zip(BLOCKS, maps, strict=True):
                    rows[f"{crop}_f{k}"].append(np.concatenate([fmap[c].mean((1, 2)), fmap[c].std((1, 2))]))
            meta.append((index, seq.species, portrait))
    np.savez(
        out,
        **{k: np.stack(v) for k, v in rows.items()},
        burst=np.array([m[0] for m in meta]),
        species=np.array([m[1] for m in meta]),
        portrait=np.array([m[2] for m in meta]),
    )
    print(f"{out}: {len(meta)} frames of {len({m[0] for m in meta})} bursts")


def compare(train: Path, held_out: Path, unseen: str, c: float) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr, ev = np.load(train), np.load(held_out)
    y = (tr["species"] == BONA_FIDE).astype(int)
    portraits = sorted({str(p) for p in ev["portrait"][ev["species"] == BONA_FIDE]})
    print(
        f"{len(y)} training frames; C={c}; bona fide bursts passed per portrait; attacks passed; {unseen}'s"
    )
    print("bona fide bursts above every attack burst")
    frames = {int(b): np.flatnonzero(ev["burst"] == b) for b in np.unique(ev["burst"])}  # rows per burst
    bursts = list(frames)
    # each burst's portrait if it is bona fide, None for an attack
    who = {
        b: str(ev["portrait"][r[0]]) if ev["species"][r[0]] == BONA_FIDE else None for b, r in frames.items()
    }
    for layer in LAYERS:
        cols = [f"face_{layer}", f"context_{layer}"]
        x, xe = np.concatenate([tr[k] for k in cols], 1), np.concatenate([ev[k] for k in cols], 1)
        scaler = StandardScaler().fit(x)
        head = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(scaler.transform(x), y)
        logit = head.decision_function(scaler.transform(xe))
        score = {b: float(logit[rows].mean()) for b, rows in frames.items()}
        bona = {p: [score[b] for b in bursts if who[b] == p] for p in portraits}
        attacks = [score[b] for b in bursts if who[b] is None]
        passed = "  ".join(f"{p} {sum(s > 0 for s in v)}/{len(v)}" for p, v in bona.items())
        above = sum(s > max(attacks) for s in bona.get(unseen, []))
        print(
            f"  {layer:6s} {x.shape[1]:5d} features  {passed}  attacks {sum(s > 0 for s in attacks)}/{len(attacks)}"
            f"  {unseen} above {above}/{len(bona.get(unseen, []))}"
        )


def reshoot(src: Path, dst: Path, camera: str, seed: int) -> None:
    from PIL import ImageFilter

    from fovea.faces.tools.pad_eval import find_sequences

    rng = np.random.default_rng(seed)
    bona, attacks = find_sequences(src)  # pad-eval's layouts and frame order
    bursts = sorted(bona + [s for v in attacks.values() for s in v], key=lambda s: s.name)
    for burst in bursts:
        out = dst / burst.name
        out.mkdir(parents=True, exist_ok=True)
        if camera == "soft":
            blur, scale = rng.uniform(0.6, 1.2), rng.uniform(0.55, 0.8)
            quality, noise = int(rng.integers(55, 80)), rng.uniform(2, 5)
        else:
            blur, scale, quality, noise = 0.0, 1.0, int(rng.integers(90, 97)), rng.uniform(0, 1)
        for frame in burst.frames:
            image = Image.open(frame).convert("RGB")
            if blur:
                image = image.filter(ImageFilter.GaussianBlur(blur))
            if camera == "sharp":
                image = image.filter(ImageFilter.UnsharpMask(radius=2, percent=120, threshold=2))
            if scale < 1:
                w, h = image.size
                small = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
                image = small.resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, np.float32) + rng.normal(0, noise, (image.size[1], image.size[0], 3))
            Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(
                out / f"{frame.stem}.jpg", quality=quality
            )
    print(f"{dst}: {len(bursts)} bursts as a {camera} camera")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("extract")
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("train", type=Path)
    p.add_argument("held_out", type=Path)
    p.add_argument("--unseen", default="astronaut")
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    p = sub.add_parser("reshoot")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--camera", choices=("soft", "sharp"), required=True)
    p.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.command == "extract":
        extract(args.root, args.out)
    elif args.command == "reshoot":
        reshoot(args.src, args.dst, args.camera, args.seed)
    else:
        compare(args.train, args.held_out, args.unseen, args.c)


if __name__ == "__main__":
    main()
