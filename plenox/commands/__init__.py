"""Layer 6: one module per ``plenox`` command, each a plain function over run folders (no command imports another)."""
