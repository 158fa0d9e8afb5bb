"""Canary rollout controller: moves a candidate model version through traffic steps."""
