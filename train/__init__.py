"""The livestyle trainer."""

import livestyle  # noqa: F401,E402 - turns ONNX Runtime's telemetry off before anything imports it
