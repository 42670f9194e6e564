"""Provider plugins that exist only for tests (loaded through provider_modules)."""
