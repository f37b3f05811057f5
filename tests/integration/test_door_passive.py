"""A passive check a site trains, through the real stack (issue 21): `fovea faces pad-train`'s steps (crops cut
in this process, one ``pad`` TrainClassifier job through the gateway, followed to its end), then VerifyAccess at
a door with ``pad: require``, ``pad_undetermined: passive``, ``passive: require``, ``passive_check:
trained:NAME``: before the training the door fails closed; after it, a head turn replayed on a screen (the
geometry check says live: only the passive check can stop it) is DENY ``passive`` and a head turning is GRANT,
each with the passive check's score in the response and in the audit record.

The material is rendered (``pad-synth --scenes``: door-camera frames, prints and screens in front of rooms):
training bursts from one seed, the two bursts sent to the door from another (the same two portraits)."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest

from fovea.client import FoveaClient
from fovea.common.paths import project_root
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_synth_dir import write_synthetic_dir
from fovea.faces.tools.pad_train import collect, train

from .cli import fovea_cli
from .conftest import PASSIVE_CHECK_NAME, PASSIVE_DOOR, Stack
from .faces_photos import photo

pytestmark = pytest.mark.integration

PORTRAITS = ("obama", "biden")
SCENES = ("china", "dog")


@pytest.fixture(scope="module")
def in_process() -> InProcessFaces:
    return InProcessFaces(project_root() / "model_repository")


@pytest.fixture(scope="module")
def training_set(in_process: InProcessFaces, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 bona fide (6 head turns, 2 near-still) and 12 attack bursts (replays, still and tilted prints) of 4
    frames: the least the pad recipe takes is 8 of each kind."""
    out = tmp_path_factory.mktemp("pad-train")
    counts = write_synthetic_dir(
        out,
        in_process,
        seed=31,
        per_photo=3,
        frames=4,
        photos=PORTRAITS,
        attacks=("screen_replay", "print_still"),
        talking=1,
        scenes=SCENES,
    )
    assert counts == {"bona_fide": 8, "attack/screen_replay": 6, "attack/print_still": 6}
    return out


@pytest.fixture(scope="module")
def door_bursts(in_process: InProcessFaces, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bursts never trained on (another seed): a head turn of obama and that very turn on a screen."""
    out = tmp_path_factory.mktemp("pad-door")
    write_synthetic_dir(
        out,
        in_process,
        seed=32,
        per_photo=1,
        frames=5,
        photos=("obama",),
        attacks=("screen_replay",),
        scenes=("flower",),
    )
    return out


def frames(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]


def test_a_trained_passive_check_stops_a_replay_and_lets_a_head_through(
    stack: Stack, client: FoveaClient, training_set: Path, door_bursts: Path, in_process: InProcessFaces
) -> None:
    gallery = f"passive-{uuid.uuid4().hex[:8]}"
    client.create_gallery(gallery)
    client.enroll(gallery, "obama", [photo("obama")])
    head = frames(door_bursts / "bona_fide" / "obama-0")
    replay = frames(door_bursts / "attack" / "screen_replay" / "obama-0")

    # Not trained yet: the door cannot run its check and fails closed.
    before = client.verify_access(
        PASSIVE_DOOR, gallery, "obama", frames(training_set / "bona_fide" / "obama-0")
    )
    assert before.decision == "DENY" and before.reason_kind == "unavailable", before
    assert "pad-train" in before.reason

    material = collect(training_set, in_process, frames_per_burst=4)
    assert material.bursts == {"bona_fide": 8, "attack": 12} and not material.no_face
    job = train(client, PASSIVE_CHECK_NAME, material, seed=1, wait=True)
    assert job.state == "SUCCEEDED", job.error
    assert job.result is not None and job.result.pad is not None
    pad = job.result.pad
    # Cross-fitted: the served head learns from every burst, and every burst is scored by a head that never
    # saw it (5 folds) to place the threshold.
    assert (pad.validation_bona_fide_bursts, pad.validation_attack_bursts) == (8, 12)
    assert (pad.train_bona_fide_bursts, pad.train_attack_bursts) == (8, 12)
    assert set(pad.apcer_by_species) == {"screen_replay", "print_still"}, pad

    r = client.verify_access(PASSIVE_DOOR, gallery, "obama", replay)
    assert r.decision == "DENY" and r.reason_kind == "passive", r
    assert r.pad is not None and r.pad.verdict != "PAD_ATTACK"  # a replayed turn is no flat plane
    assert r.passive is not None and r.passive.check == f"trained:{PASSIVE_CHECK_NAME}" and r.passive.attack
    assert r.passive.score < r.passive.threshold == 0.5

    g = client.verify_access(PASSIVE_DOOR, gallery, "obama", head)
    assert g.decision == "GRANT" and g.reason_kind == "match", g
    assert g.passive is not None and not g.passive.attack and g.passive.score >= 0.5
    assert not math.isnan(g.passive.score)

    records = {x.audit_id: x for x in client.audit_records(PASSIVE_DOOR, limit=5)}
    for answer in (r, g):
        kept = records[answer.audit_id].passive
        assert kept is not None and answer.passive is not None
        assert (kept.check, kept.attack, kept.threshold, kept.reason) == (
            answer.passive.check,
            answer.passive.attack,
            answer.passive.threshold,
            answer.passive.reason,
        )
        assert kept.score == pytest.approx(answer.passive.score, abs=1e-3)

    # `fovea faces pad-eval DIR --passive NAME --json` as a site runs it beside its stack (nothing else given):
    # the check is read from the stack's user model repository, and the door row decides as the door did.
    done = fovea_cli(
        "faces",
        "pad-eval",
        str(door_bursts),
        "--passive",
        PASSIVE_CHECK_NAME,
        "--json",
        environment={
            "FOVEA_DATA_DIR": str(stack.settings.data),
            "FOVEA_FACES_TRAINED_REPOSITORY": None,
            "FOVEA_USER_MODEL_REPOSITORY": None,
        },
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    door = report["checks"]["door"]
    assert (door["bona_fide_sequences"], door["attack_sequences"]) == (1, {"screen_replay": 1}), door
    assert door["apcer"] == 0.0 and door["bpcer"] == 0.0, door
