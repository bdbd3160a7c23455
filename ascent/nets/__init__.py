"""Networks and what trains them: layers, observation encoders, action distributions, normalization,
the on-policy actor-critic, off-policy actors, Q-networks, optimizers, mixed precision."""
