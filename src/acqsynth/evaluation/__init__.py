"""Evaluation: accuracy per task with intervals, and the statistics behind them."""
