"""Configuration: the typed, frozen tables (`settings`, pure) and loading, validating and writing
back config.toml with tomlkit (`load`; the tables' keys and converters in `schema`)."""
