"""Graph diffusion over cell DAGs: the denoiser and the guided sampler (the noise process is gennas.space.noise)."""
