"""pack-data: an ImageFolder root as one tarball that unpacks to the same dataset."""

import torch

from dtlib.__main__ import main
from dtlib.data import load_dataset
from dtlib.pack import unpack_data


def test_pack_data_round_trips_an_image_folder(tiny_image_folder, tmp_path, capsys):
    dest = tmp_path / ".gpu" / "data.tgz"
    assert main(["pack-data", str(dest), "--data-dir", str(tiny_image_folder.root)]) == 0
    assert "wrote" in capsys.readouterr().out
    root = unpack_data(dest, tmp_path / "unpacked")
    for a, b in zip(load_dataset("cifar10", tiny_image_folder.root), load_dataset("cifar10", root)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and a.classes == b.classes
