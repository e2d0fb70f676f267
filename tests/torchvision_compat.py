"""Import torchvision's Python code where its compiled ops cannot load (test and benchmark helper).

The reference implementations the metric tests compare against (pytorch-fid, torch-fidelity, and
torchmetrics once torch-fidelity is installed) import torchvision. PyPI's torchvision wheels for
Linux are CUDA builds: their compiled extension `torchvision/_C.so` links libtorch_cuda and does
not load beside the CPU torch wheel the project tests with. torchvision itself tolerates that
(`torchvision.extension._has_ops()` is then False and the ops raise when called), but two modules
that `torchvision/__init__.py` imports attach Python metadata to the compiled ops and fail when the
ops do not exist ("RuntimeError: operator torchvision::nms does not exist"):

- `torchvision._meta_registrations`: fake (meta) kernels of nms, roi_align, deform_conv2d, ...;
- `torchvision._autograd_registrations`: their backward formulas.

`make_torchvision_importable()` first tries to load `_C` as torchvision would. Only when that
fails does it put empty stand-ins for those two modules into `sys.modules`; everything else that
`import torchvision` runs is torchvision's own code from the installed wheel (models, the
Inception-v3 blocks pytorch-fid subclasses, transforms, datasets, the Python side of ops). What is
lost is what is lost anyway without the extension: the compiled detection ops, which none of the
references calls. Nothing is copied from torchvision and nothing is patched inside it.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch

STUBBED = ("torchvision._meta_registrations", "torchvision._autograd_registrations")


def make_torchvision_importable() -> str:
    """Prepare `import torchvision`; returns what was done (for messages and skip reasons).

    Must run before anything imports torchvision (the tests call it from conftest.py).
    """
    if "torchvision" in sys.modules:
        return "torchvision already imported"
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return "torchvision not installed"
    folder = Path(next(iter(spec.submodule_search_locations)))
    libraries = [p for p in folder.glob("_C.*") if p.suffix in (".so", ".pyd", ".dylib")]
    if libraries:
        try:
            torch.ops.load_library(str(libraries[0]))  # what torchvision.extension does first
            return "torchvision's compiled ops loaded"
        except OSError as e:
            cause = e.__cause__ or e  # torch wraps the loader's message ("libc10_cuda.so: cannot open ...")
            reason = str(cause).splitlines()[0]
    else:
        reason = f"no compiled extension in {folder}"
    for name in STUBBED:
        stub = types.ModuleType(name, f"empty stand-in: torchvision's compiled ops did not load ({reason})")
        sys.modules[name] = stub
    return f"torchvision's compiled ops did not load ({reason}); imported without their op metadata"
