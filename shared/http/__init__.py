"""What every service's HTTP side shares: the error envelope, readiness and ``serve()``."""
