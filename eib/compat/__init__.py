"""The only code that knows the legacy INI format.

Legacy config trees, `schema.ini` files and private files are read here into
the same merged configuration the INI builder produced, then handed to the
rest of eib as a raw recipe dict and an `EIB_*` environment.
"""
