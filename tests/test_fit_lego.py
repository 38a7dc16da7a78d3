"""Integration: a brief fit of the real lego_200 scene must beat a PSNR floor."""

import pytest

from plenox.runs.fitting import fit_run

pytestmark = pytest.mark.integration

# 300 steps (64^3 -> 128^3 at step 150) take about a minute on 2 cores; this reached 22.5 dB
# on the first 5 test views when calibrated, where an untrained grid scores about 10 dB.
BRIEF = ["resolutions=[[64,64,64],[128,128,128]]", "upsample_steps=[150]", "steps=300",
         "lr_decay_steps=300", "eval_views=5"]


def test_brief_lego_fit_beats_floor(data_root, tmp_path):
    scene = data_root / "lego_200"
    if not scene.exists():
        pytest.skip(f"{scene} not found (set PLENOX_DATA to the folder holding lego_200)")
    metrics = fit_run(str(scene), str(tmp_path / "run"), "synthetic", BRIEF, progress=False)
    assert metrics["protocol"]["views"] == 5
    assert metrics["results"]["psnr"] > 20.0
