"""MAT-files written by MATLAB itself, and what SciPy and h5py read in them: the peer for
prism-runtime's MAT-file readers on files no one here wrote.

    matlab_files.py OUT_DIR

MATLAB cannot be installed here, but the source distribution of pymatreader 1.3.2 on PyPI
ships the MAT-files its tests read, saved by MATLAB (R2018 to R2023, Linux and Windows) with
`-v6`, `-v7` and `-v7.3`. This downloads it with pip (needs access to PyPI; pip caches it),
checks its sha256, and copies those files into OUT_DIR with OUT_DIR/expected.json:

    {FILE: {"variables": [[name, MATLAB shape, class], ...],
            "arrays": {name: {"dtype", "shape", "values"}, ...}}}

or, for MATLAB 4 files (`-v4`, which Prism refuses), {FILE: {"error": "MATLAB 4"}}.

"variables" is scipy.io.whosmat's listing for MATLAB 5 files (`-v6`, `-v7`) and, for v7.3
files (HDF5), the same read from h5py: each member of the root group not starting with `#`,
with its MATLAB_class attribute and its HDF5 dimensions reversed (MATLAB_empty arrays: the
dimensions they hold); a sparse matrix has the rows its MATLAB_sparse attribute holds and one
column fewer than its `jc` member has values; structs and objects, whose size is not stored,
list as []; classes MATLAB 5 files store as objects (`string`, `datetime`...) list as "object".
"arrays" holds every real numeric variable as scipy.io.loadmat(mat_dtype=True) and h5py read
it, values flattened in C order (floats as Python reprs, which parse exactly).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings

import h5py
import numpy as np
import scipy.io as sio

SDIST = "pymatreader-1.3.2.tar.gz"
SDIST_SHA256 = "8850b52d735df75b120b6ae5c5f80c92e07d8c163ed653c814d7b904fac7afc5"
FILES = [
    "v6.mat", "v7.mat", "v73.mat",
    "sparse_v6.mat", "sparse_v7.mat", "sparse_v73.mat",
    "cell_struct_v73.mat", "struct_in_cell_v73.mat", "string_v73.mat",
    "compare_datetime_with_and_without_time_zone_v7p3.mat", "test_raw_h5.set",
    "v4.mat", "sparse_v4.mat",
]
NUMERIC = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "logical"}
NOT_OBJECTS = NUMERIC | {"char", "cell", "struct", "sparse", "function_handle"}


def fetch(out):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "pymatreader==1.3.2", "-d", tmp],
            check=True,
        )
        sdist = os.path.join(tmp, SDIST)
        with open(sdist, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if sha != SDIST_SHA256:
            sys.exit(f"{SDIST}: sha256 {sha}, expected {SDIST_SHA256}")
        with tarfile.open(sdist) as tar:
            for name in FILES:
                member = tar.extractfile(f"pymatreader-1.3.2/tests/test_data/{name}")
                with open(os.path.join(out, name), "wb") as f:
                    shutil.copyfileobj(member, f)


def values(array):
    flat = np.ascontiguousarray(array).ravel(order="C")
    if flat.dtype.kind == "f":
        return [repr(float(x)) for x in flat]
    return [int(x) for x in flat]


def array_entry(array):
    dtype = "bool" if array.dtype == np.bool_ else array.dtype.name
    return {"dtype": dtype, "shape": list(array.shape), "values": values(array)}


def matlab5(path):
    listing = [[name, list(shape), cls] for name, shape, cls in sio.whosmat(path, chars_as_strings=False)]
    with warnings.catch_warnings():  # complex variables cast to their class: left out below
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        loaded = sio.loadmat(path, mat_dtype=True)
    complex_ = {name for name, value in sio.loadmat(path).items() if np.iscomplexobj(value)}
    arrays = {name: array_entry(loaded[name]) for name, _, cls in listing if cls in NUMERIC and name not in complex_}
    return listing, arrays


def v73(path):
    listing, arrays = [], {}
    with h5py.File(path, "r") as f:
        for name in sorted(k for k in f if not k.startswith("#")):
            item = f[name]
            cls = item.attrs["MATLAB_class"].decode()
            if isinstance(item, h5py.Group):
                if "MATLAB_sparse" in item.attrs:  # MATLAB's size: rows, and columns from jc
                    listing.append([name, [int(item.attrs["MATLAB_sparse"]), len(item["jc"]) - 1], "sparse"])
                else:
                    listing.append([name, [], cls])
                continue
            empty = "MATLAB_empty" in item.attrs
            shape = [int(d) for d in item[()]] if empty else list(reversed(item.shape))
            listing.append([name, shape, cls if cls in NOT_OBJECTS else "object"])
            if cls not in NUMERIC or item.dtype.kind == "V":  # V: complex
                continue
            array = np.zeros(shape, dtype=item.dtype) if empty else item[()].T
            if cls == "logical":
                array = array.astype(bool)
            arrays[name] = array_entry(array)
    return listing, arrays


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    fetch(out)
    expected = {}
    for name in FILES:
        path = os.path.join(out, name)
        if sio.matlab.matfile_version(path)[0] == 0:
            expected[name] = {"error": "MATLAB 4"}
            continue
        listing, arrays = v73(path) if h5py.is_hdf5(path) else matlab5(path)
        expected[name] = {"variables": listing, "arrays": arrays}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


main()
