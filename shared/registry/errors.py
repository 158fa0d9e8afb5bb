"""Errors the registry raises; every one is a RegistryError."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every model-registry error."""


class VersionNotFound(RegistryError, LookupError):
    """No version with that id is registered under this model name."""


class ArtifactNotFound(RegistryError, LookupError):
    """The version exists but has no artifact with that name."""


class ArtifactCorrupted(RegistryError):
    """An artifact file is missing or its bytes no longer match the recorded SHA-256."""


class InvalidRegistration(RegistryError, ValueError):
    """The arguments to register() do not describe a valid version."""


class InvalidTransition(RegistryError, ValueError):
    """The requested status change is not allowed from the version's current status."""
