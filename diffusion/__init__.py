"""Graph diffusion over cell DAGs (noise schedule, denoiser, guided sampler).

Filled by the generator work (issue 4); the package exists now because the design card
fixes the top-level layout and the distribution ships it.
"""
