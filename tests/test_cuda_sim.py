"""The CUDA kernels, run on Numba's CUDA simulator, equal the CPU kernels (no GPU needed).

The simulator has to be switched on before numba is imported, so the CUDA side runs once in
a subprocess (``cuda_sim_outputs.py``) that saves every case's outputs, while this process
computes the CPU kernels' outputs; the comparisons run one test per case, so a mismatch
names its case and output.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cuda_cases import DTYPES, RAY_CASES, SIM_RTOL, all_outputs, assert_outputs_match

SCRIPT = Path(__file__).with_name("cuda_sim_outputs.py")
TIMEOUT_S = 300  # about 20 s on two busy cores


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> tuple[dict, dict]:
    """('case/output' -> array) from the CUDA kernels on the simulator and from the CPU kernels."""
    folder = tmp_path_factory.mktemp("cudasim")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    with open(folder / "stderr.txt", "w+") as log:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), str(folder / "outputs.npz")],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            cpu = all_outputs("cpu")  # mostly JIT compilation: overlaps the simulator run
            returncode = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            returncode = f"none: still running after {TIMEOUT_S} s"
        finally:
            proc.kill()
        log.seek(0)
        if returncode:
            pytest.fail(f"the CUDA simulator run failed (exit {returncode}):\n{log.read()[-4000:]}",
                        pytrace=False)
    with np.load(folder / "outputs.npz") as f:
        return dict(f), cpu


def _case(outputs: dict, case: str) -> dict:
    return {key.split("/", 1)[1]: value for key, value in outputs.items() if key.startswith(case + "/")}


@pytest.mark.parametrize("case", RAY_CASES + [f"optimiser-{dtype}" for dtype in DTYPES])
def test_cuda_kernels_match_cpu_kernels(outputs, case):
    simulated, cpu = outputs
    expected = _case(cpu, case)
    assert expected, f"no outputs for case {case}"
    assert_outputs_match(_case(simulated, case), expected, case, SIM_RTOL)
