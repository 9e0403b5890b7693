"""gennas: generate neural architectures with guided graph diffusion.

The foundation lives in sub-packages with one job each: ``space`` (cells and search
spaces), ``nn`` (network builder), ``metrics`` (cost and measured metrics), ``bench``
(oracles), ``data`` (datasets), ``train`` (trainer and robustness attacks).
"""

__version__ = "0.1.0"
