"""livestyle: a real-time neural style filter for webcams.

The whole flow (see livestyle/pipeline.py): source -> preprocess -> backend -> postprocess ->
sinks (window, virtual camera, video file).
"""

__version__ = "0.1.0"
