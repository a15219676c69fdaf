"""Write Prometheus alerting rules for the serving metrics, for teams that alert from Prometheus."""

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand

from modelspec.signals import Signal, share_of
from monitoring.drift import THRESHOLDS
from monitoring.models import AlertRule
from monitoring.selectors import baseline_current
from registry.choices import Stage
from registry.models import ModelState
from serving.signal_catalogue import NUMERIC, SIGNALS, Source


def _builtin() -> list[dict]:
    return [
        {
            "alert": "CvcpHighErrorRate",
            "expr": 'sum by (model) (rate(cvcp_errors_total{source="live"}[5m])) / clamp_min(sum by (model) (rate(cvcp_requests_total{source="live"}[5m])), 1e-9) > 0.05',
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": "More than 5 % of requests to {{ $labels.model }} fail"},
        },
        {
            "alert": "CvcpSlowP95",
            "expr": 'histogram_quantile(0.95, sum by (model, version, le) (rate(cvcp_request_duration_seconds_bucket{phase="total",source="live"}[5m]))) > 0.5',
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "P95 latency of {{ $labels.model }} v{{ $labels.version }} is over 500 ms"
            },
        },
        {
            "alert": "CvcpNoProductionTraffic",
            "expr": 'sum by (model) (rate(cvcp_requests_total{stage="production",source="live"}[15m])) == 0',
            "for": "15m",
            "labels": {"severity": "info"},
            "annotations": {"summary": "{{ $labels.model }} served no production request for 15 minutes"},
        },
        {
            "alert": "CvcpRoutesStale",
            "expr": "sum by (model) (rate(cvcp_route_read_failures_total[2m])) > 0",
            "for": "2m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "Serving cannot read the routing of {{ $labels.model }} (the control plane's database "
                "is unreachable): it answers on the routes it read last, and no promotion or rollback reaches it"
            },
        },
    ]


def _from_rules() -> list[dict]:
    """Mean-based guards for our drift rules on numeric signals (PromQL cannot run KS or PSI)."""
    out = []
    for rule in AlertRule.objects.filter(enabled=True, signal__in=sorted(NUMERIC)):
        state = ModelState.objects.filter(name=rule.model).first()
        if state is None or state.production_version is None:
            continue
        baseline = baseline_current(model_name=rule.model, version=state.production_version)
        if (
            baseline is None
            or rule.signal not in baseline.signals
            or not baseline.signals[rule.signal]["total"]
        ):
            continue
        ref = baseline.signals[rule.signal]
        mean = ref["sum"] / ref["total"]
        margin = rule.threshold if rule.method == "mean_drop" and rule.threshold else 0.05
        signal = SIGNALS[rule.signal]
        metric = signal.metric
        selector = (
            f'model="{rule.model}",version="{state.production_version}",stage="{Stage.PRODUCTION}",'
            f'source="{Source.LIVE}"'
        )
        window = f"{max(rule.window_seconds // 60, 1)}m"
        if rule.method == "low_share" and signal.share is not None:
            out.append(_share_rule(rule, signal, ref, selector, window))
            continue
        out.append(
            {
                "alert": f"CvcpMeanShift_{rule.pk}",
                "expr": f"abs(rate({metric}_sum{{{selector}}}[{window}]) / rate({metric}_count{{{selector}}}[{window}]) - {mean:.6g}) > {margin:.6g}",
                "for": f"{max(rule.for_seconds, 60) // 60}m",
                "labels": {"severity": rule.severity, "model": rule.model, "signal": rule.signal},
                "annotations": {
                    "summary": f"{rule.name}: mean {rule.signal} moved more than {margin:.3g} from the baseline {mean:.3g}"
                },
            }
        )
    return out


def _share_rule(rule: AlertRule, signal: Signal, ref: dict, selector: str, window: str) -> dict:
    """A rule on a signal's Share (a detector's images with no box): the share now against the baseline's,
    from the cumulative bucket at the share's edge."""
    assert signal.share is not None
    inside, total = share_of(signal, ref["bins"])
    before = inside / total if total else 0.0
    rise = rule.threshold or THRESHOLDS["low_share"] or 0.1
    bucket = f'{signal.metric}_bucket{{{selector},le="{signal.bin_label(signal.share.upto)}"}}'
    return {
        "alert": f"CvcpShareRise_{rule.pk}",
        "expr": f"rate({bucket}[{window}]) / rate({signal.metric}_count{{{selector}}}[{window}]) - {before:.6g} > {rise:.6g}",
        "for": f"{max(rule.for_seconds, 60) // 60}m",
        "labels": {"severity": rule.severity, "model": rule.model, "signal": rule.signal},
        "annotations": {
            "summary": f"{rule.name}: {signal.share.title.lower()} rose more than {rise:.3g} above the baseline's {before:.3g}"
        },
    }


class Command(BaseCommand):
    help = "Write Prometheus alerting rules (built-in serving alerts + mean guards for our drift rules)."

    def add_arguments(self, parser):
        parser.add_argument("--out", default="-", help="file to write (default: standard output)")
        parser.add_argument(
            "--format",
            choices=["prometheus", "prometheusrule"],
            default="prometheus",
            help="a Prometheus rules file, or a PrometheusRule resource for prometheus-operator (Kubernetes)",
        )

    def handle(self, *args, out: str, format: str, **options):
        document: dict = {"groups": [{"name": "cvcp-serving", "rules": _builtin() + _from_rules()}]}
        if format == "prometheusrule":
            document = {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": {
                    "name": "cvcp-serving",
                    "labels": {"app.kubernetes.io/part-of": "cv-controlplane"},
                },
                "spec": document,
            }
        text = yaml.safe_dump(document, sort_keys=False, width=200)
        if out == "-":
            self.stdout.write(text)
        else:
            Path(out).write_text(text)
            self.stdout.write(
                f"wrote {len((document.get('spec') or document)['groups'][0]['rules'])} rules to {out}"
            )
