"""Why a file could not be opened, said for a user rather than as the library's exception."""

import zipfile


def why(exc: BaseException) -> str:
    if isinstance(exc, zipfile.BadZipFile) or type(exc).__name__ == "PackageNotFoundError":
        return "it is not a zip package"
    if isinstance(exc, KeyError):
        return f"a part it needs is missing: {exc.args[0] if exc.args else exc}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:120]}" if first else type(exc).__name__
