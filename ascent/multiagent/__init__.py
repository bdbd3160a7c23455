"""Multi-agent RL: normal-form games and their equilibria (`normal_form`), learning dynamics in them
(`dynamics`), tabular learning in two-player Markov games (`markov_q`: Minimax-Q, Nash-Q, IQL); the
deep multi-agent algorithms come next (issue 17)."""
