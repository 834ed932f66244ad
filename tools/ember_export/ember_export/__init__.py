"""Export a torch.nn.Module to ember's .ember format (docs/FORMAT.md).

    from ember_export import export
    export(model, (torch.randn(8, 64),), "model.ember", dynamic_batch=True)

The module is traced with torch.export; the high-level ops ember runs natively are kept, the
rest decomposed to core ATen, and any op left that ember cannot run is refused by name
(UnsupportedOpsError). torch is imported only when exporting, so the file writer
(ember_export.writer) works without it.
"""
from .errors import UnsupportedOpsError

__version__ = "0.1.0"
__all__ = ["export", "UnsupportedOpsError"]


def export(module, example_inputs, path, dynamic_batch=False, trainable=True, metadata=None):
    from .exporter import export as _export
    return _export(module, example_inputs, path, dynamic_batch=dynamic_batch, trainable=trainable,
                   metadata=metadata)


export.__doc__ = "See ember_export.exporter.export."
