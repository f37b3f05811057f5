"""The gateway's proto messages -> the client's dataclasses (:mod:`fovea.client.results`), and the few the
client builds from its own types. Enum values become their names; distances, scores and thresholds are
rounded to 4 decimals, boxes to 2 (what a person reads, and what the JSON output shows)."""

from __future__ import annotations

from fovea.classify.v1 import classify_pb2
from fovea.client.results import (
    AccessResult,
    AuditRecord,
    Candidate,
    ChallengeCheck,
    Classification,
    ClassifierInfo,
    ClassifierVersion,
    ClassifyResult,
    Detection,
    DetectResult,
    ExplainResult,
    FaceEvent,
    Gallery,
    GatysParams,
    IdentifiedFace,
    Identity,
    ModelInfo,
    PadCheck,
    PadTrainingResult,
    PassiveCheck,
    StyleJob,
    StyleProgress,
    Template,
    TrainedClass,
    TrainingJob,
    TrainingResult,
    VerifyResult,
)
from fovea.common.v1 import common_pb2
from fovea.detection.v1 import detection_pb2
from fovea.faces.v1 import faces_pb2
from fovea.models.v1 import models_pb2
from fovea.style.v1 import style_pb2


def box(b: common_pb2.BoundingBox) -> list[float]:
    return [round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2)]


def model_info(m: models_pb2.ModelInfo) -> ModelInfo:
    return ModelInfo(m.name, m.version, m.state, m.reason)


# --------------------------------------------------------------------------------------------- detection
def detect_result(reply: detection_pb2.DetectResponse) -> DetectResult:
    return DetectResult(
        image_size=[reply.image_size.width, reply.image_size.height],
        model=reply.model,
        detections=[Detection(d.label, d.class_id, round(d.score, 4), box(d.box)) for d in reply.detections],
        annotated_png=reply.annotated_png or None,
    )


# ---------------------------------------------------------------------------------------- classification
def classification(c: classify_pb2.Classification) -> Classification:
    return Classification(c.label, c.class_id, round(c.probability, 4))


def classify_result(reply: classify_pb2.ClassifyResponse) -> ClassifyResult:
    return ClassifyResult(
        image_size=[reply.image_size.width, reply.image_size.height],
        model=reply.model,
        classifications=[classification(c) for c in reply.classifications],
        version=reply.version,
    )


def explain_result(reply: classify_pb2.ExplainResponse) -> ExplainResult:
    width = reply.map_width
    values = [round(v, 4) for v in reply.heatmap]
    return ExplainResult(
        image_size=[reply.image_size.width, reply.image_size.height],
        model=reply.model,
        explained=classification(reply.explained),
        top=classification(reply.top),
        heatmap=[values[r * width : (r + 1) * width] for r in range(reply.map_height)],
        peak=reply.peak,
        crop=[reply.crop.x1, reply.crop.y1, reply.crop.x2, reply.crop.y2],
        png=reply.png or None,
    )


def classifier_version(v: classify_pb2.ClassifierVersion) -> ClassifierVersion:
    return ClassifierVersion(
        version=v.version,
        labels=list(v.labels),
        created=v.created,
        validation_accuracy=round(v.validation_accuracy, 4),
        train_images=v.train_images,
        job_id=v.job_id,
    )


def classifier_info(c: classify_pb2.ClassifierInfo) -> ClassifierInfo:
    return ClassifierInfo(
        name=c.name,
        input_size=c.input_size,
        resize_side=c.resize_side,
        classes=len(c.labels),
        is_default=c.is_default,
        trained=c.trained,
        active_version=c.active_version,
        versions=[classifier_version(v) for v in c.versions],
    )


def training_result(r: classify_pb2.TrainingResult) -> TrainingResult:
    n = len(r.labels)
    return TrainingResult(
        version=r.version,
        validation_accuracy=round(r.validation_accuracy, 4),
        train_accuracy=round(r.train_accuracy, 4),
        labels=list(r.labels),
        classes=[
            TrainedClass(
                c.label, round(c.accuracy, 4), round(c.precision, 4), c.validation_images, c.train_images
            )
            for c in r.classes
        ],
        confusion=[list(r.confusion[i * n : (i + 1) * n]) for i in range(n)],
        feature_seconds=round(r.feature_seconds, 3),
        train_seconds=round(r.train_seconds, 3),
        features_cached=r.features_cached,
        features_computed=r.features_computed,
        pad=pad_training_result(r.pad) if r.HasField("pad") else None,
    )


def pad_training_result(p: classify_pb2.PadCalibration) -> PadTrainingResult:
    return PadTrainingResult(
        p.train_bona_fide_bursts,
        p.train_attack_bursts,
        p.validation_bona_fide_bursts,
        p.validation_attack_bursts,
        round(p.logit_shift, 4),
        round(p.bpcer, 4),
        round(p.apcer, 4),
        round(p.crop_bpcer, 4),
        round(p.crop_apcer, 4),
        {k: round(v, 4) for k, v in sorted(p.apcer_by_species.items())},
    )


def training_job(job: classify_pb2.TrainingJob) -> TrainingJob:
    return TrainingJob(
        job_id=job.job_id,
        name=job.name,
        state=classify_pb2.TrainingState.Name(job.state).removeprefix("TRAINING_"),
        stage=job.stage,
        epoch=job.epoch,
        epochs=job.epochs,
        loss=round(job.loss, 5),
        validation_accuracy=round(job.validation_accuracy, 4),
        error=job.error,
        result=training_result(job.result) if job.HasField("result") else None,
    )


# ------------------------------------------------------------------------------------------------- faces
def gallery(g: faces_pb2.Gallery) -> Gallery:
    return Gallery(g.gallery_id, round(g.threshold, 4), g.embedding_model, g.identity_count, dict(g.metadata))


def identity(i: faces_pb2.Identity) -> Identity:
    templates = [Template(t.template_id, t.embedding_model, t.created_unix_ms) for t in i.templates]
    return Identity(i.gallery_id, i.identity_id, dict(i.metadata), templates)


def verify_result(reply: faces_pb2.VerifyResponse) -> VerifyResult:
    return VerifyResult(
        reply.match,
        round(reply.distance, 4),
        round(reply.threshold, 4),
        reply.embedding_model,
        box(reply.face.box),
    )


def identified_face(f: faces_pb2.IdentifiedFace) -> IdentifiedFace:
    return IdentifiedFace(
        box(f.face.box),
        f.identity_id or None,
        round(f.distance, 4),
        [Candidate(c.identity_id, round(c.distance, 4)) for c in f.candidates],
    )


def pad_check(p: faces_pb2.PadCheck) -> PadCheck:
    return PadCheck(
        p.check,
        faces_pb2.PadVerdict.Name(p.verdict),
        round(p.score, 4),
        round(p.threshold, 4),
        list(p.reasons),
    )


def challenge_check(c: faces_pb2.ChallengeCheck) -> ChallengeCheck | None:
    if not c.challenge_id:
        return None
    return ChallengeCheck(c.challenge_id, c.kind, c.met, round(c.motion, 4), round(c.threshold, 4), c.reason)


def passive_check(p: faces_pb2.PassiveCheck) -> PassiveCheck | None:
    if not p.check:
        return None
    return PassiveCheck(p.check, round(p.score, 4), round(p.threshold, 4), p.attack, p.reason)


def access_result(r: faces_pb2.VerifyAccessResponse) -> AccessResult:
    return AccessResult(
        faces_pb2.AccessDecision.Name(r.decision),
        r.reason,
        round(r.distance, 4),
        round(r.threshold, 4),
        r.embedding_model,
        r.request_id,
        faces_pb2.LivenessResult.Name(r.liveness),
        r.audit_id,
        pad_check(r.pad),
        r.reason_kind,
        challenge_check(r.challenge),
        passive_check(r.passive),
    )


def audit_record(r: faces_pb2.AuditRecord) -> AuditRecord:
    return AuditRecord(
        r.audit_id,
        r.unix_ms,
        r.door_id,
        r.gallery_id,
        r.claimed_identity_id,
        faces_pb2.AccessDecision.Name(r.decision),
        r.reason,
        round(r.distance, 4),
        round(r.threshold, 4),
        r.embedding_model,
        r.request_id,
        faces_pb2.LivenessResult.Name(r.liveness),
        r.frame_count,
        r.matching_frames,
        pad_check(r.pad),
        r.reason_kind,
        challenge_check(r.challenge),
        passive_check(r.passive),
    )


def face_event(e: faces_pb2.Event) -> FaceEvent:
    decision = (
        ""
        if e.decision == faces_pb2.ACCESS_DECISION_UNSPECIFIED
        else faces_pb2.AccessDecision.Name(e.decision)
    )
    return FaceEvent(
        e.event_id,
        e.kind,
        e.unix_ms,
        e.door_id,
        e.gallery_id,
        e.identity_id,
        decision,
        e.reason,
        e.reason_kind,
        e.audit_id,
        e.request_id,
    )


# ------------------------------------------------------------------------------------------------- style
def style_job(job: style_pb2.Job) -> StyleJob:
    p = job.progress
    return StyleJob(
        job_id=job.job_id,
        state=style_pb2.JobState.Name(job.state),
        progress=StyleProgress(
            p.iteration,
            p.total_iterations,
            p.content_cost,
            p.style_cost,
            p.total_cost,
            p.preview_png or None,
        ),
        error=job.error,
        created_unix_ms=job.created_unix_ms,
        updated_unix_ms=job.updated_unix_ms,
        kind=job.kind,
        result_expired=job.result_expired,
        preserve_color=job.preserve_color,
        result_png=job.result_png or None,
    )


def gatys_params(g: GatysParams) -> style_pb2.GatysParams:
    """``ValueError`` for an optimizer or init the proto does not name."""

    def enum(kind: str, value: str, names: tuple[str, ...]) -> str:
        if value and value.upper() not in names:
            raise ValueError(f"unknown {kind} {value!r}; known: {', '.join(n.lower() for n in names)}")
        return value.upper() or f"{kind.upper()}_UNSPECIFIED"

    return style_pb2.GatysParams(
        iterations=g.iterations,
        alpha=g.alpha,
        beta=g.beta,
        optimizer=enum("optimizer", g.optimizer, ("LBFGS", "ADAM")),  # protobuf takes an enum's name
        init=enum("init", g.init, ("CONTENT", "NOISE")),
        max_side=g.max_side,
        learning_rate=g.learning_rate,
        content_layer=g.content_layer,
        style_layers=g.style_layers,
        preview_every=g.preview_every,
    )
