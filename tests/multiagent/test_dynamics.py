"""Learning dynamics in matrix games: fictitious play reaches rock-paper-scissors' equilibrium,
independent Q-learners find the prisoner's dilemma's, gradient ascent circles matching pennies'
mixed equilibrium, the simplex projection, and the figure."""

import numpy as np
import pytest

from ascent.multiagent.dynamics import draw, fictitious_play, gradient_ascent, independent_q_learners, project_to_simplex
from ascent.multiagent.normal_form import load_normal_form


def test_fictitious_play_reaches_the_rock_paper_scissors_equilibrium():
    traj = fictitious_play(load_normal_form("rock_paper_scissors"), 10_000)
    assert np.abs(traj[-1] - 1 / 3).max() < 0.01  # the target: within 0.01 after 10k iterations
    assert np.abs(traj[99] - 1 / 3).max() > np.abs(traj[-1] - 1 / 3).max()  # (and it got there, not started there)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independent_q_learners_find_the_prisoners_dilemma_equilibrium(seed):
    game = load_normal_form("prisoners_dilemma")
    traj, q = independent_q_learners(game, 5_000, seed=seed)
    assert [int(np.argmax(v)) for v in q] == [1, 1]  # both defect, the unique equilibrium
    assert traj[-1, 0, 1] == pytest.approx(0.95) and traj[-1, 1, 1] == pytest.approx(0.95)  # (epsilon 0.1 of 2)


def test_gradient_ascent_circles_the_mixed_equilibrium_of_matching_pennies():
    traj = gradient_ascent(load_normal_form("matching_pennies"), 20_000, eta=0.01)
    distance = np.abs(traj[:, :, 0] - 0.5).max(axis=1)
    assert distance[-5000:].min() > 0.1  # it does not converge (Singh et al. 2000: IGA cycles here)
    assert np.allclose(traj[:, :, :2].sum(axis=2), 1.0)


def test_projection_onto_the_simplex():
    np.testing.assert_allclose(project_to_simplex(np.array([0.2, 0.8])), [0.2, 0.8])
    np.testing.assert_allclose(project_to_simplex(np.array([2.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(project_to_simplex(np.array([0.6, 0.6])), [0.5, 0.5])
    np.testing.assert_allclose(project_to_simplex(np.array([1.0, 0.5, -1.0])), [0.75, 0.25, 0.0])


def test_the_figure_is_drawn_for_two_and_three_actions(tmp_path):
    for name in ("matching_pennies", "rock_paper_scissors"):
        final = draw(load_normal_form(name), tmp_path / f"{name}.png", iterations=500)
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        assert set(final) == {"fictitious play", "independent Q-learners", "gradient ascent"}
