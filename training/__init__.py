"""Data, curricula, trainers, the synthetic world and evaluation."""
