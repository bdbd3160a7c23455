"""ascent: deep reinforcement learning, faithful to the theory and fast (PyTorch + Gymnasium)."""

__version__ = "0.1.0"

from ascent.agent import Agent  # noqa: E402
from ascent.algorithms import ALGORITHMS, get_algorithm  # noqa: E402
from ascent.algorithms.a2c import A2C, A2CConfig  # noqa: E402
from ascent.algorithms.ac import AC, ACConfig  # noqa: E402
from ascent.algorithms.dqn import DQN, DQNConfig  # noqa: E402
from ascent.algorithms.offpolicy_pg import OffPolicyPG, OffPolicyPGConfig  # noqa: E402
from ascent.algorithms.ppo import PPO, PPOConfig  # noqa: E402
from ascent.algorithms.reinforce import REINFORCE, REINFORCEConfig  # noqa: E402
from ascent.algorithms.sac import SAC, SACConfig  # noqa: E402
from ascent.algorithms.tabular import SARSA, QLearning, QLearningConfig, SARSAConfig  # noqa: E402
from ascent.algorithms.td3 import DDPG, TD3, DDPGConfig, TD3Config  # noqa: E402
from ascent.algorithms.trpo import NPG, TRPO, NPGConfig, TRPOConfig  # noqa: E402
from ascent.errors import AscentError, CheckpointError, ConfigError, EnvError, TrainingDiverged  # noqa: E402

__all__ = ["Agent", "ALGORITHMS", "get_algorithm", "PPO", "PPOConfig", "A2C", "A2CConfig", "TRPO", "TRPOConfig", "NPG", "NPGConfig", "REINFORCE", "REINFORCEConfig", "OffPolicyPG", "OffPolicyPGConfig", "AC", "ACConfig", "DQN", "DQNConfig", "SAC", "SACConfig", "TD3", "TD3Config", "DDPG", "DDPGConfig", "QLearning", "QLearningConfig", "SARSA", "SARSAConfig", "AscentError", "CheckpointError",
           "ConfigError", "EnvError", "TrainingDiverged"]
