"""Layer 3: the models (the sparse grid and its differentiable rendering, the MLP NeRF) and the one Renderer interface."""
