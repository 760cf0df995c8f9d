"""The errors a user can fix: the CLI prints their message, no traceback, and exits 2."""

from livestyle.backends import NoBackendError
from livestyle.backends.base import BackendUnavailable
from livestyle.camera import SourceError
from livestyle.config import ConfigError
from livestyle.sinks.base import SinkError
from livestyle.styles import StyleError

# ValueError covers unreadable models (the backends' load errors) and bad frames
USER_ERRORS = (ConfigError, StyleError, SourceError, SinkError, BackendUnavailable,
               NoBackendError, ValueError)
