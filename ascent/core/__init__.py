"""The Agent contract and the run around it: config, checkpoints, logging, evaluation, the run directory."""
