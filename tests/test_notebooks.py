"""Execute the example notebooks in order, in quick mode, in a temporary copy of examples/."""
import os
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = ["0_forward_model.ipynb", "1_datagen.ipynb", "2_training.ipynb", "3_prediction.ipynb"]


@pytest.mark.slow
def test_notebooks_run_in_quick_mode(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    work = tmp_path / "examples"
    work.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(EXAMPLES / name, work / name)
    # the kernel inherits the environment: quick settings, no display, quiet TensorFlow
    monkeypatch.setenv("DEEPCONTRAST_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in NOTEBOOKS:
        nb = nbformat.read(work / name, as_version=4)
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(work)}})
        try:
            client.execute()
        except nbclient.exceptions.CellExecutionError as e:
            pytest.fail(f"{name} failed:\n{e}")
    assert (work / "data" / "my_training_data.npz").exists()
    assert (work / "models" / "my_model" / "config.json").exists()
    assert list((work / "models" / "my_model").glob("*.zip")), "the Fiji export is missing"
    assert (work / "results" / "metrics.json").exists()


def test_notebooks_are_committed_clean():
    nbformat = pytest.importorskip("nbformat")
    for name in NOTEBOOKS:
        nb = nbformat.read(EXAMPLES / name, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{name} has outputs; clear them"
        assert "DEEPCONTRAST_QUICK" in nb.cells[1].source or "DEEPCONTRAST_QUICK" in nb.cells[0].source, name
