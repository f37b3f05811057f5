"""One training job, start to finish (the classify worker runs it in a Celery task).

stratified split (the ``pad`` recipe: folds of bursts instead, cross-fitted: ``Trainer.pad_head``) -> image
by image: decode + centre crop (as served), augmented copies of a training image
(mirror, random crop, colour shift), features of the crops through Triton every ``feature_batch`` crops
(``backbone_model``'s ``FEATURES``; ``TEXTURE`` for ``pad``: ``feature_output``; cached in Redis by the crop's SHA-256; only the features are kept, never
every crop) -> a new softmax layer (:func:`fovea.classify.core.training.train_head`, progress
per epoch) -> per-class table and confusion matrix on the validation split -> backbone + head as one ONNX graph,
written as the classifier's next version, inactive, and loaded into Triton (no restart; the other versions keep
serving), on every replica where ``triton_replicas_dns`` names them; active once ready on each.

While a job runs, a thread renews its lease every ``heartbeat_interval_s`` (``fovea.common.jobs.Heartbeats``):
a worker that dies stops renewing it and the classify service requeues the job (``fovea.classify.reaper``).
A run whose job was taken from it meanwhile (its lease ran out, it was requeued and started elsewhere)
records nothing more and stops at its next progress update: the job ends once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fovea.classify.config import ClassifySettings
from fovea.classify.core.classify import centre_crop
from fovea.classify.core.export import append_head
from fovea.classify.core.pad_training import (
    CALIBRATION_FOLDS,
    augment_texture,
    balanced_weights,
    burst_folds,
    burst_kinds,
    pad_calibration,
    shift_bias,
)
from fovea.classify.core.training import (
    EpochStats,
    Head,
    Standardiser,
    augment,
    check_labels,
    evaluate,
    predict,
    stratified_split,
    train_head,
)
from fovea.classify.replicas import TritonReplicas
from fovea.classify.store import (
    FAILED,
    STARTED,
    SUCCEEDED,
    TakenOver,
    TrainingJob,
    TrainingStore,
)
from fovea.classify.trained import TrainedRepository, model_name
from fovea.common.errors import FoveaError, InvalidImage, UpstreamUnavailable, public_message
from fovea.common.images import decode_image_reduced, limits_from
from fovea.common.jobs import Heartbeats, new_owner
from fovea.common.triton import SyncTritonClient
from fovea.contracts.classifier import (
    CLASSIFIER_INPUT,
    FEATURES_OUTPUT,
    INPUT_SIZE,
    RESIZE_SIDE,
    TEXTURE_OUTPUT,
)
from fovea.contracts.pad_classifier import LABELS as PAD_LABELS
from fovea.contracts.pad_classifier import RECIPE

log = logging.getLogger(__name__)

WAITING = "waiting for Triton or Redis to come back"


def feature_output(pad: bool) -> str:
    """The backbone output a head is trained on: ``TEXTURE`` for the ``pad`` recipe (a head on the pooled
    final features learns the training people's faces and refuses a new person: bench/README.md, "Passive
    check: texture"), ``FEATURES`` for every other classifier."""
    return TEXTURE_OUTPUT if pad else FEATURES_OUTPUT


class Trainer:
    def __init__(
        self,
        settings: ClassifySettings,
        store: TrainingStore,
        triton: SyncTritonClient,
        repository: TrainedRepository,
        replicas: TritonReplicas | None = None,
        heartbeats: Heartbeats | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.triton = triton
        self.repository = repository
        self.replicas = replicas  # set: new versions are loaded on every Triton replica
        self.limits = limits_from(settings)
        self._backbone_digest: tuple[float, str] | None = None
        self.owner = new_owner()  # this worker's leases
        self.heartbeats = heartbeats or Heartbeats(
            store.heartbeat, settings.heartbeat_interval_s, "classify-heartbeats"
        )

    @property
    def backbone_path(self) -> Path:
        return self.settings.model_repository / self.settings.backbone_model / "1" / "model.onnx"

    def backbone_digest(self) -> str:
        """A digest of the backbone's ONNX file: features cached for another backbone are not reused."""
        mtime = self.backbone_path.stat().st_mtime
        if self._backbone_digest is None or self._backbone_digest[0] != mtime:
            digest = hashlib.sha256(self.backbone_path.read_bytes()).hexdigest()[:16]
            self._backbone_digest = (mtime, digest)
        return self._backbone_digest[1]

    def run(self, job_id: str) -> str:
        """Run job ``job_id``; returns its final state, ``ENDED`` for a job that had already ended, or
        ``BUSY`` for one another worker runs (its lease is fresh: the task looks again when it runs out).

        Raises:
            UpstreamUnavailable: Triton or Redis is down (the task retries; the job is QUEUED again).
        """
        started = self.store.start(job_id, self.owner)
        if started != STARTED:
            return started
        self.heartbeats.add(job_id, self.owner)
        try:
            return self._run_started(job_id)
        finally:
            self.heartbeats.remove(job_id)

    def _run_started(self, job_id: str) -> str:
        job = self.store.get(job_id)
        try:
            result = self._train(job)
        except TakenOver:
            log.warning("training job %s (%s) was taken from this run: stopping it", job_id, job.name)
            return self.store.get(job_id).state
        except UpstreamUnavailable:
            with contextlib.suppress(UpstreamUnavailable):  # Redis down too: the reaper requeues it later
                self.store.requeue_own(job_id, self.owner, WAITING)
            raise
        except (FoveaError, ValueError, OSError) as exc:
            log.warning("training job %s (%s) failed: %s", job_id, job.name, exc)
            return self._end(job_id, FAILED, error=public_message(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a job never stays RUNNING because of a bug
            log.exception("training job %s (%s) failed", job_id, job.name)
            return self._end(
                job_id, FAILED, error=f"internal error ({type(exc).__name__}); see the worker's log"
            )
        return self._end(job_id, SUCCEEDED, result=result)

    def _end(self, job_id: str, state: str, **outcome: Any) -> str:
        """Record the job's end, if it is still this run's; returns the state it has then."""
        if self.store.finish(job_id, state, owner=self.owner, **outcome):
            return state
        found = self.store.get(job_id).state
        log.warning(
            "training job %s ended %s here but is %s (another run has it): not recorded", job_id, state, found
        )
        return found

    def _progress(self, job_id: str, **fields: Any) -> None:
        """Record progress while the job is this run's; ``TakenOver`` when it is not."""
        if self.heartbeats.lost(job_id):
            raise TakenOver(f"training job {job_id} was taken from this run")
        self.store.update(job_id, self.owner, **fields)

    def _train(self, job: TrainingJob) -> dict[str, Any]:
        s = self.settings
        options = job.options
        images, labels = self.store.inputs(job.job_id)
        if not images or len(images) != len(labels):
            raise ValueError("the job's images are gone (expired before it ran); submit it again")
        dataset = check_labels(labels, s.min_images_per_class, s.max_training_images)
        seed = int(options.get("seed", 0))
        pad = options.get("recipe", "") == RECIPE
        groups = self.store.groups(job.job_id) if pad else []
        kinds: dict[str, str] = {}
        if pad:
            if dataset.classes != PAD_LABELS:
                raise ValueError(f"the pad recipe needs the classes {', '.join(PAD_LABELS)}")
            kinds = burst_kinds(labels, groups, s.min_pad_bursts)
            # cross-fitted (pad_head): every image is trained on, each by the heads of the other folds
            train_idx, val_idx = np.arange(len(labels)), np.arange(0)
        else:
            train_idx, val_idx = stratified_split(
                dataset.targets, float(options["validation_fraction"]), seed
            )
        copies = int(options["augment_copies"])
        start = time.perf_counter()
        features, cached = self.training_features(
            job.job_id,
            images,
            train_idx,
            val_idx,
            copies,
            np.random.default_rng(seed),
            texture=pad,
            sources=self.store.sources(job.job_id),
        )
        feature_seconds = time.perf_counter() - start
        epochs = int(options["epochs"])

        def progress(stats: EpochStats) -> None:
            # the pad recipe's served head trains without a validation split (nan): none is reported
            known = (
                {}
                if math.isnan(stats.validation_accuracy)
                else {"validation_accuracy": stats.validation_accuracy}
            )
            self._progress(
                job.job_id, stage=f"epoch {stats.epoch}/{epochs}", epoch=stats.epoch, loss=stats.loss, **known
            )

        def fit(
            x_train: np.ndarray,
            y_train: np.ndarray,
            x_val: np.ndarray,
            y_val: np.ndarray,
            weights: np.ndarray | None,
            on_epoch: Callable[[EpochStats], None] | None,
        ) -> tuple[Head, list[EpochStats]]:
            return train_head(
                x_train,
                y_train,
                x_val,
                y_val,
                len(dataset.classes),
                epochs=epochs,
                learning_rate=float(options["learning_rate"]),
                weight_decay=float(options["weight_decay"]),
                seed=seed,
                on_epoch=on_epoch,
                weights=weights,
            )

        start = time.perf_counter()
        calibration = None
        if pad:
            y_val = dataset.targets  # every image, scored out of fold
            head, history, predicted, calibration = self.pad_head(
                job.job_id, features, dataset.targets, labels, groups, kinds, copies, seed, fit, progress
            )
        else:
            n_train = len(train_idx) * (1 + copies)
            x_train, x_val = features[:n_train], features[n_train:]
            y_train = np.concatenate(
                [dataset.targets[train_idx]] + [np.repeat(dataset.targets[train_idx], copies)]
            )
            y_val = dataset.targets[val_idx]
            head, history = fit(x_train, y_train, x_val, y_val, None, progress)
            predicted = predict(head, x_val).argmax(axis=1)
        train_seconds = time.perf_counter() - start
        report = evaluate(y_val, predicted, dataset.classes)

        self._progress(job.job_id, stage="deploying")
        import onnx

        graph = append_head(
            onnx.load(str(self.backbone_path)), head.weight, head.bias, features=feature_output(pad)
        )
        current, version, dropped = self.repository.add_version(
            job.name,
            graph.SerializeToString(),
            list(dataset.classes),
            validation_accuracy=report.accuracy,
            job_id=job.job_id,
            train_images=len(train_idx),
        )
        try:
            self.load(model_name(job.name), version)  # inactive until every replica serves it
        except FoveaError:
            if current.active == version:  # a rerun of a job whose version serves already: keep it
                raise
            left = self.repository.discard_version(job.name, version)
            if left is not None:
                self.load(model_name(job.name), None)
            raise
        classifier = self.repository.set_active(job.name, version)
        log.info(
            "classifier %s version %d deployed (validation accuracy %.3f, dropped versions %s)",
            job.name,
            classifier.active,
            report.accuracy,
            dropped,
        )
        train_counts = np.bincount(dataset.targets[train_idx], minlength=len(dataset.classes))
        return {
            "version": classifier.active,
            "validation_accuracy": report.accuracy,
            "train_accuracy": history[-1].train_accuracy,
            "labels": list(dataset.classes),
            "confusion": [int(v) for v in report.confusion.flat],
            "classes": [
                {
                    "label": label,
                    "accuracy": _finite(report.recall[c]),
                    "precision": _finite(report.precision[c]),
                    "validation_images": int(report.support[c]),
                    "train_images": int(train_counts[c]),
                }
                for c, label in enumerate(dataset.classes)
            ],
            "feature_seconds": feature_seconds,
            "train_seconds": train_seconds,
            "features_cached": cached,
            "features_computed": len(features) - cached,
            **({"pad": calibration} if calibration is not None else {}),
        }

    def pad_head(
        self,
        job_id: str,
        features: np.ndarray,
        targets: np.ndarray,
        labels: list[str],
        groups: list[str],
        kinds: dict[str, str],
        copies: int,
        seed: int,
        fit: Callable[..., tuple[Head, list[EpochStats]]],
        progress: Callable[[EpochStats], None],
    ) -> tuple[Head, list[EpochStats], np.ndarray, dict[str, Any]]:
        """The ``pad`` recipe's head, calibrated by cross-fitting (``pad_training``): per fold of bursts
        (:func:`burst_folds`) a head trained on the other folds scores that fold's centre crops; the burst
        threshold chosen on all those out-of-fold scores is moved to 0 in the head trained on every burst.
        Each head learns on standardised features (weights folded back, so it applies to the raw features the
        served graph computes), the two kinds weighted equally.

        ``features``: the centre crops' rows of every image, then ``copies`` augmented rows per image.
        Returns the served head, its training history, the centre crops' out-of-fold predicted classes at
        the calibrated threshold (the job's report), and the calibration figures (``PadCalibration``'s
        fields)."""
        n = len(labels)
        kind_of = np.array([label.split("-", 1)[0] for label in PAD_LABELS])
        y_rows = np.concatenate([targets, np.repeat(targets, copies)])
        fold_of = burst_folds(kinds, CALIBRATION_FOLDS, seed)
        image_fold = np.array([fold_of[g] for g in groups])
        empty = np.zeros((0, features.shape[1]), np.float32)

        def fit_on(images: np.ndarray, on_epoch: Callable[[EpochStats], None] | None) -> tuple[Head, Any]:
            rows = np.concatenate([np.flatnonzero(images), n + np.flatnonzero(np.repeat(images, copies))])
            x, y = features[rows], y_rows[rows]
            standardiser = Standardiser.fit(x)
            head, history = fit(
                standardiser.apply(x), y, empty, np.zeros(0, np.int64), balanced_weights(kind_of[y]), on_epoch
            )
            return standardiser.fold(head), history

        folds = int(image_fold.max()) + 1
        probabilities = np.zeros((n, len(PAD_LABELS)))
        for fold in range(folds):
            self._progress(job_id, stage=f"calibration: fold {fold + 1}/{folds}")
            held = image_fold == fold
            fold_head, _ = fit_on(~held, None)
            probabilities[held] = predict(fold_head, features[:n][held])
        head, history = fit_on(np.ones(n, bool), progress)
        found, figures = pad_calibration(probabilities, labels, groups)
        # the served head learnt from every burst the folds scored
        figures.update(
            train_bona_fide_bursts=figures["validation_bona_fide_bursts"],
            train_attack_bursts=figures["validation_attack_bursts"],
        )
        shift = shift_bias(np.zeros(len(PAD_LABELS), np.float32), -found.threshold)
        predicted = (np.log(np.maximum(probabilities, 1e-12)) + shift).argmax(axis=1)  # at the threshold
        return Head(head.weight, head.bias + shift), history, predicted, figures

    def load(self, model: str, version: int | None) -> None:
        """Load (or reload) ``model`` into Triton: every replica, ``version`` checked ready on each, when
        ``triton_replicas_dns`` is set (:mod:`fovea.classify.replicas`); else the one ``triton_url``."""
        timeout_s = self.settings.train_triton_timeout_s
        if self.replicas is None:
            self.triton.load_model(model, timeout_s=timeout_s)
            if version is not None and not self.triton.is_model_ready(model, str(version)):
                raise UpstreamUnavailable(f"version {version} of model {model!r} is not ready after its load")
        else:
            self.replicas.load_model(model, version, timeout_s)

    def training_features(
        self,
        job_id: str,
        images: list[bytes],
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        copies: int,
        rng: np.random.Generator,
        *,
        texture: bool = False,
        sources: list[str] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Features of the training crops, computed as the images are decoded (one picture and at most
        ``feature_batch`` crops held at a time, not every crop).

        Rows: the centre crops of ``train_idx``, then ``copies`` augmented crops of each of them (in
        ``train_idx`` order, copy by copy of an image), then the centre crops of ``val_idx``. Returns the
        ``(rows, F)`` float32 features and how many came from the cache. ``texture`` (the ``pad`` recipe): the
        features are the backbone's ``TEXTURE``, not ``FEATURES``, and the augmented crops keep the pixels'
        scale and colour (``pad_training.augment_texture``). ``sources``: each image's name in messages (an
        image that does not decode).
        """
        sources = sources or []
        output = feature_output(texture)
        n_train, n_val = len(train_idx), len(val_idx)
        total = n_train * (1 + copies) + n_val
        train_row = {int(i): r for r, i in enumerate(train_idx)}
        val_row = {int(i): n_train * (1 + copies) + r for r, i in enumerate(val_idx)}
        features: np.ndarray | None = None
        rows: list[int] = []
        crops: list[np.ndarray] = []
        done = cached = 0

        def flush() -> None:
            nonlocal features, done, cached
            self._progress(job_id, stage=f"features {done}/{total} (cached {cached})")
            found, hits = self.features(job_id, crops, output)
            if features is None:
                features = np.empty((total, found.shape[1]), np.float32)
            features[rows] = found
            done, cached = done + len(rows), cached + hits
            rows.clear()
            crops.clear()

        for i, data in enumerate(images):
            if i not in train_row and i not in val_row:
                continue
            try:
                picture = decode_image_reduced(data, self.limits, (RESIZE_SIDE, RESIZE_SIDE)).pixels
            except InvalidImage as exc:
                named = sources[i] if i < len(sources) and sources[i] else f"image {i}"
                raise InvalidImage(f"{named}: {exc}") from exc
            rows.append(train_row.get(i, val_row.get(i, -1)))
            crops.append(centre_crop(picture, RESIZE_SIDE, INPUT_SIZE))
            if i in train_row:
                for c in range(copies):
                    rows.append(n_train + train_row[i] * copies + c)
                    crops.append(
                        augment_texture(picture, rng, INPUT_SIZE)
                        if texture
                        else augment(picture, rng, RESIZE_SIDE, INPUT_SIZE)
                    )
            if len(crops) >= self.settings.feature_batch:
                flush()
        if crops:
            flush()
        if features is None:
            raise ValueError("the training set has no images")
        return features, cached

    def features(
        self, job_id: str, crops: list[np.ndarray], output: str = FEATURES_OUTPUT
    ) -> tuple[np.ndarray, int]:
        """The backbone's ``output`` of each ``(224, 224, 3)`` crop: from the cache where an identical crop
        was seen (by SHA-256 of its pixels), else through Triton in batches; returns them ``(N, F)`` and the
        cache hits."""
        backbone = f"{self.backbone_digest()}.{output}"  # one cache per backbone file and output
        digests = [hashlib.sha256(c.tobytes()).hexdigest() for c in crops]
        found = self.store.cached_features(backbone, digests)
        missing = [i for i, f in enumerate(found) if f is None]
        batch = self.settings.feature_batch
        for start in range(0, len(missing), batch):
            chunk = missing[start : start + batch]
            outputs = self.triton.infer(
                self.settings.backbone_model,
                {CLASSIFIER_INPUT: np.stack([crops[i] for i in chunk])},
                [output],
            )
            rows = np.asarray(outputs[output], np.float32).reshape(len(chunk), -1)
            self.store.cache_features(backbone, [digests[i] for i in chunk], rows)
            for i, row in zip(chunk, rows, strict=True):
                found[i] = row
        return np.stack([f for f in found if f is not None]), len(crops) - len(missing)


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else float(value)


__all__ = ["FEATURES_OUTPUT", "Trainer"]
