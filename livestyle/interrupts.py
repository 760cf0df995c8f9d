"""Ctrl-C that a library re-raised as its own error. Standard library only: `python -m
livestyle` asks this while its own imports may be what was interrupted."""


def caused_by_ctrl_c(error: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is among the causes and contexts of `error` (numpy reports
    a Ctrl-C during its import as ImportError; pybind11 one during a module's initialization,
    and the backends then report that as "not installed")."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
