"""circles: 15-minute service circles on the real walking network."""

from ._version import __version__
from .errors import (
    CirclesError,
    DataError,
    InputFileError,
    NetworkError,
    OfflineError,
    ProfileError,
    ValidationError,
)

__all__ = [
    "CirclesError",
    "DataError",
    "InputFileError",
    "NetworkError",
    "OfflineError",
    "ProfileError",
    "ValidationError",
    "__version__",
]
