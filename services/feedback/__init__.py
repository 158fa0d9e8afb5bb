"""Feedback service: gold labels, online accuracy, drift and the retraining trigger."""
