"""Model registry: versioned, content-addressed models with rollout statuses."""

from shared.registry.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    InvalidRegistration,
    InvalidTransition,
    RegistryError,
    VersionNotFound,
)
from shared.registry.models import (
    ArtifactRef,
    ModelStatus,
    ModelVersion,
    StatusChange,
    TrafficSplit,
)
from shared.registry.service import ALLOWED_TRANSITIONS, ModelRegistry, version_id

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "ArtifactRef",
    "InvalidRegistration",
    "InvalidTransition",
    "ModelRegistry",
    "ModelStatus",
    "ModelVersion",
    "RegistryError",
    "StatusChange",
    "TrafficSplit",
    "VersionNotFound",
    "version_id",
]
