"""Layer 4: training: the shared loop, the grid and NeRF trainers, their configs, the optimiser, regularisers, pruning."""
