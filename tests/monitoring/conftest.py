"""Fixtures more than one monitoring module uses: a loopback webhook receiver (test_alerts) and a detector
in production answering real boxes (test_detector_ground_truth)."""

from tests.monitoring.test_alerts import webhook  # noqa: F401
from tests.monitoring.test_detector_ground_truth import detector  # noqa: F401
