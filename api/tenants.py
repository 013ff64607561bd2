"""Who is asking. Until API keys land (issue 6) every request belongs to one tenant; all
records and objects are already scoped by it, so keys only have to set it."""

DEFAULT_TENANT = "default"


def current_tenant() -> str:
    return DEFAULT_TENANT
