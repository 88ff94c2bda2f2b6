def export_bioimageio(*a, **k): raise NotImplementedError("bioimage.io export: work in progress")
