"""Hyperparameter tuning: `ascent tune` on Optuna (study.py), its search spaces (spaces.py) and what a
study writes at the end (report.py). Optuna is the `tune` extra: nothing here imports it before
a study runs."""
