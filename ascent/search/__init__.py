"""Search and self-play on board games: naive Monte Carlo search and MCTS (UCT, solver back-ups) in
`mcts`, AlphaZero in `alphazero` (its network in `network`), and the arena where players meet
(`players`, `arena`). Games are OpenSpiel's, through ascent.envs.board_games."""
