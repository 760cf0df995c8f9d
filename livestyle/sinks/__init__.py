"""Where frames go: a preview window, a virtual camera, a video file, or nowhere (benchmarks)."""
