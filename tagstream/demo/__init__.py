"""``tagstream demo``: the data flywheel, end to end, on real data (see docs/demo.md)."""
