"""Fixtures for the loader tests: data folders in each dataset's layout (built in task_layouts.py)."""

from task_layouts import (  # noqa: F401  (re-exported as fixtures)
    iu_xray_dir,
    mimic_jpg_dir,
    mimic_r2gen_dir,
    slake_dir,
    vqa_rad_dir,
)
