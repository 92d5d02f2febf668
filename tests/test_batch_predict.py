"""Batch prediction's pieces that need no Ray: listing sources (local and through pyarrow filesystems), reading
image bytes with the shared decoder, and refusing outputs before any work starts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from resnet_hub.tasks.batch_predict import BatchPredictionError, check_output, list_sources, read_image
from resnet_hub.tasks.data import ImageLoadError, expand_image_paths, load_image


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(root / "b.png")
    Image.fromarray((np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)).save(root / "a16.png")  # 16-bit grey
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise on display
    Image.fromarray(np.tile(np.arange(6, dtype=np.uint8)[None, :, None] * 40, (3, 1, 3))).save(
        root / "c_rotated.jpg", exif=exif)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"")
    Image.new("RGB", (2, 2)).save(root / "nested" / "deeper.png")
    return root


def test_file_uri_lists_the_same_files_as_local_predict(folder):
    local, local_skipped = expand_image_paths([folder])
    uris, skipped = list_sources([folder.as_uri()])
    assert uris == [p.as_uri() for p in local]  # sorted, not recursive, hidden files left out
    assert [u.rsplit("/", 1)[1] for u in uris] == ["a16.png", "b.png", "c_rotated.jpg", "notes.txt"]
    assert skipped == local_skipped == []


def test_missing_sources_become_skipped_rows_not_errors(folder):
    files, skipped = list_sources([folder / "b.png", folder / "gone.png", (folder / "gone").as_uri()])
    assert files == [str(folder / "b.png")]
    assert [(s.path, s.reason) for s in skipped] == [(str(folder / "gone.png"), "no such file or folder"),
                                                      ((folder / "gone").as_uri(), "no such file or folder")]


@pytest.mark.parametrize("name", ["a16.png", "b.png", "c_rotated.jpg"])
def test_uri_bytes_decode_exactly_like_the_local_file(folder, name):
    from_uri = read_image((folder / name).as_uri())
    from_path = load_image(folder / name)
    assert from_uri.mode == "RGB" and from_uri.size == from_path.size
    assert np.array_equal(np.asarray(from_uri), np.asarray(from_path))
    if name == "c_rotated.jpg":
        assert from_uri.size == (3, 6)  # EXIF orientation applied (stored 6 x 3)
    if name == "a16.png":
        assert np.asarray(from_uri)[3, 3, 0] == round(15 * 4000 / 257)  # 16-bit scaled, not clipped


def test_unreadable_uri_gives_the_same_reason_as_a_local_file(folder):
    with pytest.raises(ImageLoadError, match="not an image file PIL can read"):
        read_image((folder / "notes.txt").as_uri())
    with pytest.raises(ImageLoadError, match="not an image file PIL can read"):
        load_image(io.BytesIO(b"not an image"))
    with pytest.raises(ImageLoadError, match="cannot read"):
        read_image((folder / "vanished.png").as_uri())


def test_output_must_be_jsonl_or_parquet_and_new_unless_forced(tmp_path):
    with pytest.raises(BatchPredictionError, match=".jsonl or .parquet"):
        check_output(tmp_path / "out.csv", overwrite=False)
    existing = tmp_path / "out.jsonl"
    existing.write_text("keep me")
    with pytest.raises(BatchPredictionError, match="already exists; pass --force"):
        check_output(existing, overwrite=False)
    assert check_output(existing, overwrite=True) == existing and existing.read_text() == "keep me"
