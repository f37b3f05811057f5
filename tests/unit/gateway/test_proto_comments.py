"""The ``.proto`` comment scanner that gives ``/openapi.json`` its descriptions."""

from __future__ import annotations

from pathlib import Path

from fovea.gateway.proto_comments import find_proto_root, load_comments, scan

PROTO = """\
// License header: belongs to nothing.

syntax = "proto3";

package demo.v1;

// Says hello.
service Greeter {
  // One greeting.
  rpc Hello(HelloRequest) returns (HelloReply);
  rpc Quiet(HelloRequest) returns (HelloReply);
}

// What to greet.
message HelloRequest {
  // Who, by name;
  // on two lines.
  string name = 1;
  repeated string tags = 2;  // trailing words
  map<string, int32> counts = 3;
  // A nested one.
  message Inner {
    // Deep.
    optional int64 depth = 1;
  }
  Inner inner = 4;
  oneof choice {
    // Pick me.
    string left = 5;
    Inner right = 6;
  }
  // Lost: a blank line follows.

  bool flag = 7;
}

message Empty {}
message One { string x = 1; }

enum Mood {
  MOOD_UNSPECIFIED = 0;
  // Cheerful.
  HAPPY = 1;
}

// After the nesting.
message HelloReply {
  // Said back.
  string text = 1;
}
"""


def test_comments_by_full_name() -> None:
    assert scan(PROTO) == {
        "demo.v1.Greeter": "Says hello.",
        "demo.v1.Greeter.Hello": "One greeting.",
        "demo.v1.HelloRequest": "What to greet.",
        "demo.v1.HelloRequest.name": "Who, by name; on two lines.",
        "demo.v1.HelloRequest.tags": "trailing words",
        "demo.v1.HelloRequest.Inner": "A nested one.",
        "demo.v1.HelloRequest.Inner.depth": "Deep.",
        "demo.v1.HelloRequest.left": "Pick me.",  # a oneof's fields belong to its message
        "demo.v1.Mood.HAPPY": "Cheerful.",
        "demo.v1.HelloReply": "After the nesting.",  # scopes closed right: {} and one-line messages
        "demo.v1.HelloReply.text": "Said back.",
    }


def test_the_real_protos() -> None:
    root = find_proto_root(Path(__file__).resolve())
    assert root is not None and (root / "fovea/detection/v1/detection.proto").exists()
    comments = load_comments(root)
    assert comments["fovea.detection.v1.DetectionService.Detect"] == "Detect objects in one image."
    assert comments["fovea.detection.v1.DetectRequest.min_score"].startswith("Drop detections scoring below")
    assert comments["fovea.style.v1.Job.result_png"] == "PNG of the result when SUCCEEDED."
    assert load_comments(None) == {}
    assert find_proto_root(Path("/")) is None
