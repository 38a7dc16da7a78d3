"""The choices and defaults of ``plenox process``, importable without pycolmap (the CLI builds its parser from them)."""

# COLMAP camera models whose parameters a nerfstudio transforms.json can state (pinhole with k1, k2, p1, p2).
CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")
DEFAULT_CAMERA_MODEL = "SIMPLE_RADIAL"
MATCHERS = ("auto", "exhaustive", "sequential")
# "auto" matches every pair up to this many photos (n (n - 1) / 2 pairs), beyond it sequentially.
EXHAUSTIVE_MAX_IMAGES = 100
DEFAULT_MAX_IMAGE_SIZE = 1600  # longest side, in pixels, SIFT works at
MAX_DOWNSCALES = 4              # images_2 ... images_16
