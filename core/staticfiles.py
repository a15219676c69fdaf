"""Static files named by their content's hash, so browsers may keep them for a year."""

from __future__ import annotations

from typing import Any

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFiles(CompressedManifestStaticFilesStorage):
    """After collectstatic (the image, ./dev demo): hashed names from the manifest, compressed copies,
    and whitenoise serves them with `Cache-Control: max-age=315360000, public, immutable`. Before it
    (a fresh checkout, the tests), or for a file added since, the plain name, served by the finders."""

    manifest_strict = False

    def create_compressor(self, **kwargs: Any) -> Compressor:
        # gzip only: Brotli at its default quality took a minute for the API docs' bundles and their
        # source maps (collectstatic runs in ./dev demo and the image build); gzip takes seconds and
        # every browser takes it. Source maps are for developer tools: not compressed.
        skipped = [*(kwargs.pop("extensions", None) or Compressor.SKIP_COMPRESS_EXTENSIONS), "map"]
        return Compressor(**{**kwargs, "extensions": skipped, "use_brotli": False})

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            return name
        try:
            return super().stored_name(name)
        except ValueError:  # not collected yet: served as it is by the finders
            return name
