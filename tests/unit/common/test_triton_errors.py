"""What a Triton error becomes (``fovea.common.triton.translate``): the domain error of the same meaning,
naming Triton and the model, never Triton's address."""

from __future__ import annotations

from tritonclient.utils import InferenceServerException

from fovea.common.errors import DeadlineExceeded, NotFound, UpstreamUnavailable, public_message
from fovea.common.triton import translate

REFUSED = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.7:8001: Failed to connect to remote "
    "host: Connection refused"
)


def test_triton_down_names_triton_and_the_model_without_an_address() -> None:
    error = translate(
        InferenceServerException(REFUSED, status="StatusCode.UNAVAILABLE"), "10.0.0.7:8001", "face_detector"
    )
    assert isinstance(error, UpstreamUnavailable)
    assert (
        str(error)
        == "model 'face_detector' in Triton is unavailable: it cannot be reached (is it running?); retry later"
    )
    assert public_message(str(error)) == str(error)  # nothing for the edge to hide


def test_other_errors_keep_their_meaning_and_lose_the_address() -> None:
    missing = translate(
        InferenceServerException(
            "Request for unknown model: 'x' is not found", status="StatusCode.NOT_FOUND"
        ),
        "10.0.0.7:8001",
        "x",
    )
    assert isinstance(missing, NotFound) and "10.0.0.7" not in str(missing)
    slow = translate(
        InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"), "h:8001"
    )
    assert isinstance(slow, DeadlineExceeded) and str(slow) == "Triton did not answer in time"
    lost = translate(InferenceServerException("Socket closed", status="StatusCode.UNAVAILABLE"), "h:8001")
    assert str(lost) == "Triton is unavailable: the connection to it was lost; retry later"
