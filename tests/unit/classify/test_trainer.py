"""fovea.classify.trainer against a real Redis and repository folder, with Triton at the edge replaced by a
recording stand-in (features = each crop's mean colour, then zeros): features are computed while the images
are decoded, a new version becomes active only once Triton serves it, and a job that runs again after a
crash adds no second version."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fovea.classify import trainer as trainer_module
from fovea.classify.config import ClassifySettings
from fovea.classify.store import BUSY, RUNNING, SUCCEEDED, TrainingStore
from fovea.classify.trained import TrainedRepository
from fovea.classify.trainer import FEATURES_OUTPUT, Trainer
from fovea.common.errors import UpstreamUnavailable
from fovea.common.paths import project_root
from fovea.contracts.classifier import CLASSIFIER_INPUT

REPOSITORY = project_root() / "model_repository"
OPTIONS = {
    "epochs": 5,
    "learning_rate": 0.05,
    "validation_fraction": 0.2,
    "augment_copies": 2,
    "weight_decay": 1e-4,
    "seed": 0,
}


class Crash(BaseException):
    """The worker dies (nothing of the job's own error handling runs)."""


class FakeTriton:
    """The sync Triton client's calls the trainer makes, recorded; ``on_load`` runs at each load."""

    def __init__(self, repository: TrainedRepository, ready: bool = True) -> None:
        self.repository = repository
        self.ready = ready
        self.batches: list[int] = []
        self.decoded_at_first_infer: int | None = None
        self.active_at_load: list[int] = []
        self.ready_asked: list[str] = []
        self.crash_on_load = False

    def infer(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str], **_: Any) -> Any:
        batch = inputs[CLASSIFIER_INPUT]
        if self.decoded_at_first_infer is None:
            self.decoded_at_first_infer = decoded[0]
        self.batches.append(len(batch))
        means = batch.reshape(len(batch), -1, 3).mean(axis=1) / 255.0  # (N, 3)
        features = np.zeros((len(batch), 1280), np.float32)  # the backbone's (N, 1280)
        features[:, :3] = means
        return {FEATURES_OUTPUT: features}

    def load_model(self, model: str, timeout_s: float = 300.0) -> None:
        self.active_at_load.append(self.repository._read(self.repository.folder("bins")).active)  # type: ignore[union-attr]
        if self.crash_on_load:
            raise Crash

    def is_model_ready(self, model: str, version: str = "") -> bool:
        self.ready_asked.append(version)
        return self.ready


decoded = [0]


def photo(colour: tuple[int, int, int], seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def setup(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    if not (REPOSITORY / "classifier_imagenet" / "1" / "model.onnx").exists():
        pytest.skip("classifier_imagenet is not built (`fovea models build --only classifier_imagenet`)")
    real_decode = trainer_module.decode_image_reduced

    def counting_decode(*args: Any) -> Any:
        decoded[0] += 1
        return real_decode(*args)

    decoded[0] = 0
    monkeypatch.setattr(trainer_module, "decode_image_reduced", counting_decode)
    settings = ClassifySettings(
        model_repository=REPOSITORY, redis_url=redis_url, trained_repository=tmp_path, feature_batch=4
    )
    store = TrainingStore(redis_url, 600, 600)
    repository = TrainedRepository(tmp_path)
    images = [photo((200, 40, 40), i) for i in range(10)] + [photo((40, 40, 200), 100 + i) for i in range(10)]
    store.redis.delete(store.lock_key("bins"))  # an earlier test's job of "bins" that did not end
    job_id = store.create("bins", images, ["red"] * 10 + ["blue"] * 10, OPTIONS)
    return settings, store, repository, job_id


def test_features_stream_and_the_version_is_active_once_served(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    triton = FakeTriton(repository)
    assert Trainer(settings, store, triton, repository).run(job_id) == SUCCEEDED  # type: ignore[arg-type]
    # 16 training images x (1 + 2 copies) + 4 validation images = 52 crops, at most 4 per Triton call
    assert triton.batches and sum(triton.batches) == 52 and max(triton.batches) <= 4
    assert triton.decoded_at_first_infer is not None and triton.decoded_at_first_infer < 20  # not all first
    assert triton.active_at_load == [0] and triton.ready_asked == ["1"]  # loaded and checked, then active
    job = store.get(job_id)
    assert job.result is not None and job.result["version"] == 1 and job.result["validation_accuracy"] == 1.0
    assert job.result["features_computed"] + job.result["features_cached"] == 52
    assert repository.get("bins").active == 1


def test_a_version_triton_does_not_serve_is_discarded_and_never_active(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    triton = FakeTriton(repository, ready=False)
    with pytest.raises(UpstreamUnavailable, match="not ready"):  # the task retries
        Trainer(settings, store, triton, repository).run(job_id)  # type: ignore[arg-type]
    assert repository.classifiers() == [] and not repository.folder("bins").exists()


def test_a_job_run_again_after_a_crash_adds_no_second_version(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    triton = FakeTriton(repository)
    triton.crash_on_load = True
    first = Trainer(settings, store, triton, repository)  # type: ignore[arg-type]
    with pytest.raises(Crash):
        first.run(job_id)  # the version is written, the worker dies before it is active
    assert store.get(job_id).state == RUNNING
    again = Trainer(settings, store, FakeTriton(repository), repository)  # type: ignore[arg-type]
    assert again.run(job_id) == BUSY  # the message redelivered while the lost worker's lease is fresh
    store.redis.hset(store.key(job_id), "lease_until", 0)  # the lease ran out
    assert again.run(job_id) == SUCCEEDED
    classifier = repository.get("bins")
    assert [v.version for v in classifier.versions] == [1] and classifier.active == 1
    assert classifier.version().job_id == job_id


def test_a_rerun_keeps_its_served_version_when_a_load_fails(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    # the job's version was written and made active, then the worker died before the job's end was recorded
    repository.add_version("bins", b"served", ["blue", "red"], job_id=job_id)
    repository.set_active("bins", 1)
    triton = FakeTriton(repository, ready=False)  # Triton answers badly this time
    with pytest.raises(UpstreamUnavailable):  # the task retries
        Trainer(settings, store, triton, repository).run(job_id)  # type: ignore[arg-type]
    assert repository.get("bins").active == 1  # the version that serves is not discarded
    assert (repository.folder("bins") / "1" / "model.onnx").read_bytes() == b"served"


def test_an_image_that_does_not_decode_is_named_by_its_source(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    store.finish(job_id, "FAILED", error="not this one")
    images = [photo((200, 40, 40), i) for i in range(10)] + [photo((40, 40, 200), 100 + i) for i in range(10)]
    images[3] = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature, then nothing usable
    sources = [f"red/{i}.png" for i in range(10)] + [f"blue/{i}.png" for i in range(10)]
    bad = store.create("bins", images, ["red"] * 10 + ["blue"] * 10, OPTIONS, sources=sources)
    assert Trainer(settings, store, FakeTriton(repository), repository).run(bad) == "FAILED"  # type: ignore[arg-type]
    error = store.get(bad).error
    assert error.startswith("red/3.png: "), error


def test_a_run_whose_job_was_taken_over_stops_and_records_nothing(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    trainer = Trainer(settings, store, FakeTriton(repository), repository)  # type: ignore[arg-type]
    taken = []

    def take_over(*_: Any) -> None:  # the lease ran out mid-run; the reaper requeued it, another run has it
        if not taken:
            store.redis.hset(store.key(job_id), mapping={"owner": "another-run"})
            taken.append(True)

    trainer.training_features = _after(trainer.training_features, take_over)  # type: ignore[method-assign]
    assert trainer.run(job_id) == RUNNING  # stopped at its next progress update
    job = store.get(job_id)
    assert (job.state, job.owner, job.result) == (RUNNING, "another-run", None)
    assert repository.classifiers() == []  # no version written by the stopped run


def test_a_run_waiting_for_triton_gives_its_job_back(setup: tuple[Any, ...]) -> None:
    settings, store, repository, job_id = setup
    with pytest.raises(UpstreamUnavailable):  # the task retries
        Trainer(settings, store, FakeTriton(repository, ready=False), repository).run(job_id)  # type: ignore[arg-type]
    job = store.get(job_id)
    assert (job.state, job.owner, job.worker_losses) == ("QUEUED", "", 0)
    assert job.error.startswith("waiting for Triton")
    assert store.lost_jobs() == []  # not a lost worker's job: the reaper leaves it to the retry


def _after(method: Any, hook: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        found = method(*args, **kwargs)
        hook()
        return found

    return wrapped


def test_the_pad_head_is_cross_fitted_and_served_at_the_calibrated_threshold() -> None:
    """``Trainer.pad_head`` on separable features (bona fide rows near +1, attacks near -1 in every
    dimension): every burst scored out of fold, none misjudged, the served head trained on every row
    (centre and augmented), its shifted threshold keeping every crop on its side."""
    from fovea.classify.core.pad_training import burst_kinds
    from fovea.classify.core.training import predict, train_head
    from fovea.contracts.pad_classifier import LABELS

    rng = np.random.default_rng(0)
    labels, groups = [], []
    for kind, bursts in (("bona_fide", 8), ("attack", 10)):
        for b in range(bursts):
            for _frame in range(2):
                for crop in ("face", "context"):
                    labels.append(f"{kind}-{crop}")
                    groups.append(f"{kind}/{'s' if kind == 'bona_fide' else f'sp{b % 3}/'}{b}")
    targets = np.array([LABELS.index(label) for label in labels])
    copies, n = 1, len(labels)
    sign = np.array([1.0 if label.startswith("bona") else -1.0 for label in labels])
    centre = sign[:, None] + rng.normal(0, 0.3, (n, 6))
    augmented = np.repeat(sign, copies)[:, None] + rng.normal(0, 0.3, (n * copies, 6))
    features = np.concatenate([centre, augmented]).astype(np.float32)
    stages: list[str] = []
    runner = Trainer.__new__(Trainer)
    runner._progress = lambda job_id, **fields: stages.append(fields.get("stage", ""))  # type: ignore[method-assign]
    fitted_rows: list[int] = []

    def fit(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, w: Any, on_epoch: Any) -> Any:
        fitted_rows.append(len(x))
        return train_head(
            x, y, xv, yv, 4, epochs=20, learning_rate=0.01, weight_decay=1e-4, seed=0, weights=w
        )

    kinds = burst_kinds(labels, groups)
    head, history, predicted, figures = runner.pad_head(
        "job", features, targets, labels, groups, kinds, copies, 0, fit, lambda stats: None
    )
    assert stages == [f"calibration: fold {k}/5" for k in range(1, 6)]
    assert fitted_rows[-1] == n * (1 + copies) and all(r < n * (1 + copies) for r in fitted_rows[:-1])
    assert (figures["validation_bona_fide_bursts"], figures["validation_attack_bursts"]) == (8, 10)
    assert (figures["train_bona_fide_bursts"], figures["train_attack_bursts"]) == (8, 10)
    assert figures["bpcer"] == figures["apcer"] == 0.0
    assert predicted.shape == targets.shape  # one out-of-fold class per centre crop
    kind_of = np.array([label.split("-")[0] for label in LABELS])  # face and context crops look alike here
    assert np.array_equal(kind_of[predicted], kind_of[targets])
    probabilities = predict(head, centre.astype(np.float32))
    bona_columns = [LABELS.index("bona_fide-face"), LABELS.index("bona_fide-context")]
    said_bona = probabilities[:, bona_columns].sum(axis=1) >= 0.5
    assert np.array_equal(said_bona, sign > 0) and len(history) == 20
