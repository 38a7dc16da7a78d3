"""Layer 0: writing files (atomically) and file formats that need nothing of the models."""
