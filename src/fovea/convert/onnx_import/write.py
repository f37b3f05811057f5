"""Writing the model directory: the import checked, planned, wrapped and moved into the repository."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from fovea.contracts.detector import SPEC_FILENAME, DetectorSpec
from fovea.convert.candidates_head import GRID_FAMILIES
from fovea.convert.onnx_import.card import render_model_card
from fovea.convert.onnx_import.options import ImportOptions, validate_model_name
from fovea.convert.onnx_import.paddledet import adapt_paddle, find_paddle, paddle_options
from fovea.convert.onnx_import.plan import plan_import
from fovea.convert.onnx_import.render import MODEL_PY, WEIGHTS_FILE
from fovea.convert.onnx_import.signature import (
    OnnxSignature,
    check_input,
    labels_from_metadata,
    probe,
    read_signature,
)
from fovea.convert.onnx_import.surgery import decode_in_graph, wrap_for_service


@dataclass(frozen=True)
class ImportResult:
    directory: Path
    spec: DetectorSpec
    warnings: list[str]
    layout: str = ""
    """Which layout the outputs were read as, and why (:func:`find_layout`)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _labels_for(
    options: ImportOptions, signature: OnnxSignature, source: Path
) -> tuple[ImportOptions, list[str]]:
    """``options`` with labels: the given ones (a warning when the file's own names differ), else the
    file's ``names`` metadata (:func:`labels_from_metadata`)."""
    embedded = labels_from_metadata(signature.metadata)
    if options.labels:
        if embedded is not None and embedded != options.labels:
            return options, [
                f"the labels given ({len(options.labels)}) differ from the {len(embedded)} names in "
                f"{source.name}'s metadata (first: {embedded[:3]}): check they are the model's classes, in order"
            ]
        return options, []
    if embedded is None:
        raise ValueError(f"{source.name} has no class names in its metadata: give --labels")
    return replace(options, labels=embedded), []


def _paddle_adapted(
    source: Path, signature: OnnxSignature, options: ImportOptions, staging: Path
) -> tuple[Path, OnnxSignature, ImportOptions, list[str]]:
    """A PaddleDetection export (:mod:`.paddledet`) adapted into ``staging``: the adapted graph's file,
    signature and options, and ``[how it was adapted, *warnings]``; anything else as it is, and ``[]``."""
    export = find_paddle(signature)
    if export is None:
        return source, signature, options, []
    options, warnings = paddle_options(options)
    input_size = check_input(replace(signature, inputs=(export.image,)), options.input_size)
    adapted = staging / "paddle.onnx"
    onnx.save(adapt_paddle(onnx.load(str(source)), export, input_size), str(adapted))
    return adapted, read_signature(adapted), options, [export.describe(), *warnings]


def import_onnx(
    source: Path,
    repository: Path,
    name: str,
    options: ImportOptions,
    *,
    force: bool = False,
    other_repositories: Sequence[Path] = (),
) -> ImportResult:
    """Validate ``source`` and write it as model ``name`` into ``repository`` (created if missing).

    The model directory is assembled beside its final place and moved in at the end, so a refused or
    failed import leaves the repository as it was.

    Args:
        source: the exported ``.onnx`` file.
        repository: the Triton model repository to add it to.
        name: model (directory) name.
        options: family, labels, preprocessing (see :class:`ImportOptions`).
        force: replace a model of that name in ``repository``.
        other_repositories: repositories Triton serves beside ``repository``; their names are taken.

    Raises:
        ValueError: see the package docstring (:mod:`fovea.convert.onnx_import`).
    """
    validate_model_name(name)
    if not source.is_file():
        raise ValueError(f"{source} is not a file")
    repository = repository.expanduser().resolve()
    for other in other_repositories:
        other = other.expanduser().resolve()
        if other != repository and (other / name).exists():
            raise ValueError(f"model name {name!r} is taken by {other / name}: choose another --name")
    target = repository / name
    if target.exists() and not force:
        raise ValueError(f"{target} already exists: pass --force to replace it")
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.import-", dir=repository))
    try:
        weights = staging / "1" / WEIGHTS_FILE
        weights.parent.mkdir()
        signature = read_signature(source)
        options, label_warnings = _labels_for(options, signature, source)
        graph, signature, options, paddle = _paddle_adapted(source, signature, options, staging)
        input_size = check_input(signature, options.input_size)
        probed = probe(graph, signature, input_size)
        plan = plan_import(name, source.name, signature, probed, options)
        if paddle:
            plan = replace(plan, layout=f"{paddle[0]}; {plan.layout}", warnings=[*paddle[1:], *plan.warnings])
        served = wrap_for_service(onnx.load(str(graph)), plan)
        if graph != source:
            graph.unlink()
        if plan.spec.family in GRID_FAMILIES and not options.raw_outputs:
            served, plan = decode_in_graph(served, plan, signature, probed, source.name)
        onnx.save(served, str(weights))
        (staging / "config.pbtxt").write_text(plan.config_pbtxt, encoding="utf-8")
        (staging / SPEC_FILENAME).write_text(plan.spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
        card = render_model_card(plan, source, _sha256(source), signature)
        (staging / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        (weights.parent / "model.py").write_text(MODEL_PY, encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return ImportResult(target, plan.spec, [*label_warnings, *plan.warnings], plan.layout)
