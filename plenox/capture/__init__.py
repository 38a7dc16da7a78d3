"""Captures without poses (a folder of photos, a video) -> posed scene folders, by structure-from-motion (pycolmap).

pipeline.process_capture   photos or a video -> DATA (images/, sparse/0, transforms.json, process.json)
pipeline.capture_for_fit   what ``plenox fit`` reads for a source: a capture is processed once into <out>-data
source                     what a capture is (is_capture, check_photos) and CaptureError
frames                     the sharpest frames of a video
sfm                        pycolmap: features, matching, incremental mapping
dataset                    COLMAP model -> nerfstudio transforms.json, downscaled copies
align                      recovered poses against known ones (similarity alignment, errors)
options                    option names and defaults (no heavy imports: the CLI reads them)

Nothing is imported here, so that the CLI can read ``options`` without loading pycolmap or torch.
"""
