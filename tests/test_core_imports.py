"""The core package never imports napari or Qt (the napari plugin is an optional extra)."""
import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import deepcontrast
names = [m.name for m in pkgutil.walk_packages(deepcontrast.__path__, 'deepcontrast.')
         if not m.name.startswith('deepcontrast.napari.') and not m.name.endswith('__main__')]
for name in names:
    importlib.import_module(name)
gui = sorted(m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6',
                                                             'magicgui', 'vispy', 'npe2'))
print(len(names), gui)
"""


def test_core_and_subpackages_do_not_import_napari_or_qt():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    n_modules, gui = int(out[0]), " ".join(out[1:])
    assert n_modules > 40  # every module of the package was imported (deepcontrast.napari's __init__ too)
    assert gui == "[]"
