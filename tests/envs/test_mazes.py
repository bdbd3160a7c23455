"""Sutton & Barto's chapter-8 mazes: the layouts of Figures 8.2, 8.4 and 8.5 cell by cell, the moves,
the reward, the change of the blocking and shortcut mazes at the book's step counted across
episodes, and the registration that makes `--env ascent/DynaMaze-v0` work."""

import collections
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from ascent.envs.mazes import COLS, Maze
from ascent.envs.vector import check_env_id, make_vec_env

UP, RIGHT, DOWN, LEFT = range(4)


def shortest_path(maze: Maze) -> int:
    """Breadth-first search from the start to the goal through the maze's current walls."""
    dist, queue = {maze.start: 0}, collections.deque([maze.start])
    while queue:
        r, c = cell = queue.popleft()
        for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < 6 and 0 <= nxt[1] < 9 and not maze.walls[nxt] and nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist[maze.goal]


def wall_cells(maze: Maze) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(maze.walls))}


def test_dyna_maze_is_figure_8_2():
    maze = Maze("dyna")
    assert maze.walls.shape == (6, 9)
    assert (maze.start, maze.goal) == ((2, 0), (0, 8))
    # (row, column) from the top left: the 3-cell wall in column 2, the one in column 7, the block in row 4
    assert wall_cells(maze) == {(1, 2), (2, 2), (3, 2), (0, 7), (1, 7), (2, 7), (4, 5)}
    assert shortest_path(maze) == 14  # the optimum of Figure 8.2's y axis


@pytest.mark.parametrize("layout, change_at, before, after, paths", [
    # Figure 8.4: the opening moves from the right end of row 3 to its left end after 1000 steps
    ("blocking", 1000, {(3, c) for c in range(8)}, {(3, c) for c in range(1, 9)}, (10, 16)),
    # Figure 8.5: a second opening, on the right, after 3000 steps
    ("shortcut", 3000, {(3, c) for c in range(1, 9)}, {(3, c) for c in range(1, 8)}, (16, 10)),
])
def test_changing_mazes_change_at_the_books_step(layout, change_at, before, after, paths):
    maze = Maze(layout)
    maze.reset(seed=0)
    assert (maze.start, maze.goal, maze.change_at) == ((5, 3), (0, 8), change_at)
    assert wall_cells(maze) == before and shortest_path(maze) == paths[0]
    for t in range(change_at - 1):  # down from the bottom row: the agent stays at S
        if t == change_at // 2:  # the count runs across episodes: a reset does not restart it
            maze.reset()
        maze.step(DOWN)
    assert wall_cells(maze) == before  # the step number change_at still sees the first maze
    maze.step(DOWN)
    assert maze.total_steps == change_at and wall_cells(maze) == after and shortest_path(maze) == paths[1]


@pytest.mark.parametrize("blocked_before", [True, False])
def test_the_changed_wall_blocks_and_opens_moves(blocked_before):
    """The cell (3, 8), walled in the shortcut maze until its change, open after it."""
    maze = Maze("shortcut", change_at=0 if not blocked_before else 10**6)
    maze.reset()
    maze.pos = (4, 8)
    obs, *_ = maze.step(UP)
    assert obs == (4 * COLS + 8 if blocked_before else 3 * COLS + 8)


def test_moves_walls_edges_reward_and_termination():
    maze = Maze("dyna")
    obs, _ = maze.reset(seed=0)
    assert obs == 2 * COLS + 0
    assert maze.step(LEFT)[:4] == (2 * COLS, 0.0, False, False)  # off the grid: stays
    assert maze.step(RIGHT)[0] == 2 * COLS + 1
    assert maze.step(RIGHT)[0] == 2 * COLS + 1  # (2, 2) is a wall: stays
    maze.pos = (1, 8)
    assert maze.step(UP) == (8, 1.0, True, False, {})  # the goal: reward 1, terminated


def test_ansi_render_draws_the_maze():
    maze = Maze("dyna", render_mode="ansi")
    maze.reset()
    text = maze.render()
    assert text.splitlines() == [".......#G", "..#....#.", "A.#....#.", "..#......", ".....#...", "........."]


def test_registered_ids_make_the_mazes_through_ascents_env_layer():
    for env_id, layout in [("ascent/DynaMaze-v0", "dyna"), ("ascent/BlockingMaze-v0", "blocking"),
                           ("ascent/ShortcutMaze-v0", "shortcut")]:
        assert check_env_id(env_id).kwargs == {"layout": layout}
        env = gym.make(env_id)
        assert env.observation_space == gym.spaces.Discrete(54) and env.action_space == gym.spaces.Discrete(4)
        assert env.unwrapped.walls.shape == (6, 9)
    vec = make_vec_env("ascent/BlockingMaze-v0", 2)
    obs, _ = vec.reset(seed=0)
    np.testing.assert_array_equal(obs, [5 * COLS + 3] * 2)


def test_the_recorded_env_id_makes_the_maze_in_a_fresh_process():
    """`ascent eval` and resume make the env from the id a run records ("module:id")."""
    from ascent.envs.vector import importable_env_id
    recorded = importable_env_id("ascent/DynaMaze-v0")
    assert recorded == "ascent.envs.mazes:ascent/DynaMaze-v0"
    code = f"import gymnasium as gym; print(gym.make({recorded!r}).unwrapped.goal)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(0, 8)"
