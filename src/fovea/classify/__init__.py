"""Classification service: ``fovea.classify.v1`` (ImageNet classifiers served by Triton)."""
