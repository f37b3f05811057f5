"""``fovea models import-onnx``: add a user's exported ONNX detector to a Triton model repository.

:func:`import_onnx` writes ``<repository>/<name>/``::

    config.pbtxt    Triton config: INPUT [H, W, 3] UINT8, one output per ONNX output (FP32; INT32 / INT64
                    for integer counts and class ids), batching
    fovea.json      the detector spec (head family, input size, preprocessing, labels) the service reads
    MODEL_CARD.md   where it came from (file name, sha256, producer), tensors, preprocessing
    1/model.onnx    the user's graph behind a uint8 input (:func:`with_uint8_input`), outputs renamed
    1/model.py      the two-line python-backend adapter over :mod:`fovea.serving.onnx_detector`

The detection service sends every detector the letterboxed uint8 image (4x smaller than float32): the
cast, channel order and ``(x * scale - mean) / std`` of ``--scale/--mean/--std/--bgr`` run inside the
wrapped graph, whose tensor names equal the Triton names. The bundled Triton has no onnxruntime backend, so
the python backend runs the file with onnxruntime; Triton's native backend could serve the same file.

What is checked before anything is written (each a ``ValueError`` with a message a person can act on):

- the name is a usable Triton model directory name and is not taken (``force`` replaces a model in the
  target repository; a name used by another repository is always refused: Triton would not load both);
- the graph has exactly one input, float or float16, laid out ``[N, 3, H, W]`` (besides it: an image-size
  input ``[N, 2]`` named like ``orig_target_sizes``, or a PaddleDetection export's, below); a static ``H, W``
  must agree with ``input_size``, a dynamic one needs ``input_size``;
- a trial run on a zero image (batch 1, or the fixed batch) succeeds, every output keeps the batch first,
  and the per-image output shapes fit the family's layout with ``len(labels)`` classes (see
  ``fovea.common.detectors.heads``), e.g. YOLOv8 ``(4 + C, N)``: a mismatch names the class count the
  model seems to have;
- without ``family``, :func:`find_layout` tells the family from the outputs: 3-4 outputs of boxes ``(K, 4)``
  and ``(K,)`` vectors (plus a count) = ``nms-in-graph``; boxes ``(Q, 4)`` + scores ``(Q, C[+1])`` = ``detr``;
  one ``(K, 6)`` = ``end2end`` (C > 2); ``(4 + C, N)`` = ``yolov8``; ``(N, 4 + C)`` = ``detr`` when the trial
  run's boxes all lie in ``[0, 1]``, ``yolov8`` when they are pixels. A layout several families fit (e.g.
  ``(N, 5 + C)``: yolov5 or yolox; rows of 6 with 2 classes) is refused, naming the flags that settle it.
  What it cannot see from shapes (boxes in pixels or fractions, scores as logits or probabilities, which
  output is which) it reads from the trial run's values and names, else refuses and names the flag
  (``--boxes``, ``--scores``, ``--outputs``). The answer says which layout it read and why;
- the resulting ``DetectorSpec`` validates (anchors for yolo-grid, strides for nanodet, ...).

PaddleDetection exports (PicoDet, PP-YOLOE, ... through ``paddle2onnx``, post-processing and NMS in the graph;
:mod:`.paddledet`): inputs ``image`` ``[N, 3, H, W]``, ``scale_factor`` ``[N, 2]`` (resized / original, y then
x) and optionally ``im_shape`` ``[N, 2]`` (resized H, W); outputs rows ``[K, 6]`` (class, score, x1 y1 x2 y2
in original pixels) of all images one after the other and a count ``[N]`` int32 (an integer index output is
dropped). The service sends the input-size image and maps input pixels back itself, so ``scale_factor`` is
fed ``[1, 1]`` and ``im_shape`` the input's ``[H, W]`` in the graph, and the count splits the rows into an
``nms-in-graph`` graph (``num_dets``, ``boxes``, ``scores``, ``classes``, 300 rows per image) before the checks
below run on it. Export: ``tools/export_model.py`` (without ``exclude_nms``), then ``paddle2onnx --model_dir
DIR --model_filename model.pdmodel --params_filename model.pdiparams --opset_version 11 --save_file M.onnx``;
preprocessing as ``infer_cfg.yml`` says (PicoDet / PP-YOLOE: ``--no-letterbox``, ImageNet ``--mean/--std``;
the import warns when the defaults are left). Refused, naming what differs: another input besides those,
either of them not float ``[N, 2]``, outputs without the rows and count (an export without NMS), opset < 11,
``--family`` other than ``nms-in-graph``, ``--outputs``, ``--boxes normalised``.

End-to-end families (``end2end``, ``detr``, ``nms-in-graph``) give final detections: the detection service
skips NMS for them (``HeadFamily.end_to_end``) and applies only the minimum score, the class filter and
the maximum number of detections.

Batching (``config.pbtxt``): always ``max_batch_size`` :data:`MAX_BATCH_SIZE` with dynamic batching, so the
detection service can always send ``[1, 3, H, W]``. A dynamic ONNX batch dimension runs a gathered batch in
one call; a fixed one (``1`` in most exports) runs it in chunks of that size (see ``onnx_detector``).

By module, in the order :func:`import_onnx` (``write``) runs them: ``options`` (the command line's values),
``signature`` (the graph's inputs, outputs, metadata and trial run), ``paddledet`` (a PaddleDetection
export made an ``nms-in-graph`` graph), ``layout`` (which head family, told
by :func:`find_layout`) over ``families`` (each family's shape checks and readers), ``plan`` (the spec, no
I/O), ``surgery`` (the uint8 input in front, the candidates head behind), ``render`` (``config.pbtxt``,
``MODEL_CARD.md``, ``1/model.py``); ``preflight`` checks a written model before Triton loads it.
"""

from __future__ import annotations

from fovea.convert.onnx_import.card import render_model_card
from fovea.convert.onnx_import.families import DEFAULT_STRIDES, Layout
from fovea.convert.onnx_import.layout import find_layout
from fovea.convert.onnx_import.options import (
    NAME_PATTERN,
    ImportOptions,
    parse_anchors,
    parse_floats,
    parse_input_size,
    parse_strides,
    read_labels,
    validate_model_name,
)
from fovea.convert.onnx_import.paddledet import PaddleExport, adapt_paddle, find_paddle
from fovea.convert.onnx_import.plan import END_TO_END_FAMILIES, ImportPlan, plan_import
from fovea.convert.onnx_import.preflight import is_imported, model_config_json, preflight
from fovea.convert.onnx_import.render import (
    INPUT_NAME,
    MAX_BATCH_SIZE,
    MODEL_PY,
    WEIGHTS_FILE,
    render_config,
)
from fovea.convert.onnx_import.signature import (
    FLOAT_INPUTS,
    FLOAT_OUTPUTS,
    INTEGER_OUTPUTS,
    SIZE_INPUT,
    SIZE_TYPES,
    Dim,
    OnnxSignature,
    TensorInfo,
    labels_from_metadata,
    probe,
    read_signature,
    size_constant,
    split_inputs,
)
from fovea.convert.onnx_import.surgery import (
    CHECK_MIN_SCORE,
    decode_in_graph,
    with_uint8_input,
    wrap_for_service,
)
from fovea.convert.onnx_import.write import ImportResult, import_onnx

__all__ = [
    "CHECK_MIN_SCORE",
    "DEFAULT_STRIDES",
    "Dim",
    "END_TO_END_FAMILIES",
    "FLOAT_INPUTS",
    "FLOAT_OUTPUTS",
    "INPUT_NAME",
    "INTEGER_OUTPUTS",
    "ImportOptions",
    "ImportPlan",
    "ImportResult",
    "Layout",
    "MAX_BATCH_SIZE",
    "MODEL_PY",
    "NAME_PATTERN",
    "OnnxSignature",
    "PaddleExport",
    "SIZE_INPUT",
    "SIZE_TYPES",
    "TensorInfo",
    "WEIGHTS_FILE",
    "adapt_paddle",
    "decode_in_graph",
    "find_layout",
    "find_paddle",
    "import_onnx",
    "is_imported",
    "labels_from_metadata",
    "model_config_json",
    "parse_anchors",
    "parse_floats",
    "parse_input_size",
    "parse_strides",
    "plan_import",
    "preflight",
    "probe",
    "read_labels",
    "read_signature",
    "render_config",
    "render_model_card",
    "size_constant",
    "split_inputs",
    "validate_model_name",
    "with_uint8_input",
    "wrap_for_service",
]
