"""``--cache-to type=local`` / ``--cache-from type=local`` in real builds: a second store
with only the base image reuses every layer the first one built, running no step."""

from __future__ import annotations

import io
from pathlib import Path

from builder.export.rootfs_import import import_rootfs
from builder.store.store import Store
from cache import records
from cache.transfer import export_local, import_local
from tests.integration.test_cache_exactness import (
    BASE,
    BASE_CREATED,
    MULTI_STAGE,
    build,
    busybox_tar,
    context_dir,
    ran,
    store,
)

__all__ = ["busybox_tar", "context_dir", "store"]  # fixtures used here


def test_a_second_store_reuses_the_exported_layers(
    store: Store, context_dir: Path, busybox_tar: bytes, tmp_path: Path
) -> None:
    first = build("reference", store, context_dir, MULTI_STAGE)
    assert all(not result.cached for result in first)
    exported = export_local(store, records.all_records(store.meta), tmp_path / "cache-dir", "max")
    assert len(exported) == len(first)
    with Store.open(tmp_path / "second") as second:
        import_rootfs(second, io.BytesIO(busybox_tar), BASE, changes=['CMD ["sh"]'], created=BASE_CREATED)
        assert len(import_local(second, tmp_path / "cache-dir")) == len(first)
        again = build("reference", second, context_dir, MULTI_STAGE)
        assert ran(again) == []
        (context_dir / "app/main.sh").write_text("echo changed\n")
        changed = build("reference", second, context_dir, MULTI_STAGE)
        assert ran(changed) == [
            "COPY app /src",
            "RUN cat /src/main.sh > /out",
            "COPY --from=build /out /out",
            "RUN cat /out",
        ]
