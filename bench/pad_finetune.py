"""Fine-tuning the last MobileNetV2 blocks for the passive check, against the frozen features the ``pad``
recipe trains on (``bench/pad_passive.py``'s draws and held-out sets; its ``extract`` step keeps the
activations these blocks take).

    python bench/pad_passive.py finetune /tmp/padm/features --size 16 --repeats 3
"""

from __future__ import annotations

import copy as copying
from pathlib import Path

import numpy as np
from pad_extract import Backbone
from pad_passive import (
    DEFAULT,
    LABELS,
    WEIGHT_DECAY,
    Set,
    balanced_weights,
    calibrated,
    draw,
    fit,
    rates,
    score,
    select,
    train,
)

from fovea.classify.core.training import Head


def _tuned_features(block: object, mid: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Pooled features through ``block`` of the mid activations of ``rows`` (others zero), ``(n, 1280)``."""
    import torch

    out = np.zeros((n, 1280), np.float32)
    with torch.inference_mode():
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            x = torch.from_numpy(mid[chunk].astype(np.float32))
            out[chunk] = block(x).mean((2, 3)).numpy()  # type: ignore[operator]
    return out


def finetune(
    folder: Path, size: int, repeats: int, evals: list[str], epochs: int = 8, block_lr: float = 1e-4
) -> dict:
    """Frozen features against the last two blocks (``features.17``, ``features.18``) fine-tuned with the
    head, warm-started from the frozen head, on the same draws; BatchNorm statistics kept."""
    import torch

    last = Backbone().last_blocks()
    train_set = Set.load(folder, "train")
    eval_sets = {name: Set.load(folder, name) for name in evals}

    def mid_of(s: Set) -> tuple[np.ndarray, np.ndarray]:
        """The mid activations indexed by row (rows without one: zeros) and the rows that have one."""
        index = s.rows["mid_rows"]
        full = np.zeros((len(s.rows["burst"]), *s.rows["mid"].shape[1:]), np.float16)
        full[index] = s.rows["mid"]
        return full, index

    train_mid, _ = mid_of(train_set)
    table: dict = {}
    for k in range(repeats):
        rng = np.random.default_rng(1000 * size + k)
        chosen = draw(train_set, size, rng)
        sel = select(train_set, chosen, DEFAULT, k)
        frozen, _ = fit(train_set.rows["features"], sel, k)
        torch.manual_seed(k)
        block = copying.deepcopy(last).eval()  # BN statistics stay
        linear = torch.nn.Linear(1280, len(LABELS))
        start_head, _ = train(train_set, chosen, DEFAULT, k)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(start_head.weight.T.copy()))
            linear.bias.copy_(torch.from_numpy(start_head.bias.copy()))
        optimiser = torch.optim.Adam(
            [{"params": block.parameters(), "lr": block_lr}, {"params": linear.parameters(), "lr": 1e-3}],
            weight_decay=WEIGHT_DECAY,
        )
        rows = sel.rows[sel.train]
        targets = torch.from_numpy(sel.targets[sel.train])
        weights = torch.from_numpy(
            balanced_weights([LABELS[t].split("-", 1)[0] for t in sel.targets[sel.train]]).astype(np.float32)
        )
        order_rng = np.random.default_rng(k)
        for _ in range(epochs):
            for batch in np.array_split(order_rng.permutation(len(rows)), max(1, len(rows) // 32)):
                x = torch.from_numpy(train_mid[rows[batch]].astype(np.float32))
                loss = (
                    torch.nn.functional.cross_entropy(
                        linear(block(x).mean((2, 3))), targets[batch], reduction="none"
                    )
                    * weights[batch]
                ).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        block.eval()
        tuned_train = _tuned_features(block, train_mid, sel.rows[sel.val], len(train_set.rows["burst"]))
        head = Head(linear.weight.detach().numpy().T.copy(), linear.bias.detach().numpy().copy())
        val_groups = [g for g, v in zip(sel.groups, sel.val, strict=True) if v]
        tuned, _ = calibrated(head, tuned_train[sel.rows[sel.val]], list(sel.labels[sel.val]), val_groups)
        for ename, eset in eval_sets.items():
            emid, erows = mid_of(eset)
            efeats = _tuned_features(block, emid, erows, len(eset.rows["burst"]))
            for name, h, feats in (("frozen", frozen, None), ("fine-tuned", tuned, efeats)):
                scored = score(eset, h, DEFAULT, feats)
                for row in ("passive", "door"):
                    table.setdefault(name, {}).setdefault(f"{ename} {row}", []).append(rates(scored, row))
    for name, rows_ in table.items():
        for key, values in rows_.items():
            line = "  ".join(
                f"{m} {np.mean([v[m] for v in values]):.3f} [{np.min([v[m] for v in values]):.3f}-"
                f"{np.max([v[m] for v in values]):.3f}]"
                for m in ("APCER", "BPCER", "ACER")
            )
            print(f"{name:<11} N={size:<3} {key:<14} {line}")
    return table
