"""`fovea faces pad-eval` and `pad-synth`: a labelled set written from the sample portraits (bona fide
heads turned by the 2.5D head model, prints and screens moved), scored through the served detector in
process, and the ISO/IEC 30107-3 table."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fovea.client import AccessResult, PadCheck
from fovea.convert.samples import sample
from fovea.faces.access.core.pad import GeometrySettings
from fovea.faces.tools.inprocess import InProcessFaces
from fovea.faces.tools.pad_eval import (
    SYNTH_ATTACKS,
    evaluate,
    evaluate_in_process,
    find_sequences,
    frame_order,
    write_synthetic_dir,
    write_synthetic_set,
)
from fovea.faces.tools.pad_eval_door import DoorAnswer, door_answer, evaluate_door
from fovea.faces.tools.pad_synth_dir import photo_tags


@pytest.fixture(scope="module")
def labelled(in_process: InProcessFaces, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pad-set")
    counts = write_synthetic_dir(out, in_process, seed=3, per_photo=1, frames=5, photos=("obama2", "biden"))
    assert counts == {"bona_fide": 2, **{f"attack/{s}": 2 for s in SYNTH_ATTACKS}}
    return out


def test_the_synthetic_set_is_told_apart(labelled: Path, in_process: InProcessFaces) -> None:
    """The geometry check on what MTCNN finds in the rendered frames: the turned heads score 0.10-0.30
    IOD of parallax (40 sequences of `pad-synth --per-photo 10`, seed 7), flat prints and screens
    0.00-0.10, prints bent like paper (radius 0.5-2 print widths, turned 25-40 degrees about the bend)
    0.00-0.10; here the threshold 0.12 separates them with no error."""
    report = evaluate(labelled, in_process, GeometrySettings())
    geometry = report.reports["geometry"]
    assert geometry.bona_fide == 2 and geometry.attacks == {s: 2 for s in SYNTH_ATTACKS}
    assert geometry.apcer == 0.0 and geometry.bpcer == 0.0 and geometry.acer == 0.0, report.as_text()
    assert [s.faces for s in report.sequences] == [5] * len(report.sequences)  # a face in every frame
    bona = [s.scores["geometry"] for s in report.sequences if s.species == "bona_fide"]
    attacks = [s.scores["geometry"] for s in report.sequences if s.species != "bona_fide"]
    assert bona and attacks and min(bona) > 0.12 > max(attacks)
    text = report.as_text()
    assert "APCER (worst species)" in text and "BPCER @ APCER <= 1%" in text and "screen_tilt" in text
    assert "print_bent_h" in text


def test_the_dense_check_runs_in_process(
    labelled: Path, in_process: InProcessFaces, repository: Path
) -> None:
    """With the face_mesh model, the door's pad_check dense verdict gets its own row (margin, threshold 1)
    over the same sequences: the 2 rendered heads pass it and no print or screen does."""
    from fovea.faces.access.core.pad_dense import COMBINED_CHECK, DenseSettings
    from fovea.serving.triton_adapter import load_from_repository

    mesh = load_from_repository("fovea.serving.face_mesh", repository / "face_mesh")
    report = evaluate(labelled, in_process, GeometrySettings(), dense=DenseSettings(), mesh=mesh)
    dense = report.reports[COMBINED_CHECK]
    assert dense.bona_fide == 2 and dense.apcer == 0.0, report.as_text()
    assert report.thresholds[COMBINED_CHECK] == 1.0 and COMBINED_CHECK in report.as_text()


class ConstantPassive:
    """Stands in for a trained passive check (``PassiveScorer``: a model trained on site, which this module's
    fixtures do not have): every burst scores 0.9. What is under test is the pad-eval path that runs the
    dense check and the passive check over the same frames, not the scorer."""

    def score(self, burst: Any) -> float:
        assert len(burst.cuts) and len(burst.landmarks) == 5
        return 0.9


def test_the_dense_and_the_passive_checks_run_together(
    labelled: Path, in_process: InProcessFaces, repository: Path
) -> None:
    """`pad-eval --dense --passive NAME`: both rows from one detection per frame (it once failed with an
    UnboundLocalError: the passive path skipped the faces the dense check reads)."""
    from fovea.faces.access.core.pad_dense import COMBINED_CHECK, DenseSettings
    from fovea.faces.tools.pad_eval import DOOR_CHECK, PASSIVE_CHECK
    from fovea.serving.triton_adapter import load_from_repository

    mesh = load_from_repository("fovea.serving.face_mesh", repository / "face_mesh")
    report = evaluate(
        labelled,
        in_process,
        GeometrySettings(),
        dense=DenseSettings(),
        mesh=mesh,
        passive=ConstantPassive(),  # type: ignore[arg-type]
    )
    assert {COMBINED_CHECK, PASSIVE_CHECK, DOOR_CHECK} <= set(report.reports), report.as_text()
    assert report.reports[COMBINED_CHECK].bona_fide == 2 and report.reports[COMBINED_CHECK].apcer == 0.0


def test_in_process_with_the_services_settings(labelled: Path, repository: Path) -> None:
    """What `fovea faces pad-eval DIR` runs: the faces service's settings, the models of a repository."""
    report = evaluate_in_process(labelled, model_repository=repository)
    out = json.loads(json.dumps(report.as_dict()))
    geometry = out["checks"]["geometry"]
    assert geometry["threshold"] == 0.12 and geometry["apcer"] == 0.0 and geometry["bpcer"] == 0.0
    assert [p["apcer_target"] for p in geometry["operating_points"]] == [0.01, 0.05]
    assert len(out["sequences"]) == 2 + 2 * len(SYNTH_ATTACKS)
    strict = evaluate_in_process(labelled, model_repository=repository, min_parallax=0.9).as_text()
    assert re.search(r"BPCER\s+2\s+100\.00%", strict), strict


def test_a_set_is_written_into_an_empty_folder_only(repository: Path, tmp_path: Path) -> None:
    """What `fovea faces pad-synth OUT` runs (the sample portraits, the repository's face detector)."""
    out = tmp_path / "set"
    counts = write_synthetic_set(out, per_photo=1, frames=3, model_repository=repository)
    assert counts == {"bona_fide": 4, **{f"attack/{s}": 4 for s in SYNTH_ATTACKS}}
    assert len(list((out / "bona_fide" / "obama-0").glob("*.jpg"))) == 3
    with pytest.raises(ValueError, match="not empty"):
        write_synthetic_set(out, per_photo=1, frames=3, model_repository=repository)


def test_a_set_is_made_from_your_own_photo_files(repository: Path, tmp_path: Path) -> None:
    """`pad-synth --photos` takes photo files (a stage video's frame, a staff photo) besides the samples,
    named after the file's stem; two files of one stem stay apart; a file that is not a photo is refused."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine = tmp_path / "a" / "door cam 1.jpg"
    shutil.copy(sample("obama2"), mine)
    shutil.copy(sample("biden"), tmp_path / "b" / "door cam 1.jpg")
    out = tmp_path / "set"
    photos = (str(mine), f"{tmp_path / 'b' / 'door cam 1.jpg'}@0.5")
    counts = write_synthetic_set(
        out, per_photo=1, frames=3, photos=photos, attacks=("print_still",), model_repository=repository
    )
    assert counts == {"bona_fide": 2, "attack/print_still": 2}
    assert sorted(p.name for p in (out / "bona_fide").iterdir()) == ["door_cam_1-0", "door_cam_1@0.5-0"]
    (tmp_path / "notes.txt.jpg").write_text("not a photo")
    with pytest.raises(ValueError, match="not a readable photo"):
        write_synthetic_set(
            tmp_path / "x", photos=(str(tmp_path / "notes.txt.jpg"),), model_repository=repository
        )
    assert photo_tags(["a/me.jpg", "b/me.jpg", "obama2@0.5"]) == ["me", "me-2", "obama2@0.5"]


def test_layouts(labelled: Path, tmp_path: Path) -> None:
    # attack/<seq>/*.jpg without species folders: one species, "attack"
    flat = tmp_path / "flat"
    shutil.copytree(labelled / "bona_fide", flat / "bona_fide")
    shutil.copytree(labelled / "attack" / "print_tilt" / "biden-0", flat / "attack" / "seq-1")
    bona, attacks = find_sequences(flat)
    assert len(bona) == 2 and list(attacks) == ["attack"] and attacks["attack"][0].name == "attack/seq-1"
    assert len(attacks["attack"][0].frames) == 5
    with pytest.raises(ValueError, match="bona_fide/<seq>"):
        find_sequences(tmp_path / "flat" / "attack")
    (flat / "bona_fide" / "empty").mkdir()
    with pytest.raises(ValueError, match="no frames"):
        find_sequences(flat)


def test_frames_keep_the_order_they_were_taken_in(tmp_path: Path) -> None:
    """Frames numbered without leading zeros (``f2`` before ``f10``) in their numbers' order; the geometry
    check and the identity-change test compare consecutive frames."""
    for kind in ("bona_fide/s1", "attack/s2"):
        (tmp_path / kind).mkdir(parents=True)
        for i in (0, 1, 2, 9, 10, 11, 14):
            (tmp_path / kind / f"frame_{i}.jpg").write_bytes(b"x")
    (tmp_path / "attack/s2/frame_3.PNG").write_bytes(b"x")
    bona, attacks = find_sequences(tmp_path)
    assert [p.name for p in bona[0].frames] == [f"frame_{i}.jpg" for i in (0, 1, 2, 9, 10, 11, 14)]
    assert [p.stem for p in attacks["attack"][0].frames][:5] == [
        "frame_0",
        "frame_1",
        "frame_2",
        "frame_3",
        "frame_9",
    ]
    padded = sorted([Path("f0010.jpg"), Path("f0002.jpg"), Path("f0001.jpg")], key=frame_order)
    assert [p.name for p in padded] == ["f0001.jpg", "f0002.jpg", "f0010.jpg"]
    assert sorted([Path("b.jpg"), Path("a10.jpg"), Path("a9.jpg")], key=frame_order) == [
        Path("a9.jpg"),
        Path("a10.jpg"),
        Path("b.jpg"),
    ]


def door_set(root: Path, sequences: dict[str, int]) -> Path:
    """A labelled DIR whose frames are placeholders: each frame's bytes name its sequence (``label/seq``)
    and its index, which is all :func:`evaluate_door` passes on."""
    for name, frames in sequences.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(frames):
            (folder / f"{i:03d}.jpg").write_bytes(f"{name}#{i}".encode())
    return root


def test_door_answers_make_a_geometry_and_a_door_row(tmp_path: Path) -> None:
    """evaluate_door's reading of VerifyAccess answers: the PAD score gives the geometry row (undecided =
    an attack classification), the reason kind the door row; a refused burst is in neither."""
    root = door_set(
        tmp_path,
        {
            "bona_fide/a": 12,  # sent as 10 frames, sampled evenly (0, 1, 2, 4, 5, 6, 7, 9, 10, 11)
            "bona_fide/b": 5,
            "bona_fide/c": 5,
            "attack/print/x": 5,
            "attack/print/y": 5,
            "attack/screen/z": 5,
        },
    )
    answers = {  # by sequence: (decision, reason kind, verdict, score)
        "bona_fide/a": ("DENY", "unknown_identity", "PAD_BONA_FIDE", 0.2),
        "bona_fide/b": ("DENY", "pad", "PAD_ATTACK", 0.1),  # a bona fide burst the door denies
        "bona_fide/c": ("DENY", "replay", "PAD_NOT_CHECKED", 0.0),  # refused before it was judged
        "attack/print/x": ("DENY", "pad", "PAD_UNDECIDED", float("nan")),
        "attack/print/y": ("DENY", "pad", "PAD_ATTACK", 0.05),
        "attack/screen/z": ("GRANT", "match", "PAD_BONA_FIDE", 0.13),  # an attack that gets in
    }
    sent: dict[str, int] = {}

    def ask(frames: list[bytes]) -> DoorAnswer:
        name = frames[0].decode().split("#")[0]
        sent[name] = len(frames)
        decision, kind, verdict, score = answers[name]
        return DoorAnswer(decision, kind, f"{kind} because", verdict, score, 0.12)

    report = evaluate_door(root, ask, door="vault", max_frames=10)
    assert sent == {name: 10 if name == "bona_fide/a" else 5 for name in answers}
    geometry, door = report.reports["geometry"], report.reports["door"]
    assert report.thresholds == {"geometry": 0.12, "door": 0.5}
    # geometry at 0.12: bona fide 0.2 pass, 0.1 fails -> BPCER 1/2; print nan, 0.05 -> 0/2; screen 0.13 -> 1/1
    assert geometry.bona_fide == 2 and geometry.attacks == {"print": 2, "screen": 1}
    assert geometry.bpcer == 0.5 and geometry.apcer_by_species == {"print": 0.0, "screen": 1.0}
    assert [p.apcer for p in geometry.operating_points] == [0.01, 0.05]
    # door: bona fide a accepted (no match is no PAD denial), b denied; screen z granted
    assert door.bpcer == 0.5 and door.apcer_by_species == {"print": 0.0, "screen": 1.0}
    assert door.operating_points == ()
    assert [(r.name, r.reason_kind) for r in report.refused] == [("bona_fide/c", "replay")]
    text = report.as_text()
    assert text.startswith("door vault (through the gateway)\ncheck geometry: 2 bona fide and 3 attack")
    assert "check door: 2 bona fide and 3 attack sequences, the door's decision" in text, text
    assert "  bona_fide/c: replay: replay because" in text
    data = report.as_dict()
    assert data["door"] == "vault" and data["checks"]["door"]["threshold"] is None
    assert data["refused"][0]["reason_kind"] == "replay"
    assert {s["name"]: s["reason_kind"] for s in data["sequences"]}["bona_fide/b"] == "pad"

    # Every bona fide burst refused (a second run within the replay window): an error naming why.
    def replayed(frames: list[bytes]) -> DoorAnswer:
        return DoorAnswer("DENY", "replay", "replay: 5 frame(s) ...", "PAD_NOT_CHECKED", 0.0, 0.0)

    with pytest.raises(
        ValueError, match=r"door vault judged no sequence of bona_fide, print, screen: 6 refused"
    ):
        evaluate_door(root, replayed, door="vault", max_frames=10)
    with pytest.raises(ValueError, match="max_frames"):
        evaluate_door(root, ask, door="vault", max_frames=0)


def test_a_door_without_pad_gives_only_the_door_row(tmp_path: Path) -> None:
    root = door_set(tmp_path, {"bona_fide/a": 3, "attack/b": 3})

    def ask(frames: list[bytes]) -> DoorAnswer:
        return DoorAnswer("DENY", "no_match", "no match", "PAD_NOT_CHECKED", 0.0, 0.0)

    report = evaluate_door(root, ask, door="lobby", max_frames=10)
    assert list(report.reports) == ["door"] and report.reports["door"].apcer == 1.0


def test_a_species_that_pad_synth_does_not_make_is_refused(
    in_process: InProcessFaces, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="print_flying: choose from print_still"):
        write_synthetic_dir(tmp_path, in_process, attacks=("print_tilt", "print_flying"))
    assert not any(tmp_path.iterdir())


def test_the_score_row_is_named_after_the_doors_pad_check(tmp_path: Path) -> None:
    """A door with pad_check dense answers the combined check's score (a ratio, threshold 1.2); a judged
    burst without a PAD result counts as not bona fide on that row; a burst with no face is a failure to
    acquire, counted apart from the rates (ISO/IEC 30107-3)."""
    root = door_set(tmp_path, {"bona_fide/a": 3, "bona_fide/b": 3, "bona_fide/d": 3, "attack/c": 3})
    answers = {
        "bona_fide/a": DoorAnswer(
            "DENY", "no_match", "", "PAD_BONA_FIDE", 1.5, 1.2, "geometry+dense_geometry"
        ),
        "bona_fide/b": DoorAnswer("DENY", "liveness", "", "PAD_NOT_CHECKED", 0.0, 0.0, ""),
        "bona_fide/d": DoorAnswer("DENY", "no_face", "", "PAD_NOT_CHECKED", 0.0, 0.0, ""),
        "attack/c": DoorAnswer("DENY", "pad", "", "PAD_ATTACK", 1.1, 1.2, "geometry+dense_geometry"),
    }
    report = evaluate_door(
        root, lambda frames: answers[frames[0].decode().split("#")[0]], door="vault", max_frames=10
    )
    assert list(report.reports) == ["geometry+dense_geometry", "door"]
    assert report.thresholds["geometry+dense_geometry"] == 1.2
    dense = report.reports["geometry+dense_geometry"]
    assert dense.bpcer == 0.5 and dense.apcer == 0.0
    assert report.failures_to_acquire == {"bona_fide": 1} and report.reports["door"].bona_fide == 2
    at = evaluate_door(
        root, lambda f: answers[f[0].decode().split("#")[0]], door="vault", max_frames=10, threshold=1.0
    )
    assert at.reports["geometry+dense_geometry"].apcer == 1.0  # 1.1 >= 1.0: the print passes there


def test_the_mesh_of_a_reduced_phone_photo_is_in_its_full_pixels(
    in_process: InProcessFaces, repository: Path
) -> None:
    """A 12 MP photo decoded at half size: the face mesh, cropped from the reduced pixels and mapped back,
    lies where the mesh of the full decode lies (within 1% of the face's width)."""
    import numpy as np

    from fovea.common.images import ImageLimits, decode_image
    from fovea.convert.samples import phone_photo
    from fovea.faces.tools.pad_eval import _meshes
    from fovea.serving.triton_adapter import load_from_repository

    mesh = load_from_repository("fovea.serving.face_mesh", repository / "face_mesh")
    data = phone_photo("obama2", 1.5, seed=5)
    reduced = in_process.find_faces(data)
    full = in_process.detect(decode_image(data, ImageLimits()))
    assert reduced.reduction == 2 and full.reduction == 1
    [a] = _meshes(mesh, [reduced], [reduced.faces.take([0])], 0.5)
    [b] = _meshes(mesh, [full], [full.faces.take([0])], 0.5)
    assert a is not None and b is not None
    width = float(full.faces.boxes[0, 2] - full.faces.boxes[0, 0])
    assert width > 200 and np.abs(a[:, :2] - b[:, :2]).max() < 0.01 * width


def test_a_verify_access_answer_as_the_door_rows_read_it() -> None:
    pad = PadCheck("geometry", "PAD_ATTACK", 0.03, 0.12, ["the nose did not move"])
    result = AccessResult("DENY", "pad: flat", -1.0, 0.6, "dlib", "r1", "NOT_CHECKED", "a1", pad, "pad")
    assert door_answer(result) == DoorAnswer("DENY", "pad", "pad: flat", "PAD_ATTACK", 0.03, 0.12, "geometry")
    unchecked = door_answer(replace(result, pad=None, reason_kind="no_match"))
    assert (unchecked.pad_verdict, unchecked.pad_check) == ("PAD_NOT_CHECKED", "")
    assert math.isnan(unchecked.pad_score) and math.isnan(unchecked.pad_threshold)
