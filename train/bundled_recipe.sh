# The bundled paintings' recipe as it was when they were made: the five settings whose
# trainer defaults for a new painting changed since (2026-12-05), pinned to their values then.
# Sourced by train/make_styles.sh and train/make_styles_gpu.sh, so both keep one copy.
# shellcheck disable=SC2034  # used by the scripts that source this file
BUNDLED_RECIPE=(--style-weight 2 --skin-weight 0 --coarse-style-weight 0 --stability-weight 0 --ema 0)
