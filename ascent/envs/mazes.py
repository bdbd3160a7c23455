"""The gridworld mazes of Sutton & Barto (2018), chapter 8, as Gymnasium envs (registered on import):

  ascent/DynaMaze-v0      Figure 8.2 (Example 8.1, Dyna Maze): 6 x 9, start S, goal G, seven wall cells;
                          the shortest path takes 14 steps
  ascent/BlockingMaze-v0  Figure 8.4 (Example 8.2, Blocking Maze): a wall across row 3 with its opening
                          on the right; after 1000 steps the opening moves to the left end (the short
                          path is blocked, a longer one opens)
  ascent/ShortcutMaze-v0  Figure 8.5 (Example 8.3, Shortcut Maze): the opening is on the left; after
                          3000 steps a second one opens on the right (a shortcut)

Actions are Discrete(4): 0 up, 1 right, 2 down, 3 left; a move into a wall or off the grid leaves the
agent where it is. The observation is the cell's index row * 9 + column. The reward is 1 on reaching
the goal (the episode terminates) and 0 on every other step. As in the book, the change of the
blocking and shortcut mazes comes after that many steps in total, across episodes: an env counts
its own steps from its construction (`change_at=` moves the change; 0 starts with the changed maze).
No time limit in the book; the registered ids cut an episode at 10,000 steps (truncation), so that a
greedy policy that walks into a wall forever cannot stall an evaluation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ROWS, COLS = 6, 9
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left: (row, column) offsets
MAX_EPISODE_STEPS = 10_000

# The layouts, row by row from the top: '#' a wall, 'S' the start, 'G' the goal
DYNA = (".......#G"
        "..#....#."
        "S.#....#."
        "..#......"
        ".....#..."
        ".........")
BLOCKING_BEFORE = ("........G"
                   "........."
                   "........."
                   "########."
                   "........."
                   "...S.....")
BLOCKING_AFTER = BLOCKING_BEFORE[:27] + ".########" + BLOCKING_BEFORE[36:]  # (row 3: characters 27-35)
SHORTCUT_BEFORE = BLOCKING_AFTER
SHORTCUT_AFTER = BLOCKING_AFTER[:27] + ".#######." + BLOCKING_AFTER[36:]
LAYOUTS: dict[str, tuple[str, str | None, int | None]] = {  # name: (before the change, after it, its step)
    "dyna": (DYNA, None, None),
    "blocking": (BLOCKING_BEFORE, BLOCKING_AFTER, 1000),
    "shortcut": (SHORTCUT_BEFORE, SHORTCUT_AFTER, 3000),
}
IDS = {"dyna": "ascent/DynaMaze-v0", "blocking": "ascent/BlockingMaze-v0", "shortcut": "ascent/ShortcutMaze-v0"}


def walls_of(layout: str) -> np.ndarray:
    """(ROWS, COLS) bool: True on a wall cell of a layout string."""
    return np.array([ch == "#" for ch in layout]).reshape(ROWS, COLS)


class Maze(gym.Env):
    """One of the chapter's mazes (module docstring); `layout` is dyna, blocking or shortcut."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, layout: str = "dyna", change_at: int | None = None, render_mode: str | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown maze {layout!r}; choose one of {', '.join(LAYOUTS)}")
        before, after, default_change = LAYOUTS[layout]
        self.walls_before, self.walls_after = walls_of(before), walls_of(after) if after else None
        self.change_at = default_change if change_at is None else change_at
        self.start = divmod(before.index("S"), COLS)
        self.goal = divmod(before.index("G"), COLS)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(ROWS * COLS)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.total_steps = 0  # over all episodes: the change comes at a total, as in the book
        self.pos = self.start

    @property
    def walls(self) -> np.ndarray:
        """The walls of the next step: the changed maze once `change_at` steps have been taken."""
        if self.walls_after is not None and self.total_steps >= self.change_at:
            return self.walls_after
        return self.walls_before

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos = self.start
        return self.pos[0] * COLS + self.pos[1], {}

    def step(self, action: int):
        dr, dc = MOVES[int(action)]
        r, c = self.pos[0] + dr, self.pos[1] + dc
        # (A wall that appears on the agent's cell, the blocking maze's at step 1000, leaves it
        # there; it can step off.)
        if 0 <= r < ROWS and 0 <= c < COLS and not self.walls[r, c]:
            self.pos = (r, c)
        self.total_steps += 1
        terminated = self.pos == self.goal
        return self.pos[0] * COLS + self.pos[1], float(terminated), terminated, False, {}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        rows = []
        for r in range(ROWS):
            cells = ["#" if self.walls[r, c] else "A" if (r, c) == self.pos else "S" if (r, c) == self.start
                     else "G" if (r, c) == self.goal else "." for c in range(COLS)]
            rows.append("".join(cells))
        return "\n".join(rows) + "\n"


for _layout, _id in IDS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point="ascent.envs.mazes:Maze", kwargs={"layout": _layout},
                     max_episode_steps=MAX_EPISODE_STEPS)
