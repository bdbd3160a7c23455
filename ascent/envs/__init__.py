"""Environments: Gymnasium vector envs behind one contract (`vector`), the Atari pipeline (`atari`)."""
