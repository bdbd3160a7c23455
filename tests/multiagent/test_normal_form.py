"""Equilibria of two-player matrix games: every built-in game's Nash set against nashpy's (a peer,
test-only) and hand-known answers, the zero-sum LP, the correlated-equilibrium LP's constraints,
Stackelberg commitment, payoff files and the `ascent diagnose equilibria` command."""

import json

import numpy as np
import pytest

from ascent.cli import main
from ascent.errors import ConfigError
from ascent.multiagent.normal_form import (BUILT_IN, correlated_equilibrium, load_normal_form, stackelberg,
                                           support_enumeration, zero_sum_equilibrium)

nashpy = pytest.importorskip("nashpy")


def same_sets(ours, theirs):
    key = lambda e: tuple(np.round(np.concatenate(e), 6))  # noqa: E731
    return sorted(map(key, ours)) == sorted(map(key, theirs))


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_built_in_games_nash_set_is_nashpys(name):
    game = load_normal_form(name)
    theirs = list(nashpy.Game(game.row, game.column).support_enumeration())
    assert same_sets(support_enumeration(game), theirs), name


def test_hand_known_equilibria():
    (x, y), = support_enumeration(load_normal_form("prisoners_dilemma"))
    assert x.tolist() == [0.0, 1.0] and y.tolist() == [0.0, 1.0]  # both defect
    (x, y), = support_enumeration(load_normal_form("rock_paper_scissors"))
    np.testing.assert_allclose([x, y], np.full((2, 3), 1 / 3))
    found = support_enumeration(load_normal_form("battle_of_the_sexes"))  # two pure, one mixed: (3/5, 2/5), (2/5, 3/5)
    assert len(found) == 3
    mixed = [e for e in found if 0 < e[0][0] < 1][0]
    np.testing.assert_allclose(mixed[0], [0.6, 0.4])
    np.testing.assert_allclose(mixed[1], [0.4, 0.6])


def test_zero_sum_lp_against_the_closed_form():
    x, y, value = zero_sum_equilibrium(load_normal_form("matching_pennies"))
    np.testing.assert_allclose([x, y], [[0.5, 0.5], [0.5, 0.5]], atol=1e-9)
    assert value == pytest.approx(0.0, abs=1e-9)


def test_zero_sum_lp_on_a_file_game_and_errors(tmp_path):
    f = tmp_path / "g.json"
    # [[a, b], [c, d]] without a saddle point: x = ((d - c), (a - b)) / D, y = ((d - b), (a - c)) / D, value
    # (ad - bc) / D, D = a - b - c + d = 7 here
    f.write_text(json.dumps({"row": [[3, -1], [-2, 1]]}))  # zero-sum: the column payoffs default to -row
    game = load_normal_form(str(f))
    x, y, value = zero_sum_equilibrium(game)
    assert value == pytest.approx((3 * 1 - (-1) * (-2)) / 7)  # 1/7
    np.testing.assert_allclose(x, [3 / 7, 4 / 7], atol=1e-9)
    np.testing.assert_allclose(y, [2 / 7, 5 / 7], atol=1e-9)
    with pytest.raises(ConfigError, match="not zero-sum"):
        zero_sum_equilibrium(load_normal_form("chicken"))
    with pytest.raises(ConfigError, match="unknown game 'rock_paper_scisors'.*rock_paper_scissors"):
        load_normal_form("rock_paper_scisors")
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="not a payoff file"):
        load_normal_form(str(f))
    f.write_text(json.dumps({"row": [[1, 2]], "column": [[1], [2]]}))
    with pytest.raises(ConfigError, match="one shape"):
        load_normal_form(str(f))


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_the_correlated_equilibrium_is_one_and_pays_at_least_every_nash(name):
    game = load_normal_form(name)
    A, B = game.row, game.column
    p = correlated_equilibrium(game)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    for i in range(A.shape[0]):  # told i, no deviation i2 pays the row player more
        for i2 in range(A.shape[0]):
            assert p[i] @ (A[i] - A[i2]) >= -1e-8
    for j in range(A.shape[1]):
        for j2 in range(A.shape[1]):
            assert p[:, j] @ (B[:, j] - B[:, j2]) >= -1e-8
    total = (p * (A + B)).sum()
    assert all(total >= x @ (A + B) @ y - 1e-8 for x, y in support_enumeration(game))  # (a Nash is a CE)
    if name == "chicken":  # total 0 against the mixed Nash's -0.2 (collisions cost -10 each)
        assert total == pytest.approx(0.0, abs=1e-8)
        assert total > max(x @ (A + B) @ y for x, y in support_enumeration(game) if 0 < x[0] < 1) + 0.1


def test_commitment_pays_the_leader():
    game = load_normal_form("leader_follower")
    x, response, leader, follower = stackelberg(game)
    np.testing.assert_allclose(x, [0.5, 0.5], atol=1e-9)
    assert game.actions[1][response] == "right" and leader == pytest.approx(3.5) and follower == pytest.approx(0.5)
    assert max(x @ game.row @ y for x, y in support_enumeration(game)) == pytest.approx(2.0)  # Nash: 2


def test_the_command_prints_a_table_and_json(capsys):
    assert main(["diagnose", "equilibria", "battle_of_the_sexes", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["nash"]) == 3 and all(len(e["row"]) == 2 and len(e["column"]) == 2 for e in r["nash"])
    assert main(["diagnose", "equilibria", "matching_pennies"]) == 0
    out = capsys.readouterr().out
    assert "Nash equilibria (1" in out and "zero-sum (LP): value 0.000" in out
    assert main(["diagnose", "equilibria", "nope"]) == 2
    assert "unknown game 'nope'" in capsys.readouterr().err
