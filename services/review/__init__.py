"""Human review: the review queue with leased claims, labels relayed to feedback.labels."""
