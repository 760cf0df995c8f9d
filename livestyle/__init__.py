"""livestyle: a real-time neural style filter for webcams.

The whole flow (see livestyle/pipeline.py): source -> preprocess -> backend -> postprocess ->
sinks (window, virtual camera, video file).
"""

__version__ = "0.1.0"

import os as _os

# ONNX Runtime (1.29+) records a device id and usage events under ~/.cache/Microsoft and sends
# them to Microsoft unless ORT_DISABLE_TELEMETRY is set, which it reads when it is imported:
# off unless you chose (ORT_DISABLE_TELEMETRY=0 turns it back on)
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
