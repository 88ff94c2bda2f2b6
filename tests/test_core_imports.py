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


def _private_imports_across_packages():
    """``(file, line, import)`` of every import of a private name or module from another package."""
    import ast
    from pathlib import Path

    import deepcontrast

    root = Path(deepcontrast.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                names = target.split(".") + [alias.name]
                private = [i for i, n in enumerate(names) if n.startswith("_") and not n.startswith("__")]
                if not private:
                    continue
                owner = names[:private[0]]  # the package (or module of a package) the private part belongs to
                if not (root.parent.joinpath(*owner)).is_dir():
                    owner = owner[:-1]
                if ".".join(owner) != package:
                    found.append((str(path.relative_to(root.parent)), node.lineno, f"{target}.{alias.name}"))
    return found


def test_no_module_imports_private_names_of_another_package():
    assert _private_imports_across_packages() == []


def test_degradation_does_not_import_calibration_at_import_time():
    code = "import sys, deepcontrast.degradation; print(any(m.startswith('deepcontrast.calibration') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False"]
