"""Fovea: an open-source vision inference platform.

Where things are (``src/fovea/``), bottom layer first. Each layer imports only the layers above it in this
list, never those below it, not even lazily; ``.importlinter`` writes this down and ``make lint`` checks it.

Model toolchain (what Triton serves and how it is built)
  contracts/   What each served model takes and gives: tensor specs, config parameters, defaults written
               once; the style registry and parameters; a detector's spec file. numpy (pydantic for the spec).
  common/      What every process shares: settings base, errors and their one translation point, gRPC server
               and interceptors, Triton and Redis clients, image decoding, logging, metrics, paths
               (``paths.py``: the project folder and model repository, from a checkout or ``FOVEA_HOME``);
               ``common/detectors/``: box ops, NMS and head decoders (torch) shared by detection and convert.
  ports/       Our torch definitions of the pretrained networks (NanoDet, CenterNet, MTCNN, dlib's ResNet,
               MobileNetV2, VGG16-HED, the face mesh, the TF.js interpreter) and the Gatys optimisation.
  serving/     What runs inside Triton: one module per served model (its ``load`` and ``execute``), the
               adapter every ``model_repository/*/1/model.py`` names. Imports contracts; ports lazily.
  convert/     Build time only: one recipe per model (fetch from a registry package, convert, export to
               ONNX, parity check against the port, pinned checksum), ``fovea models build``,
               ``fovea models import-onnx`` (``onnx_import``), the sample photos of demos and tests.

Services (each its own process; import contracts, common and their own ``v1`` only)
  gateway/     The public edge: API keys and scopes, TLS, request ids, deadlines, forwarding to the services.
  detection/   Detect: decode, letterbox, Triton, head decoding, NMS. ``core/``: pure computation;
               ``tools/``: ``fovea detect eval`` (mAP of a deployed detector, through the client).
  faces/       One FacesService (``servicer.py``) over four rooms:
               ``recognition/`` photos to faces to templates, galleries in Redis, verify and identify;
               ``access/`` doors: policies, presentation-attack checks, challenges, the GRANT/DENY decision
               and its audit; ``events/`` the event stream and signed webhooks; ``tools/`` what the server
               never loads: pad-eval, pad-synth, ``fovea faces eval``, the in-process runner.
  style/       Style jobs: validation, the Celery queue, the worker's runner and its reaper.
  classify/    Classification, transfer learning on a user's photos (versions, rollback), Grad-CAM.
  models/      ``v1`` only: the ModelsService API the gateway answers itself.

On top
  client/      ``fovea.client.FoveaClient``: a typed Python client of the gateway (``pip install fovea``).
  stack/       ``fovea up``: the whole platform as one local process tree (supervisord, Triton, Redis).
  cli/         The ``fovea`` command, one module per command group.

Names that come in pairs: a ``core/`` module is the pure computation (no I/O, unit-tested), the module of the
same subject outside ``core/`` its I/O: ``access/core/challenge.py`` (sign and check a door challenge) and
``access/challenge_store.py`` (its key and single use in Redis); ``events/core/events.py`` (event records) and
``events/stream.py`` (the Redis stream); ``detection/core/mean_ap.py`` (COCO mAP) and
``detection/tools/evaluation.py`` (measuring a deployed detector with it).
"""
