"""The Ray engine under ascent's parallel families (distributed RL, self-play, multi-agent): one
Ray session per process (`session`), supervised pools of actors that replace a dead worker
(`pool`), and versioned weight broadcasts through the object store (`weights`)."""
