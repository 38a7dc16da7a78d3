"""MLP NeRF baseline, faithful to the reference code (nerf-pytorch): encoding, networks, sampling, training."""

from .batching import ShuffledRays
from .encoding import PositionalEncoding
from .model import NerfConfig, NerfModel
from .network import NerfMLP
from .runtime import configure_threads
from .sampling import hierarchical_samples, invert_pdf, pdf_uniforms, sample_pdf, stratified_samples
from .volume import render_weights, volume_render

__all__ = [
    "NerfConfig", "NerfMLP", "NerfModel", "PositionalEncoding", "ShuffledRays", "configure_threads",
    "hierarchical_samples", "invert_pdf", "pdf_uniforms", "render_weights", "sample_pdf",
    "stratified_samples", "volume_render",
]
