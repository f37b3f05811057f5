"""``fovea faces``: galleries, enrollment, verify / identify, door access, its audit trail and events,
webhook dead letters (client calls), and the offline measures: ``eval`` (verification accuracy through the
gateway), ``pad-eval`` and ``pad-synth`` (presentation-attack detection; in process or through a door),
which need the server packages."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fovea.cli import faces_pad
from fovea.cli.output import Group, connect, emit, fail, gateway_call
from fovea.client import FoveaClient, FoveaClientError, PassiveCheck

if TYPE_CHECKING:
    from fovea.client import FaceEvent


@click.group(cls=Group)
def faces() -> None:
    """Galleries, enrollment, verify / identify, door access and its audit trail, evaluation."""


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--meta")
        out[key] = value
    return out


@faces.group("gallery")
def faces_gallery() -> None:
    """Create, show, list and delete galleries (independent namespaces, each with its threshold)."""


@faces_gallery.command("create")
@click.argument("gallery")
@click.option("--threshold", type=float, default=0.0, help="Match when distance < this (0 = model default)")
@click.option("--meta", multiple=True, help="KEY=VALUE, repeatable")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_create(gallery: str, threshold: float, meta: tuple[str, ...], as_json: bool) -> None:
    emit(asdict(gateway_call(lambda c: c.create_gallery(gallery, threshold, _metadata(meta)))), as_json)


@faces_gallery.command("get")
@click.argument("gallery")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_get(gallery: str, as_json: bool) -> None:
    emit(asdict(gateway_call(lambda c: c.get_gallery(gallery))), as_json)


@faces_gallery.command("list")
@click.option("--json", "as_json", is_flag=True)
def faces_gallery_list(as_json: bool) -> None:
    galleries = gateway_call(lambda c: c.list_galleries())
    human = "\n".join(
        f"{g.gallery_id:<24} {g.identity_count:>8} identities  threshold {g.threshold:.2f}  {g.embedding_model}"
        for g in galleries
    )
    emit([asdict(g) for g in galleries], as_json, human or "no galleries")


@faces_gallery.command("delete")
@click.argument("gallery")
def faces_gallery_delete(gallery: str) -> None:
    gateway_call(lambda c: c.delete_gallery(gallery))
    click.echo(f"deleted gallery {gallery}")


@faces.command("enroll")
@click.option("--gallery", required=True)
@click.option("--identity", required=True)
@click.option(
    "--face-index", type=int, default=-1, help="Which face when a photo holds several (0 = largest)"
)
@click.option("--meta", multiple=True, help="Identity metadata KEY=VALUE, repeatable")
@click.option("--create-only", is_flag=True, help="Fail when the identity exists instead of adding templates")
@click.option("--create-gallery", is_flag=True, help="Create the gallery first when it does not exist")
@click.argument(
    "images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True)
def faces_enroll(
    gallery: str,
    identity: str,
    face_index: int,
    meta: tuple[str, ...],
    create_only: bool,
    create_gallery: bool,
    images: tuple[Path, ...],
    as_json: bool,
) -> None:
    """One template per photo; the identity is created when new."""

    def run(client: FoveaClient) -> list[str]:
        if create_gallery:
            client.ensure_gallery(gallery)
        photos = [p.read_bytes() for p in images]
        return client.enroll(
            gallery, identity, photos, face_index, metadata=_metadata(meta), create_only=create_only
        )

    emit({"gallery": gallery, "identity": identity, "templates": gateway_call(run)}, as_json)


@faces.group("identity")
def faces_identity() -> None:
    """Show, list and delete identities and their templates."""


@faces_identity.command("get")
@click.option("--gallery", required=True)
@click.argument("identity")
@click.option("--json", "as_json", is_flag=True)
def faces_identity_get(gallery: str, identity: str, as_json: bool) -> None:
    emit(asdict(gateway_call(lambda c: c.get_identity(gallery, identity))), as_json)


@faces_identity.command("list")
@click.option("--gallery", required=True)
@click.option("--page-size", type=int, default=0, help="0 = the service's default (100)")
@click.option("--page-token", default="", help="next_page_token of the previous page")
@click.option("--json", "as_json", is_flag=True)
def faces_identity_list(gallery: str, page_size: int, page_token: str, as_json: bool) -> None:
    page = gateway_call(lambda c: c.list_identities(gallery, page_size, page_token))
    human = "\n".join(f"{i.identity_id}  ({len(i.templates)} templates)" for i in page.identities)
    if page.next_page_token:
        human += f"\nmore: --page-token {page.next_page_token}"
    emit(asdict(page), as_json, human)


@faces_identity.command("delete")
@click.option("--gallery", required=True)
@click.option("--template", default="", help="Delete only this template of the identity")
@click.argument("identity")
def faces_identity_delete(gallery: str, template: str, identity: str) -> None:
    """Deleted faces stop matching at once, on every replica."""
    if template:
        gateway_call(lambda c: c.delete_template(gallery, identity, template))
        click.echo(f"deleted template {template} of {identity} in {gallery}")
    else:
        gateway_call(lambda c: c.delete_identity(gallery, identity))
        click.echo(f"deleted identity {identity} from {gallery}")


@faces.command("verify")
@click.option("--gallery", required=True)
@click.option("--identity", required=True)
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def faces_verify(gallery: str, identity: str, image: Path, as_json: bool) -> None:
    """1:1: is the (largest) face in the photo the claimed identity?"""
    emit(asdict(gateway_call(lambda c: c.verify(gallery, identity, image.read_bytes()))), as_json)


@faces.command("identify")
@click.option("--gallery", required=True)
@click.option("--top-k", type=int, default=1, help="Nearest identities listed per face")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def faces_identify(gallery: str, top_k: int, image: Path, as_json: bool) -> None:
    """1:N: who is every face in the photo (identity null = unknown)."""
    found = gateway_call(lambda c: c.identify(gallery, image.read_bytes(), top_k))
    emit({"faces": [asdict(f) for f in found]}, as_json)


@faces.command("begin-access")
@click.argument("door")
@click.option("--json", "as_json", is_flag=True)
def faces_begin_access(door: str, as_json: bool) -> None:
    """A challenge for DOOR (its policy must use challenges): what the person must do, and the id and
    token to send with the burst (`fovea faces access --challenge-id ID --token TOKEN`)."""
    c = gateway_call(lambda client: client.begin_access(door))
    emit(
        asdict(c),
        as_json,
        f"{c.kind}: {c.instruction}\nchallenge id {c.challenge_id}, expires at unix ms {c.expires_unix_ms}\n"
        f"token {c.token}",
    )


def _passive_text(p: PassiveCheck | None) -> str:
    """The passive check's part of a door line ('' when the door ran none)."""
    if p is None:
        return ""
    return f"; passive {p.check} {p.score:.3f} {'<' if p.attack else '>='} {p.threshold:.2f}"


@faces.command("access")
@click.option("--door", required=True)
@click.option("--gallery", default="", help="The gallery (default: the door's, when its policy names one)")
@click.option("--identity", required=True, help="The claimed identity (badge, PIN...)")
@click.option("--challenge-id", default="", help="The BeginAccess challenge this burst answers")
@click.option("--token", default="", help="The challenge's token")
@click.argument(
    "frames", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True)
def faces_access(
    door: str,
    gallery: str,
    identity: str,
    challenge_id: str,
    token: str,
    frames: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Door access check: GRANT or DENY with the reason; audited. Exit status 0 only for GRANT."""
    answer = (challenge_id, token) if challenge_id or token else None
    data = [f.read_bytes() for f in frames]
    result = gateway_call(lambda c: c.verify_access(door, gallery, identity, data, challenge=answer))
    emit(
        asdict(result),
        as_json,
        f"{result.decision}: {result.reason} (audit {result.audit_id or 'not written'})"
        + _passive_text(result.passive),
    )
    if result.decision != "GRANT":
        sys.exit(2)


@faces.command("audit")
@click.option("--door", default="", help="One door's records (default: every door)")
@click.option("--limit", type=int, default=20)
@click.option("--json", "as_json", is_flag=True)
def faces_audit(door: str, limit: int, as_json: bool) -> None:
    """Door access records, newest first."""
    import datetime

    records = gateway_call(lambda c: c.audit_records(door, limit))
    human = "\n".join(
        f"{datetime.datetime.fromtimestamp(r.unix_ms / 1000).isoformat(timespec='seconds')}  {r.door_id:<12} "
        f"{r.decision:<5} {r.claimed_identity_id:<16} {r.reason}  [liveness {r.liveness}, {r.embedding_model}, "
        f"request {r.request_id}]{_passive_text(r.passive)}"
        for r in records
    )
    emit([asdict(r) for r in records], as_json, human or "no audit records")


@faces.command("eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target-far", type=float, default=1e-3, help="Report the threshold reaching this FAR")
@click.option("--json", "as_json", is_flag=True)
def faces_eval(folder: Path, target_far: float, as_json: bool) -> None:
    """Verification accuracy over FOLDER/<identity>/<photo>.jpg: all genuine and impostor pairs, ROC-AUC,
    EER, TAR at FAR 1e-2 and 1e-3, the threshold for --target-far (temporary galleries, deleted after)."""
    from fovea.faces.tools.evaluation import evaluate_folder

    with connect() as client:
        try:
            report = evaluate_folder(client, folder, target_far=target_far)
        except (FoveaClientError, ValueError, RuntimeError) as exc:
            fail(exc)
    emit(report.as_dict(), as_json, report.as_text())


def _event_line(e: FaceEvent) -> str:
    import datetime

    when = datetime.datetime.fromtimestamp(e.unix_ms / 1000).isoformat(timespec="milliseconds")
    where = f"door {e.door_id}" if e.door_id else f"gallery {e.gallery_id}"
    who = f" {e.identity_id}" if e.identity_id else ""
    audit = f" [audit {e.audit_id}]" if e.audit_id else ""
    return f"{e.event_id}  {when}  {e.kind:<16} {where}{who}: {e.reason}{audit}"


@faces.command("events")
@click.option("--door", "doors", multiple=True, help="Only this door's events (repeatable)")
@click.option("--gallery", "galleries", multiple=True, help="Only this gallery's events (repeatable)")
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable), e.g. pad_failed")
@click.option("--after", default="", help="Replay the events after this event id first (0 = all kept ones)")
@click.option(
    "--timeout", "timeout_s", type=float, default=7 * 24 * 3600.0, help="Stop after this many seconds"
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line")
def faces_events(
    doors: tuple[str, ...],
    galleries: tuple[str, ...],
    kinds: tuple[str, ...],
    after: str,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Follow door decisions, presentation-attack failures, unknown faces and enrolments, one line per event
    (needs a key with the faces:events scope). Resume with --after and the last event id printed."""
    with connect() as client:
        try:
            for event in client.watch_events(
                doors=doors, galleries=galleries, kinds=kinds, after=after, timeout_s=timeout_s
            ):
                click.echo(json.dumps(asdict(event)) if as_json else _event_line(event))
        except FoveaClientError as exc:
            if exc.code != "DEADLINE_EXCEEDED":
                fail(exc)
        except KeyboardInterrupt:
            pass


@faces.group("webhooks")
def faces_webhooks() -> None:
    """Webhook deliveries that failed every attempt (dead letters), and sending them again."""


@faces_webhooks.command("dead-letters")
@click.option("--endpoint", default="", help="One endpoint's (default: every endpoint's)")
@click.option("--limit", type=int, default=50)
@click.option("--json", "as_json", is_flag=True)
def faces_webhooks_dead_letters(endpoint: str, limit: int, as_json: bool) -> None:
    """Dead letters, newest first: delivery id, endpoint, attempts, last error, the event."""
    letters = gateway_call(lambda c: c.webhook_dead_letters(endpoint, limit))
    human = "\n".join(
        f"{d.delivery_id}  {d.endpoint}  {d.attempts} attempt(s), last: {d.last_error}\n  {_event_line(d.event)}"
        for d in letters
    )
    emit([asdict(d) for d in letters], as_json, human or "no dead letters")


@faces_webhooks.command("redrive")
@click.argument("endpoint")
@click.argument("delivery_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
def faces_webhooks_redrive(endpoint: str, delivery_ids: tuple[str, ...], as_json: bool) -> None:
    """Send ENDPOINT's dead letters (those named, or all of them) again, with their delivery ids. Those whose
    delivery is already queued or under way are skipped and stay in the dead-letter list."""
    done = gateway_call(lambda c: c.redrive_webhooks(endpoint, delivery_ids))
    human = f"{done.redriven} dead letter(s) queued for {endpoint} again"
    if done.skipped:
        shown = ", ".join(done.skipped_delivery_ids)
        more = done.skipped - len(done.skipped_delivery_ids)
        human += (
            f"\n{done.skipped} skipped (already queued or under way; still in the dead letters): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    emit(asdict(done), as_json, human)


for _command in faces_pad.COMMANDS:  # pad-eval, pad-synth, pad-train
    faces.add_command(_command)
