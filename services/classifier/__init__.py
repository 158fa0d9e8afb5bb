"""The classifier service: content.raw -> model -> content.classified / review.requests."""
