"""scikit-learn's PCA of a scene, as the independent reference for the trainer's PCA.

    pca.py SCENE.npy COMPONENTS OUT.npy

Fits PCA(n_components=COMPONENTS, whiten=True) on every pixel of the height x width x bands
scene and writes the transformed pixels (height*width x COMPONENTS, float64) to OUT.npy.
"""

import sys

import numpy as np
from sklearn.decomposition import PCA

scene = np.load(sys.argv[1]).astype(np.float64)
pixels = scene.reshape(-1, scene.shape[-1])
out = PCA(n_components=int(sys.argv[2]), whiten=True).fit_transform(pixels)
np.save(sys.argv[3], out)
