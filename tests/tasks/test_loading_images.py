"""The loaders' decode check reads images through ``harness.core.images``: an image above the pixel limit stops the
load with one line naming the annotation file, the record, the field, the image and the limit."""

from __future__ import annotations

import shutil

import pytest
from task_layouts import one_line_error

from harness.core.errors import DataError
from harness.core.images import MAX_PIXELS
from harness.tasks import get_task
from harness.tasks._loading import verify_image_file


def test_the_decode_check_refuses_an_oversized_image(vqa_rad_dir, oversized_png):
    shutil.copyfile(oversized_png, vqa_rad_dir / "images" / "synpic2.jpg")  # PIL reads the PNG whatever its name
    task = get_task("vqa_rad")
    assert len(task.load("test", vqa_rad_dir.parent)) == 3  # the existence check does not decode
    with pytest.raises(DataError) as exc:
        task.load("test", vqa_rad_dir.parent, check_images="decode")
    one_line_error(exc, "testset.json", "qid 13", "field 'image_name'", "synpic2.jpg is 400,000,000 pixels",
                   f"limit of {MAX_PIXELS:,} pixels")


def test_verify_image_file_names_the_source_and_the_image(oversized_png, tmp_path):
    with pytest.raises(DataError) as exc:
        verify_image_file(oversized_png, source=tmp_path / "annotation.json", record="test[0]", field="image_path")
    message = one_line_error(exc, "image file", "huge.png", f"limit of {MAX_PIXELS:,} pixels")
    assert message.startswith(f"{tmp_path / 'annotation.json'}, record test[0], field 'image_path': image file ")
