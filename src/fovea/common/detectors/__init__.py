"""How a detector's outputs become boxes, in torch: box conversions, non-maximum suppression and the head
decoders of each family. Shared by the detection service (at run time) and the ONNX import (the reference its
appended decode graph is checked against)."""
