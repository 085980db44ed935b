"""acqsynth: synthetic training data targeted at one student model, scored by acquisition functions."""

from acqsynth.samples import Sample, read_samples, to_dataset, write_samples

__all__ = ["Sample", "read_samples", "to_dataset", "write_samples"]
__version__ = "0.1.0"
