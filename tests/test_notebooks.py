"""The example notebooks: executed in order in quick mode (in a temporary copy of examples/), and
committed clean.

The notebooks in examples/ are the source: edit them in Jupyter, then clear all outputs (Edit >
Clear Outputs of All Cells) before committing. The cells the notebooks share (the quick-mode switch,
the built-in sample's shape) must stay identical in every notebook that has them.
"""
import json
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


def _read(name):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    nbformat.validate(nb)
    return nb


def test_notebooks_are_committed_clean():
    for name in NOTEBOOKS:
        nb = _read(name)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"{name} has outputs; clear them (Edit > Clear Outputs of All Cells) before committing"
            assert not {"execution", "ExecuteTime"} & set(cell.metadata), f"{name}: cell {cell.id} keeps run timings"
            assert cell.source.strip(), f"{name}: cell {cell.id} is empty"
        # ids as committed (nbformat's reader silently renames duplicates)
        ids = [cell.get("id") for cell in json.loads((EXAMPLES / name).read_text())["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), f"{name}: missing or duplicate cell ids {ids}"
        assert "DEEPCONTRAST_QUICK" in nb.cells[1].source or "DEEPCONTRAST_QUICK" in nb.cells[0].source, name


def _shared_cell(nb, marker):
    found = [cell.source for cell in nb.cells if cell.cell_type == "code" and marker in cell.source]
    assert len(found) == 1, f"expected one cell with {marker!r}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("marker, names", [
    ("QUICK = os.environ", NOTEBOOKS),                                       # the quick-mode switch
    ("SAMPLE_SHAPE = ", ["0_forward_model.ipynb", "1_datagen.ipynb"]),      # the built-in sample
])
def test_shared_cells_are_identical(marker, names):
    sources = {name: _shared_cell(_read(name), marker) for name in names}
    first = sources[names[0]]
    for name, source in sources.items():
        assert source == first, f"the cell with {marker!r} in {name} differs from the one in {names[0]}; keep them identical"
