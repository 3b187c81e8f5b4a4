"""The dataset registry (`archs4.datasets`) is the one list of the warehouse's datasets: the
catalog's views, its templates and every asset's files are derived from it."""

from __future__ import annotations

from archs4 import datasets
from archs4.catalog import DATASETS, view_definitions
from dagster_project.outputs import ASSET_OUTPUTS


def test_the_catalog_views_are_the_registry_views() -> None:
    views = {definition.name for definition in view_definitions()}
    assert views == {dataset.view for dataset in datasets.CATALOG_DATASETS}


def test_every_template_names_a_registered_dataset() -> None:
    for definition in view_definitions():
        assert set(definition.datasets) <= set(DATASETS), definition.name
        primary = next(d for d in datasets.CATALOG_DATASETS if d.view == definition.name)
        assert primary.template in definition.datasets, definition.name


def test_every_file_an_asset_writes_is_registered() -> None:
    names = [value for name, value in vars(datasets).items() if name.isupper()]
    registered = {
        *names,
        *(datasets.table_file(n) for n in names if isinstance(n, str)),
        *(
            path
            for model in datasets.CLASSIFIER_MODELS
            for path in datasets.classifier_files(model)
        ),
    }
    for asset, outputs in ASSET_OUTPUTS.items():
        assert set(outputs.files) <= registered, asset
        assert set(outputs.block_datasets) <= registered, asset
