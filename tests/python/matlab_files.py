"""MAT-files written by MATLAB itself, and what SciPy and h5py read in them: the peer for
prism-runtime's MAT-file readers on files no one here wrote.

    matlab_files.py OUT_DIR

MATLAB cannot be installed here, but the source distribution of pymatreader 1.3.2 on PyPI
ships the MAT-files its tests read, saved by MATLAB (from 2018 to 2026, on Linux and Windows, as
their headers say) with `-v4`, `-v6`, `-v7` and `-v7.3`. This downloads it with pip (needs
access to PyPI; pip caches it, and fetches its build backend, hatchling, to read its metadata),
checks its sha256, and copies those files into OUT_DIR with OUT_DIR/expected.json, in the schema
of tests/fixtures/arrays/expected.json (see tests/fixtures/make_arrays.py, whose readers of the
expected values this uses):

    "arrays": every real numeric variable as scipy.io.loadmat(mat_dtype=True) (MATLAB 5 files)
        or h5py (v7.3 files) reads it;
    "mat_variables": each file's listing, [name, MATLAB shape, class]: scipy.io.whosmat's, or
        for v7.3 files the same read with h5py;
    "mat_errors": the MATLAB 4 files, which Prism refuses, with the words the error must hold.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import h5py
import scipy.io as sio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_arrays import matlab5_expected, v73_expected  # noqa: E402

SDIST = "pymatreader-1.3.2.tar.gz"
SDIST_SHA256 = "8850b52d735df75b120b6ae5c5f80c92e07d8c163ed653c814d7b904fac7afc5"
FILES = [
    "v4.mat", "v6.mat", "v7.mat", "v73.mat",
    "sparse_v4.mat", "sparse_v6.mat", "sparse_v7.mat", "sparse_v73.mat",
    "cell_struct_v73.mat", "struct_in_cell_v73.mat", "string_v73.mat",
    "compare_datetime_with_and_without_time_zone_v7p3.mat", "test_raw_h5.set",
]


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


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    fetch(out)
    arrays, listings, errors = [], {}, {}
    for name in FILES:
        path = out / name
        if sio.matlab.matfile_version(path)[0] == 0:
            errors[name] = "MATLAB 4"
            continue
        found, listings[name] = v73_expected(path) if h5py.is_hdf5(path) else matlab5_expected(path)
        arrays += found
    expected = {"arrays": arrays, "mat_variables": listings, "mat_errors": errors}
    (out / "expected.json").write_text(json.dumps(expected))


main()
