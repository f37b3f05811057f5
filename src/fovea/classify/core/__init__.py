"""Pure computation of the classify service (no I/O): the centre crop and the top-k of probabilities."""
