"""A door's decision as the faces service's v1 messages (proto <-> domain for VerifyAccess and
ListAuditRecords, kept apart from ``servicer.py``): the response a caller may see, the PAD, passive and
challenge checks in it, and an audit record read back from its stored fields."""

from __future__ import annotations

import json
from dataclasses import replace

from fovea.common.logs import client_request_id_var, request_id_var
from fovea.faces.access.core.access import without_enrollment
from fovea.faces.access.core.challenge import ChallengeResult
from fovea.faces.access.core.pad import CHECK as PAD_CHECK
from fovea.faces.access.core.pad import PadResult, PadVerdict
from fovea.faces.access.core.passive import PassiveResult
from fovea.faces.access.door import AccessOutcome
from fovea.faces.v1 import faces_pb2

DECISIONS = {"GRANT": faces_pb2.GRANT, "DENY": faces_pb2.DENY}
LIVENESS = {"NOT_CHECKED": faces_pb2.NOT_CHECKED, "LIVE": faces_pb2.LIVE, "SPOOF": faces_pb2.SPOOF}


def access_response(
    outcome: AccessOutcome, *, admin: bool, challenge_id: str = ""
) -> faces_pb2.VerifyAccessResponse:
    """The decision as the caller may see it: without ``faces:admin``, an identity that is not enrolled
    reads like a non-match (the audit record has the full reason)."""
    if not admin:
        outcome = replace(outcome, result=without_enrollment(outcome.result))
    r = outcome.result
    return faces_pb2.VerifyAccessResponse(
        decision=DECISIONS[r.decision.value],
        reason=r.reason,
        distance=outcome.distance,
        threshold=r.threshold,
        embedding_model=outcome.embedding_model,
        request_id=request_id_var.get(),
        liveness=LIVENESS[r.liveness.value],
        audit_id=outcome.audit_id,
        client_request_id=client_request_id_var.get(),
        pad=pad_check(r.pad),
        reason_kind=r.kind,
        challenge=challenge_check(r.challenge, challenge_id),
        passive=passive_check(r.passive),
    )


PAD_VERDICTS = {
    "NOT_CHECKED": faces_pb2.PAD_NOT_CHECKED,
    PadVerdict.BONA_FIDE.value: faces_pb2.PAD_BONA_FIDE,
    PadVerdict.ATTACK.value: faces_pb2.PAD_ATTACK,
    PadVerdict.UNDECIDED.value: faces_pb2.PAD_UNDECIDED,
}


def pad_check(pad: PadResult | None) -> faces_pb2.PadCheck:
    if pad is None:
        return faces_pb2.PadCheck(verdict=faces_pb2.PAD_NOT_CHECKED)
    return faces_pb2.PadCheck(
        check=pad.check,
        verdict=PAD_VERDICTS[pad.verdict.value],
        score=pad.score,
        threshold=pad.threshold,
        reasons=list(pad.reasons),
    )


def recorded_pad(fields: dict[str, str]) -> faces_pb2.PadCheck:
    """The PadCheck of an audit record's fields (records from before the check have none: NOT_CHECKED)."""
    verdict = PAD_VERDICTS.get(fields.get("pad_verdict", ""), faces_pb2.PAD_NOT_CHECKED)
    if verdict == faces_pb2.PAD_NOT_CHECKED:
        return faces_pb2.PadCheck(verdict=verdict)
    return faces_pb2.PadCheck(
        check=PAD_CHECK,
        verdict=verdict,
        score=float(fields.get("pad_score") or "nan"),
        threshold=float(fields.get("pad_threshold") or 0),
        reasons=json.loads(fields.get("pad_reasons") or "[]"),
    )


def passive_check(p: PassiveResult | None) -> faces_pb2.PassiveCheck:
    """The response's passive check: empty when the door ran none."""
    if p is None:
        return faces_pb2.PassiveCheck()
    return faces_pb2.PassiveCheck(
        check=p.check, score=p.score, threshold=p.threshold, attack=p.attack, reason=p.reason
    )


def recorded_passive(fields: dict[str, str]) -> faces_pb2.PassiveCheck:
    """The PassiveCheck of an audit record's fields (``door.passive_fields``; empty for a record without
    one)."""
    if not fields.get("passive_check"):
        return faces_pb2.PassiveCheck()
    return faces_pb2.PassiveCheck(
        check=fields["passive_check"],
        score=float(fields.get("passive_score") or "nan"),
        threshold=float(fields.get("passive_threshold") or "nan"),
        attack=fields.get("passive_attack") == "true",
        reason=fields.get("passive_reason", ""),
    )


def challenge_check(c: ChallengeResult | None, challenge_id: str) -> faces_pb2.ChallengeCheck:
    """The response's challenge: the motion check when it ran, else only the id the request carried."""
    if c is None:
        return faces_pb2.ChallengeCheck(challenge_id=challenge_id[:64], motion=float("nan"))
    return faces_pb2.ChallengeCheck(
        challenge_id=c.challenge_id,
        kind=c.kind,
        met=c.met,
        motion=c.motion,
        threshold=c.threshold,
        reason=c.reason,
    )


def recorded_challenge(fields: dict[str, str]) -> faces_pb2.ChallengeCheck:
    """The ChallengeCheck of an audit record's fields (``door.challenge_fields``)."""
    return faces_pb2.ChallengeCheck(
        challenge_id=fields.get("challenge_id", ""),
        kind=fields.get("challenge_kind", ""),
        met=fields.get("challenge_met") == "true",
        motion=float(fields.get("challenge_motion") or "nan"),
        threshold=float(fields.get("challenge_threshold") or 0),
        reason=fields.get("challenge_reason", ""),
    )


def audit_record(audit_id: str, f: dict[str, str]) -> faces_pb2.AuditRecord:
    """An audit record's stored fields (``DoorAccess._fields``) as ListAuditRecords returns it; fields a
    record from an older version lacks take their empty values."""
    return faces_pb2.AuditRecord(
        audit_id=audit_id,
        unix_ms=int(f.get("unix_ms", 0)),
        door_id=f.get("door_id", ""),
        gallery_id=f.get("gallery_id", ""),
        claimed_identity_id=f.get("claimed_identity_id", ""),
        decision=DECISIONS.get(f.get("decision", ""), faces_pb2.DENY),
        reason=f.get("reason", ""),
        distance=float(f.get("distance", -1)),
        threshold=float(f.get("threshold", 0)),
        embedding_model=f.get("embedding_model", ""),
        request_id=f.get("request_id", ""),
        client_request_id=f.get("client_request_id", ""),
        liveness=LIVENESS.get(f.get("liveness", ""), faces_pb2.NOT_CHECKED),
        frame_count=int(f.get("frame_count", 0)),
        matching_frames=int(f.get("matching_frames", 0)),
        pad=recorded_pad(f),
        reason_kind=f.get("kind", ""),
        challenge=recorded_challenge(f),
        passive=recorded_passive(f),
    )


__all__ = [
    "DECISIONS",
    "LIVENESS",
    "PAD_VERDICTS",
    "access_response",
    "audit_record",
    "challenge_check",
    "pad_check",
    "passive_check",
    "recorded_challenge",
    "recorded_pad",
    "recorded_passive",
]
