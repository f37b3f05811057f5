"""The torch ports: our torch definitions of the pretrained networks (and the Gatys optimisation on one of them).

Each port reproduces its original runtime (TF.js, dlib, Keras, facenet-pytorch) within a stated tolerance;
``fovea.convert`` builds them from registry packages and exports the ONNX files Triton serves, and
``fovea.serving`` runs a port directly where onnxruntime cannot use the GPU. Imports torch and
``fovea.contracts`` only.
"""
