"""Remote execution on NDIF (nnsight ``remote=True``): see :mod:`interp_widget.tracing.remote.backend`."""
