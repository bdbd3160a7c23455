"""Multi-agent RL: normal-form games and their equilibria (`normal_form`); Markov games and the
deep multi-agent algorithms come next (issue 17)."""
