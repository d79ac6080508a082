"""Reader for an image folder: ``root/<class_name>/<file>``, or ``root/train/<class>/<file>`` and
``root/test/<class>/<file>`` when the split is given by the folders.

Files with an image extension (PNG, JPEG, BMP, GIF, WebP) are rows; their id is the path relative
to the root (``cat/001.png``), stable across reruns. An image file outside any class folder becomes
a ``missing_label`` row; other files (e.g. ``README.txt``) are not rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from exemplar.data.config import DataConfig
from exemplar.data.parquet_input import require_path
from exemplar.data.raw import RawBatch, make_keys
from exemplar.errors import ExemplarError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = ("train", "test")
FILES_PER_BATCH = 1024


class ImageFolderReader:
    """Lists the image files under ``data.path`` once; streams their bytes in batches."""

    modality = "image"
    feature_names: list[str] = []
    label_names = None

    def __init__(self, config: DataConfig):
        self.config = config
        root = require_path(Path(config.path).expanduser(), "folder of class folders", "data=image_folder data.path=/abs/path/images")
        if not root.is_dir():
            raise ExemplarError(f"{root} is a file, not a folder. Fix: point data.path at the folder holding one sub-folder per class.")
        self.root, self.source = root, str(root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
        self.files = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not self.files:
            raise ExemplarError(
                f"{root} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); {len(files)} other file(s) found. "
                "Fix: lay the images out as root/<class_name>/<file>.png (optionally under root/train and root/test)."
            )
        top = {p.name.lower() for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
        self.has_split_folders = "train" in top and top <= set(SPLIT_FOLDERS)

    def _row(self, path: Path) -> tuple[str, str | None, str | None, str]:
        """(id, class name or None, split or None, detail) of one file."""
        parts = path.relative_to(self.root).parts
        split = None
        if self.has_split_folders:
            split, parts = parts[0].lower(), parts[1:]
        label = parts[0] if len(parts) > 1 else None
        detail = "" if label else f"{path.name} is not inside a class folder (expected root/<class_name>/{path.name})"
        return path.relative_to(self.root).as_posix(), label, split, detail

    def batches(self, with_data: bool) -> Iterator[RawBatch]:
        for start in range(0, len(self.files), FILES_PER_BATCH):
            chunk = self.files[start : start + FILES_PER_BATCH]
            rows = [self._row(p) for p in chunk]
            images, problems, details = [], [], []
            for path, (_, label, _, detail) in zip(chunk, rows):
                data, problem, read_detail = _read(path)
                images.append(data)
                problems.append(problem or ("missing_label" if label is None else ""))
                details.append(read_detail or detail)
            ids = [r[0] for r in rows]
            splits = [r[2] for r in rows] if self.has_split_folders else None
            keys = make_keys(ids, [r[1] for r in rows], splits, [str(p) for p in chunk], [0] * len(chunk), problems, details, ids)
            yield RawBatch(keys, images=images)


def _read(path: Path) -> tuple[bytes | None, str, str]:
    try:
        return path.read_bytes(), "", ""
    except OSError as error:
        return None, "missing_image_file", f"cannot read {path}: {error.strerror or error}"
