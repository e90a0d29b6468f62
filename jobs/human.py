"""Numbers for people: parameter counts, sizes and durations as pages show them."""


def human_parameters(count: int) -> str:
    """3,572,992 → 3.6M; 1,235,814,400 → 1.2B."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + suffix
    return str(count)


def human_bytes(count: int | float | None) -> str:
    """A size as pages show it: 548 MiB, 1.2 GiB, 3.5 TiB; "0 B", "—" when unknown."""
    if count is None:
        return "—"
    if not count:
        return "0 B"
    tib, gib, mib = 1024**4, 1024**3, 1024**2
    if count >= tib:
        return f"{count / tib:,.1f} TiB"
    if count >= gib:
        return f"{count / gib:.1f} GiB"
    if count >= mib:
        return f"{count / mib:.0f} MiB"
    return f"{count / 1024:.0f} KiB"


def limit_bytes(count: int) -> str:
    """A size in a sentence about a limit, to one decimal (Django's
    filesizeformat, as the upload limits word it): 1.9 MB, 1000 bytes."""
    from django.template.defaultfilters import filesizeformat

    return filesizeformat(count).replace("\xa0", " ")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
