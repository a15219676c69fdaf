"""The only module that reads metrics from outside: a Prometheus server (prometheus-api-client) or the
serving processes' own /metrics. Both return the same thing: cumulative samples keyed by instance."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families
from urllib3.util.retry import Retry

from core.exceptions import ServiceUnavailable


class MetricsUnavailable(ServiceUnavailable):
    code = "metrics_unavailable"


@dataclass(frozen=True)
class Sample:
    instance: str
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def scrape(url: str, *, prefix: str, timeout: float) -> list[Sample]:
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise MetricsUnavailable(f"could not scrape {url}: {exc}") from exc
    samples = []
    try:
        for family in text_string_to_metric_families(response.text):
            if not family.name.startswith(prefix):
                continue
            for s in family.samples:
                samples.append(Sample(url, s.name, tuple(sorted(s.labels.items())), float(s.value)))
    except ValueError as exc:
        raise MetricsUnavailable(f"{url} did not return Prometheus text format: {exc}") from exc
    return samples


def query(prometheus_url: str, names: list[str], *, timeout: float) -> list[Sample]:
    """The current value of every series of the named metrics, one Sample per scraped instance."""
    from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

    # No retries: the library's default (retry=None) is three with back-off, which turned a hung
    # Prometheus into a 10 s wait; the next collection is the retry.
    prom = PrometheusConnect(url=prometheus_url, disable_ssl=True, timeout=timeout, retry=Retry(total=0))
    selector = "|".join(names)
    try:
        result = prom.custom_query(f'{{__name__=~"{selector}"}}')
    except (PrometheusApiClientException, requests.RequestException, OSError) as exc:
        raise MetricsUnavailable(f"could not query Prometheus at {prometheus_url}: {exc}") from exc
    samples = []
    for row in result:
        labels = dict(row["metric"])
        name = labels.pop("__name__")
        instance = f"{labels.pop('job', '')}/{labels.pop('instance', '')}"
        samples.append(Sample(instance, name, tuple(sorted(labels.items())), float(row["value"][1])))
    return samples
