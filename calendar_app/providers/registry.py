"""The synced adapters, by kind: an explicit list, so that what can run is plain to see."""

from __future__ import annotations

from calendar_app.providers import Adapter, ProviderError
from calendar_app.providers.caldav_source import CalDavAdapter
from calendar_app.providers.fhir import FhirAdapter
from calendar_app.providers.ics_url import IcsUrlAdapter
from calendar_app.providers.rivta import RivtaAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.kind: adapter
    for adapter in (IcsUrlAdapter(), CalDavAdapter(), FhirAdapter(), RivtaAdapter())
}


def adapter_for(kind: str) -> Adapter:
    """The adapter of ``kind``; an unknown kind is a ProviderError, like any failed read."""
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ProviderError("source.adapter_unknown", f"no adapter {kind!r}") from None
