"""Layer 5: run folders (config, checkpoints, log, metrics), the model registry, opening, fitting, evaluating, rendering runs."""
