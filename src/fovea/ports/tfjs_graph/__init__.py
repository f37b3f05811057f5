"""Run TF.js graph models (``model.json`` + binary weight shards) as torch modules.

Two steps, so that a converted model needs none of the original files at run time:

1. :func:`parse_graph_model` reads ``model.json`` and its weight shards into a *graph spec*: a plain dict of
   strings, numbers, lists and float32/int tensors (loadable with ``torch.load(weights_only=True)``)::

       {"format": "fovea.tfjs-graph/1",
        "nodes": [{"name": str, "op": str, "inputs": [str], "attrs": {str: value}}, ...],
        "weights": {const node name: Tensor},
        "inputs": [placeholder name], "outputs": ["Identity:0", ...]}

2. :class:`TFJSGraphModule` builds an execution plan from a spec: nodes in topological order, constant
   sub-graphs folded once at build time, each remaining node one torch call. Tensors keep TF's logical layouts
   (``Transpose`` is a free ``permute`` view; NHWC convolutions permute to NCHW around ``F.conv2d``, which is
   also a view when the producer was NCHW). Two rewrites remove work without changing results: a constant
   per-channel ``Add``/``BiasAdd`` after a convolution becomes the convolution's bias, and a spatial ``Pad``
   (zeros before a convolution, ``-inf`` before a max-pool), optionally seen through one ``Transpose``, becomes
   the convolution's / pool's padding.

Semantics follow TensorFlow: ``SAME`` padding is ``total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0)``
with ``total // 2`` before and the rest after (asymmetric when ``total`` is odd); resize ops honour
``align_corners`` / ``half_pixel_centers``. Graphs exported with batch size 1 often hard-code it in
``Reshape`` targets; with ``batch_polymorphic=True`` (the default) a ``Reshape`` whose target starts with the
traced batch size keeps the input's leading (batch) dimension instead, so batches of any size run.

An op outside :data:`SUPPORTED_OPS` raises ``ValueError`` naming it when the module is built.

By module: ``parse`` (step 1), ``module`` (step 2: :class:`TFJSGraphModule`, and
:func:`load_graph_artefact` for a saved artefact), ``builder`` (the plan: steps, constant folding, pad
absorption), ``ops`` (one handler per op), ``kernels`` (the torch functions the steps call).
"""

from fovea.ports.tfjs_graph.module import TFJSGraphModule, load_graph_artefact
from fovea.ports.tfjs_graph.ops import SUPPORTED_OPS
from fovea.ports.tfjs_graph.parse import SPEC_FORMAT, parse_graph_model

__all__ = ["SPEC_FORMAT", "SUPPORTED_OPS", "TFJSGraphModule", "load_graph_artefact", "parse_graph_model"]
