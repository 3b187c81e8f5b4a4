"""The warehouse's definitions, one module per layer, found by `dg.load_from_defs_folder`.

Each module holds its layer's assets and the blocking checks beside them; `automation.py` the
jobs, the release sensor and the daily update. Modules refer to other layers' assets by key,
never by import. Resources and the executor are merged in `dagster_project/definitions.py`.
"""
