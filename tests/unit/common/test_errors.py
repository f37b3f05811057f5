"""What a caller reads of an error: bounded, no object reprs, no internal addresses."""

from __future__ import annotations

from fovea.common.errors import MAX_MESSAGE_CHARS, clip, public_message


def test_clip_keeps_short_text_and_cuts_long_text_with_an_ellipsis() -> None:
    assert clip("abc", 5) == "abc"
    assert clip("abcdefgh", 5) == "abcd…"
    assert len(clip("x" * 100_000)) == 64


def test_public_message_drops_object_reprs() -> None:
    text = "image could not be decoded: cannot identify image file <_io.BytesIO object at 0x7f3a2c1b9e50>"
    assert public_message(text) == "image could not be decoded: cannot identify image file"


def test_public_message_hides_internal_addresses() -> None:
    for text in (
        "Error 111 connecting to 127.0.0.1:6390. Connection refused.",
        "failed to connect to all addresses; last error: ipv4:10.0.0.7:8001: Connection refused",
        "redis://:secret@redis.internal:6379/0 is down",
        "connect to [::1]:8001 failed",
        "localhost:8001 refused",
        "Error 111 connecting to redis. Connect call failed ('127.0.0.1', 6390).",  # redis-py, asyncio
    ):
        shown = public_message(text)
        assert "<internal address>" in shown, shown
        for part in ("127.0.0.1", "6390", "10.0.0.7", "secret", "::1", "localhost"):
            assert part not in shown, shown


def test_public_message_is_bounded() -> None:
    assert len(public_message("x" * 100_000)) == MAX_MESSAGE_CHARS
    assert public_message("iterations must be within [1, 2000], got 0") == (
        "iterations must be within [1, 2000], got 0"
    )
