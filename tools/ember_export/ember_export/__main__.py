"""python -m ember_export --model pkg.module:factory --input-shape 8,64 -o model.ember

`factory` is a callable returning a torch.nn.Module (or a (module, example_inputs) pair);
--weights loads a state_dict saved with torch.save into it first.
"""
import argparse
import importlib
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ember_export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="module.path:callable returning an nn.Module")
    p.add_argument("--weights", help="a state_dict file (torch.save) to load into the module")
    p.add_argument("--input-shape", action="append", default=[], help="an example input's shape, e.g. 8,64 (repeat per input)")
    p.add_argument("--input-dtype", action="append", default=[], help="an example input's dtype (default float32)")
    p.add_argument("--dynamic-batch", action="store_true", help="dim 0 of every input is the symbol 'batch'")
    p.add_argument("--frozen", action="store_true", help="mark no parameter trainable")
    p.add_argument("--train-mode", action="store_true", help="export in training mode (default: eval)")
    p.add_argument("-o", "--output", required=True, help="the .ember file to write")
    a = p.parse_args(argv)

    import torch
    from . import UnsupportedOpsError, export

    mod_name, _, attr = a.model.partition(":")
    made = getattr(importlib.import_module(mod_name), attr or "model")()
    module, inputs = made if isinstance(made, tuple) else (made, None)
    if a.weights:
        module.load_state_dict(torch.load(a.weights, map_location="cpu"))
    module.train(a.train_mode)
    if inputs is None:
        if not a.input_shape:
            p.error("give --input-shape (or let the factory return example inputs)")
        inputs = []
        for i, shape in enumerate(a.input_shape):
            dtype = getattr(torch, a.input_dtype[i]) if i < len(a.input_dtype) else torch.float32
            dims = [int(d) for d in shape.split(",")]
            inputs.append(torch.randn(dims).to(dtype) if dtype.is_floating_point else torch.zeros(dims, dtype=dtype))
    try:
        export(module, tuple(inputs), a.output, dynamic_batch=a.dynamic_batch, trainable=not a.frozen)
    except UnsupportedOpsError as e:
        print(f"ember_export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
