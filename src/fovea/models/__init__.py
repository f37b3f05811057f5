"""``fovea.models.v1``: the ModelsService API (the gateway answers it itself from Triton); the networks are in ``fovea.ports``."""
