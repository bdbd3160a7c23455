"""Imitation learning and learning from demonstrations: BC, DAgger, GAIL, AIRL, DQfD. Each algorithm
is one page; what they share (Minari datasets, the expert, supervised policy fitting, the
discriminators) is in `datasets`, `common` and `adversarial`. The generator of GAIL and AIRL is
ascent's own PPO or TRPO, and DQfD's learner is ascent's DQN: reused, not forked."""
