"""Preset search spaces (TOML), shipped inside the wheel as `autolr.search_spaces`."""
