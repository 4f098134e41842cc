"""Appeal dispatcher: one-step, multi-channel appeals to officials, counted exactly."""

__version__ = "0.1.0"
