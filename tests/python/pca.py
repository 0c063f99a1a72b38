"""scikit-learn's PCA of a scene, as the independent reference for the trainer's PCA.

    pca.py SCENE.npy COMPONENTS OUT.npy [SPLIT.json]

Fits PCA(n_components=COMPONENTS, whiten=True) on every pixel of the height x width x bands
scene (with SPLIT.json, a run's split: on its training pixels only) and writes every pixel
transformed (height*width x COMPONENTS, float64) to OUT.npy.
"""

import json

import sys

import numpy as np
from sklearn.decomposition import PCA

scene = np.load(sys.argv[1]).astype(np.float64)
pixels = scene.reshape(-1, scene.shape[-1])
fit_on = pixels
if len(sys.argv) > 4:
    train = json.load(open(sys.argv[4]))["train"]
    fit_on = np.array([scene[y, x] for y, x in train])
out = PCA(n_components=int(sys.argv[2]), whiten=True).fit(fit_on).transform(pixels)
np.save(sys.argv[3], out)
